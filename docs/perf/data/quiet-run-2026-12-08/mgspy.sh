#!/usr/bin/env bash
set -u
out=$1; mkdir -p $out
cd /work/benchtree
(exec .venv/bin/python -m amqplite serve --port 5781 --http-port 15781 --data-dir none > $out/serve.log 2>&1) &
for i in $(seq 100); do (echo > /dev/tcp/127.0.0.1/5781) 2>/dev/null && break; sleep 0.2; done
P=$(pgrep -f "serve --port 5781" | head -1)
.venv/bin/python -c "
import asyncio; from amqplite.bench.mgmt import _declare_idle
asyncio.run(_declare_idle('amqp://guest:guest@127.0.0.1:5781/', 10000, 'perf'))"
(sleep 100 | .venv/bin/python -m amqplite.bench.mgmt --poll http://guest:guest@127.0.0.1:15781/ > $out/polls.json) &
sleep 3
(python3 /work/shared/bench/ampbench.py --url amqp://guest:guest@127.0.0.1:5781/ --broker-pid $P --runs 1 --seconds 10 --lat-seconds 0 --size 16 --prefetch 100 e2e > $out/e2e-with.txt 2>&1) &
sleep 2
/tmp/spy/bin/py-spy record -p $P -d 6 -r 500 -f raw -o $out/spy.raw > /dev/null 2>&1
sleep 3
pkill -f "amqplite.bench.mgmt --poll"; pkill -f "sleep 100"; kill $P
