#!/usr/bin/env bash
set -u
out=/tmp/final
start() { rm -rf $3; mkdir -p $3
  (cd $1 && exec .venv/bin/python -m amqplite serve $4 --port $2 --data-dir $3 >$out/serve-$2.log 2>&1) &
  for i in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$2) 2>/dev/null && break; sleep 0.2; done
  pgrep -f "serve.*--port $2" | head -1; }
NEW=$(start /work/main 5821 /tmp/fb-new2 "--http-port 0")
OLD=$(start /work/wt/ref 5822 /tmp/fb-old2 "--http-port 0")
echo "new=$NEW old=$OLD"
python3 /work/shared/bench/ampbench.py --url amqp://guest:guest@127.0.0.1:5821/ --broker-pid $NEW --vs-url amqp://guest:guest@127.0.0.1:5822/ --vs-broker-pid $OLD \
   --runs 3 --seconds 4 --lat-seconds 0 --size 16,1024 --prefetch 100 e2e,topic > $out/ab.txt 2>&1
kill $NEW $OLD
(cd /work/main && .venv/bin/python -m amqplite.bench.micro --compare-ref 92f8c19 --repeat 7) > $out/micro2.txt 2>&1
echo done
