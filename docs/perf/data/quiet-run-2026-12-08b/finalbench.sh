#!/usr/bin/env bash
# Side-by-side runs on a quiet machine, 8 Dec 2026 (second round). Usage: finalbench.sh OUTDIR group...
# Expects /work/benchtree (a clone of main with its venv: this build), /work/wt/base (1b92d46, the
# round's start, with its venv) and RabbitMQ 3.10 on 5672 (tests/support/start_rabbitmq.sh).
set -u
out=$1; shift
mkdir -p $out
BENCH=/work/shared/bench/ampbench.py
AMQ=/work/benchtree/.venv/bin/amqplite
RMQ=amqp://guest:guest@127.0.0.1:5672/
RPID=$(pgrep -f beam.smp | head -1)
start() { # dir port data http -> pid
  rm -rf $3; [ "$3" != none ] && mkdir -p $3
  (cd $1 && exec .venv/bin/python -m amqplite serve $4 --port $2 --data-dir $3 >$out/serve-$2.log 2>&1) &
  for i in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$2) 2>/dev/null && break; sleep 0.2; done
  pgrep -f "serve.*--port $2" | head -1
}
NEW=$(start /work/benchtree 5811 /tmp/fb-new --no-http)
A="--url amqp://guest:guest@127.0.0.1:5811/ --broker-pid $NEW"
AR="$A --vs-url $RMQ --vs-broker-pid $RPID"
for g in "$@"; do echo "== $g $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"; case $g in
 large) python3 $BENCH $AR --runs 5 --seconds 4 --lat-seconds 0 --inflight 64 --size 16384,262144,1048576 --prefetch 100 e2e > $out/rmq-large.txt 2>&1 ;;
 ab)  # this build against the round's start (/work/wt/base at 1b92d46)
  OLD=$(start /work/wt/base 5812 /tmp/fb-old --no-http)
  python3 $BENCH $A --vs-url amqp://guest:guest@127.0.0.1:5812/ --vs-broker-pid $OLD \
     --runs 5 --seconds 4 --lat-seconds 0 --inflight 64 --size 16,16384,262144,1048576 --prefetch 100 e2e > $out/ab.txt 2>&1
  python3 $BENCH $A --vs-url amqp://guest:guest@127.0.0.1:5812/ --vs-broker-pid $OLD \
     --runs 5 --seconds 4 --size 16,1024 --prefetch 1 e2e > $out/ab-pf1.txt 2>&1
  kill $OLD ;;
 key) python3 $BENCH $AR --runs 5 --seconds 4 --lat-seconds 0 --size 16 --prefetch 100,1000 e2e,publish > $out/rmq-key.txt 2>&1 ;;
 table)
  python3 $BENCH $AR --runs 3 --seconds 4 --size 16,1024 --prefetch 1 e2e > $out/rmq-pf1.txt 2>&1
  python3 $BENCH $AR --runs 3 --seconds 4 --lat-seconds 0 --size 1024 --prefetch 100,1000 e2e,publish > $out/rmq-1k.txt 2>&1
  python3 $BENCH $AR --runs 3 --seconds 4 --lat-seconds 0 --size 16,1024 confirm,fanout,topic > $out/rmq-cft.txt 2>&1 ;;
 mgmt)
  M=$(start /work/benchtree 5813 none "--http-port 15813")
  $AMQ bench mgmt --url amqp://guest:guest@127.0.0.1:5813/ --http-url http://guest:guest@127.0.0.1:15813/ --broker-pid $M --runs 5 --duration 4 > $out/mgmt.txt 2>&1
  kill $M ;;
esac; done
kill $NEW 2>/dev/null
echo "== done $(date +%T)"
