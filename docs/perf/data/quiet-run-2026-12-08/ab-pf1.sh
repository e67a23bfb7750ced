#!/usr/bin/env bash
# pf1 and persistent: this build (/work/benchtree) against 42f041b (/work/wt/ref), alternating
out=$1
start() { rm -rf $3; mkdir -p $3
  (cd $1 && exec .venv/bin/python -m amqplite serve --no-http --port $2 --data-dir $3 >$out/serve-$2.log 2>&1) &
  for i in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$2) 2>/dev/null && break; sleep 0.2; done
  pgrep -f "serve.*--port $2" | head -1; }
NEW=$(start /work/benchtree 5821 /tmp/ab-new); OLD=$(start /work/wt/ref 5822 /tmp/ab-old)
python3 /work/shared/bench/ampbench.py --url amqp://guest:guest@127.0.0.1:5821/ --broker-pid $NEW --vs-url amqp://guest:guest@127.0.0.1:5822/ --vs-broker-pid $OLD --runs 5 --seconds 4 --size 16 --prefetch 1 e2e > $out/ab-pf1-b.txt 2>&1

kill $NEW $OLD
