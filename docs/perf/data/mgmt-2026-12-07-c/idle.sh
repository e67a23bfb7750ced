#!/bin/sh
# idle.sh TREE OUT SECONDS
TREE=$1; O=$2; S=$3
cd /tmp; rm -f $O.acct
PYTHONPATH=$TREE ACCT_OUT=$O.acct /work/wt/mgmt/.venv/bin/python /tmp/mgmt-x/acct.py serve --port 5744 --http-port 15744 --data-dir none > $O.broker.log 2>&1 &
P=$!; /tmp/mgmt-x/waitport.sh 15744
PYTHONPATH=/work/wt/mgmt /work/wt/mgmt/.venv/bin/python /tmp/mgmt-x/idle.py amqp://guest:guest@127.0.0.1:5744/ http://guest:guest@127.0.0.1:15744/ $P $O.acct $S
kill $P; wait $P 2>/dev/null
