"""Instructions per message of the session hot path, for callgrind (docs/performance.md, issue 13).

Runs the loop of ``amqplite.bench.micro``'s session benchmarks K times after the same setup
(a publisher and a consumer Session, prefetch 100, 50 messages per receive buffer, one
basic.ack per message); run it under callgrind for two K and divide the difference in
instructions by the difference in messages, so that start-up and setup cancel out::

    for k in 500 2500; do
      PYTHONHASHSEED=0 PYTHONPATH=TREE valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python -P docs/perf/data/hotpath/callgrind_session.py MODE $k 2500 2>&1 | grep refs
    done

MODE: ``e2e`` (each publish delivered at once), ``backlog`` (1,000 queued first: each ack
dispatches one from the queue, ampbench's steady state) or ``publish`` (nobody consumes).
``PREFETCH`` and ``BATCH`` in the environment change the prefetch (100) and the messages
per receive buffer (50).
The micro module is loaded from this tree, amqplite from TREE (so an older commit can be
measured with the same loop).
"""

import gc
import importlib.util
import os
import sys
from pathlib import Path

import trio

from amqplite.protocol import methods
from amqplite.protocol.frames import encode_method_frame
from amqplite.server.outbox import Outbox

MICRO = Path(__file__).resolve().parents[4] / "amqplite" / "bench" / "micro.py"
spec = importlib.util.spec_from_file_location("micro_here", MICRO)
assert spec is not None and spec.loader is not None
micro = importlib.util.module_from_spec(spec)
spec.loader.exec_module(micro)


def _outbox() -> Outbox:
    try:
        return Outbox(None, high_water=1 << 30, low_water=1 << 29, now=0.0)  # type: ignore[arg-type]
    except TypeError:  # a tree from before Outbox(now=...): lend it a clock
        real = trio.current_time
        trio.current_time = lambda: 0.0
        try:
            return Outbox(None, high_water=1 << 30, low_water=1 << 29)  # type: ignore[arg-type]
        finally:
            trio.current_time = real


micro._outbox = _outbox
mode, k, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
gc.disable()  # collections would land at different points in the two runs
batch = int(os.environ.get("BATCH", "50"))
prefetch = int(os.environ.get("PREFETCH", "100"))
broker, flushes = micro._session_broker()
producer, consumer = micro._session(broker, flushes), micro._session(broker, flushes)
setup = encode_method_frame(1, methods.QueueDeclare(queue="bench")) + encode_method_frame(
    1, methods.BasicQos(0, prefetch, False)
)
if mode != "publish":
    setup += encode_method_frame(1, methods.BasicConsume(queue="bench", consumer_tag="ctag"))
micro._batch(consumer, setup, flushes)
publishes = micro._publish_bytes(16) * batch
if mode == "backlog":
    for _ in range(20):
        micro._batch(producer, publishes, flushes)
    consumer.outbox.buffer.clear()
acks = [
    b"".join(encode_method_frame(1, methods.BasicAck(t, False)) for t in range(i, i + batch))
    for i in range(1, total + 1, batch)
]
for ack in acks[: k // batch]:
    micro._batch(producer, publishes, flushes)
    if mode != "publish":
        micro._batch(consumer, ack, flushes)
