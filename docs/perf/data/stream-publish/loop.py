"""CPU per message of publishing with confirms, in process (docs/performance.md, issue 11).

A publisher Session on a Broker with a real FileStore in a scratch directory, confirm mode,
``BATCH`` publishes per receive buffer, and after each buffer what the connection's reader
does (store flush, take the confirms, emit them; a store sync every ``SYNC_EVERY`` buffers,
fsync included).  MODE: ``stream`` (x-queue-type stream) or ``classic`` (durable queue,
delivery_mode 2)::

    PYTHONPATH=TREE python -P docs/perf/data/stream-publish/loop.py stream 200000 [16]
    # instructions: run under valgrind --tool=callgrind for two counts and subtract
    # profile: add --profile (cProfile, sorted by tottime)

Prints CPU µs per message (time.process_time over the loop).
"""

import gc
import importlib.util
import shutil
import sys
import tempfile
import time
from pathlib import Path

MICRO = Path(__file__).resolve().parents[4] / "amqplite" / "bench" / "micro.py"
spec = importlib.util.spec_from_file_location("micro_here", MICRO)
assert spec is not None and spec.loader is not None
micro = importlib.util.module_from_spec(spec)
spec.loader.exec_module(micro)

from amqplite.broker import Broker  # noqa: E402
from amqplite.broker.passwords import hash_password  # noqa: E402
from amqplite.message import BasicProperties  # noqa: E402
from amqplite.protocol import methods  # noqa: E402
from amqplite.protocol.frames import encode_content, encode_method_frame  # noqa: E402
from amqplite.server.outbox import FlushQueue  # noqa: E402
from amqplite.store.filestore import FileStore  # noqa: E402

BATCH = 500
SYNC_EVERY = 4

mode, total = sys.argv[1], int(sys.argv[2])
size = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3].isdigit() else 16
profile = "--profile" in sys.argv
path = tempfile.mkdtemp(prefix="swrite-loop-")
store = FileStore.open(path)
store.recover()
broker = Broker(clock=time.time, store=store)
broker.add_vhost("/")
broker.users.add_user("guest", hash_password("guest"), ("administrator",))
broker.users.set_permissions("guest", "/", ".*", ".*", ".*")
flushes = FlushQueue()
session = micro._session(broker, flushes)
args = {"x-queue-type": "stream"} if mode == "stream" else {}
micro._batch(
    session,
    encode_method_frame(1, methods.QueueDeclare(queue="bench", durable=True, arguments=args))
    + encode_method_frame(1, methods.ConfirmSelect()),
    flushes,
)
one = encode_content(
    1,
    methods.BasicPublish(exchange="", routing_key="bench"),
    BasicProperties(delivery_mode=2),
    b"x" * size,
    micro.FRAME_MAX,
)
data = one * BATCH


def run(rounds: int) -> None:
    for r in range(rounds):
        session.data_received(data)
        flushes.wake_dirty(skip=session.outbox)
        session.end_batch()
        store.flush()
        earned = session.take_confirms()
        session.sync_pending = False
        if earned is not None:
            session.emit_confirms(earned)
        session.outbox.buffer.clear()
        if r % SYNC_EVERY == SYNC_EVERY - 1:
            point = store.prepare_sync()
            point.fsync()
            store.complete_sync(point)


run(4)  # warm up
gc.collect()
rounds = max(1, total // BATCH)
if profile:
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    run(rounds)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)
else:
    start = time.process_time()
    run(rounds)
    cpu = time.process_time() - start
    print(f"{mode} {size} B: {cpu / (rounds * BATCH) * 1e6:.2f} us/msg CPU ({rounds * BATCH} msgs)")
store.close()
shutil.rmtree(path, ignore_errors=True)
