#!/bin/bash
# cg.sh TREE MODE N : instruction refs
cp /work/wt/sread/amqplite/bench/micro.py /tmp/sread-bin/micro_new.py
cd $1 && PYTHONHASHSEED=0 PYTHONPATH=$1 valgrind --tool=callgrind --callgrind-out-file=/dev/null /work/wt/sread/.venv/bin/python -P /tmp/sread-bin/cg_stream.py $2 $3 2>&1 | grep refs | awk '{print $NF}' | tr -d ,
