#!/bin/sh
# usage: idle.sh TREE TAG SECONDS
TREE=$1; TAG=$2; S=${3:-10}
V=/work/wt/mgmt/.venv/bin/python
cd /tmp; rm -f /tmp/mg/$TAG.gc
GCOUT=/tmp/mg/$TAG.gc PYTHONPATH=$TREE $V /tmp/mg/serve_gc.py serve --port 5746 --http-port 15746 --data-dir none >/tmp/mg/serve-$TAG.log 2>&1 & P=$!
for i in $(seq 50); do (echo > /dev/tcp/127.0.0.1/15746) 2>/dev/null && break; sleep 0.2; done
PYTHONPATH=$TREE $V /tmp/mg/idle.py amqp://guest:guest@127.0.0.1:5746/ http://guest:guest@127.0.0.1:15746/ $P /tmp/mg/$TAG.gc $S
kill $P; wait $P
