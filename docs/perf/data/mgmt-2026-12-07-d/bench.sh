#!/bin/sh
# usage: bench.sh TREE OUT [runs]
TREE=$1; OUT=$2; RUNS=${3:-5}
V=/work/wt/mgmt/.venv/bin/python
cd /tmp
PYTHONPATH=$TREE $V -m amqplite serve --port 5745 --http-port 15745 --data-dir none >/tmp/mg/serve.log 2>&1 & P=$!
for i in $(seq 50); do (echo > /dev/tcp/127.0.0.1/15745) 2>/dev/null && break; sleep 0.2; done
(cd $TREE && git log --oneline -1; uptime) > $OUT
PYTHONPATH=$TREE $V -m amqplite bench mgmt --url amqp://guest:guest@127.0.0.1:5745/ --http-url http://guest:guest@127.0.0.1:15745/ --broker-pid $P --runs $RUNS --duration 4 >> $OUT 2>&1
uptime >> $OUT
kill $P; wait $P
