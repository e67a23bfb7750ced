#!/bin/sh
# go.sh TREE OUTPREFIX RUNS: broker from TREE under acct.py, harness from the branch
TREE=$1; O=$2; RUNS=$3; shift 3
cd /tmp
rm -f $O.acct
PYTHONPATH=$TREE ACCT_OUT=$O.acct /work/wt/mgmt/.venv/bin/python /tmp/mgmt-x/acct.py serve --port 5742 --http-port 15742 --data-dir none > $O.broker.log 2>&1 &
P=$!
/tmp/mgmt-x/waitport.sh 15742
PYTHONPATH=/work/wt/mgmt /work/wt/mgmt/.venv/bin/python /tmp/mgmt-x/harness.py amqp://guest:guest@127.0.0.1:5742/ http://guest:guest@127.0.0.1:15742/ $P $O.acct $RUNS "$@" > $O.jsonl 2> $O.err
kill $P; wait $P 2>/dev/null
