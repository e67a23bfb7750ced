#!/usr/bin/env bash
# perf of the broker during e2e 16 B, without then with the pollers (10,000 idle queues)
set -u
out=$1; mkdir -p $out
cd /work/benchtree
(exec .venv/bin/python -m amqplite serve --port 5780 --http-port 15780 --data-dir none > $out/serve.log 2>&1) &
for i in $(seq 100); do (echo > /dev/tcp/127.0.0.1/5780) 2>/dev/null && break; sleep 0.2; done
P=$(pgrep -f "serve --port 5780" | head -1)
.venv/bin/python -c "
import asyncio; from amqplite.bench.mgmt import _declare_idle
asyncio.run(_declare_idle('amqp://guest:guest@127.0.0.1:5780/', 10000, 'perf'))"
for half in without with; do
  if [ $half = with ]; then
    (sleep 100 | .venv/bin/python -m amqplite.bench.mgmt --poll http://guest:guest@127.0.0.1:15780/ > $out/polls.json) &
    sleep 3
  fi
  (python3 /work/shared/bench/ampbench.py --url amqp://guest:guest@127.0.0.1:5780/ --broker-pid $P --runs 1 --seconds 10 --lat-seconds 0 --size 16 --prefetch 100 e2e > $out/e2e-$half.txt 2>&1) &
  sleep 2
  perf record -e cpu-clock -F 2000 -p $P -o $out/perf-$half.data -- sleep 6 > /dev/null 2>&1
  wait %2 2>/dev/null; sleep 3
  pkill -f "amqplite.bench.mgmt --poll" ; pkill -f "sleep 100"
done
kill $P
