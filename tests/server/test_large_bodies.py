"""Large bodies go through the broker without copies: received into one buffer, written out
from it (memoryview slices, vectored sends), shared by every queue they are routed to.

The broker runs in this process under tracemalloc; pika runs in a child process, so what is
traced is the broker's memory alone.  The bounds are in multiples of the body size: a copy
per frame, per queue or per delivery would exceed them several times over.
"""

from __future__ import annotations

import socket
import sys
import tracemalloc
from collections.abc import Iterator

import pytest
import trio
from rawamqp import RawClient

from amqplite.app import serve
from amqplite.server.connection import unsent_limit

BODY = 4 << 20  # 32 frames of pika's default 128 KiB frame_max
QUEUES = 3

# The client: 'publish' routes one BODY-byte message to QUEUES queues (fanout) and waits
# until they all hold it; 'consume' gets it from each queue and checks every byte.
CLIENT = """
import sys, pika
port, step, size, queues = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
body = bytes(range(256)) * (size // 256)
conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
ch = conn.channel()
names = [f"big{i}" for i in range(queues)]
if step == "publish":
    ch.exchange_declare("big", "fanout")
    for name in names:
        ch.queue_declare(name)
        ch.queue_bind(name, "big")
    ch.confirm_delivery()
    ch.basic_publish("big", "", body)
    for name in names:
        assert ch.queue_declare(name, passive=True).method.message_count == 1
else:
    for name in names:
        method, _props, got = ch.basic_get(name, auto_ack=True)
        assert method is not None and got == body, name
conn.close()
print("ok")
"""


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


async def _client(port: int, step: str) -> None:
    result = await trio.run_process(
        [sys.executable, "-c", CLIENT, str(port), step, str(BODY), str(QUEUES)],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.strip() == b"ok"


async def _peak_growth(port: int, step: str) -> int:
    """Most traced memory held at once while the client runs ``step``, above the start."""
    tracemalloc.reset_peak()
    start, _ = tracemalloc.get_traced_memory()
    with trio.fail_after(60):
        await _client(port, step)
    _, peak = tracemalloc.get_traced_memory()
    return peak - start


@pytest.mark.usefixtures("traced")
async def test_a_large_body_is_received_once_shared_by_queues_and_sent_uncopied() -> None:
    async with serve(shutdown_timeout=0.2) as running:
        published = await _peak_growth(running.port, "publish")
        # The body itself, once for all three queues; a frame list joined at the end, or
        # a copy per queue, would need two or four bodies.
        assert published < 1.25 * BODY, f"publish held {published / BODY:.2f} bodies"
        delivered = await _peak_growth(running.port, "consume")
        # Three get-oks sent from the body the queues hold: no joined frames, no outbox copy.
        assert delivered < 0.25 * BODY, f"delivery held {delivered / BODY:.2f} bodies"


# The client: 'publish' puts bodies of SIZES (a small one, large ones of one body frame at
# pika's frame_max of 128 KiB, the largest one-frame body, and bodies of several frames) in
# queue 'mixed'; 'consume' takes them all with the given prefetch and checks every byte.
MIXED_CLIENT = """
import sys, pika
port, step, prefetch = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
sizes = [int(s) for s in sys.argv[4].split(",")]
bodies = [bytes((i * 7 + j) % 251 for j in range(256)) * (n // 256) + b"e" * (n % 256)
          for i, n in enumerate(sizes)]
conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
ch = conn.channel()
if step == "publish":
    ch.queue_declare("mixed")
    ch.confirm_delivery()
    for body in bodies:
        ch.basic_publish("", "mixed", body)
else:
    ch.basic_qos(prefetch_count=prefetch)
    got = []
    for method, _props, body in ch.consume("mixed", inactivity_timeout=30):
        assert method is not None, "timed out"
        got.append(body)
        ch.basic_ack(method.delivery_tag)
        if len(got) == len(bodies):
            break
    assert [len(b) for b in got] == sizes
    assert got == bodies
conn.close()
print("ok")
"""
SIZES = "16,9000,65536,131064,131065,16,300000,20000"


@pytest.mark.parametrize("prefetch", [1, 100])
async def test_large_bodies_of_one_frame_or_several_reach_a_consumer_intact(prefetch: int) -> None:
    # Prefetch 1 delivers one message per ack, 100 a run of them: the broker's two
    # delivery paths, each with bodies sent from the buffer they were received into.
    async def client(port: int, step: str) -> None:
        result = await trio.run_process(
            [sys.executable, "-c", MIXED_CLIENT, str(port), step, str(prefetch), SIZES],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout.strip() == b"ok"

    async with serve(shutdown_timeout=0.2) as running:
        with trio.fail_after(60):
            await client(running.port, "publish")
            await client(running.port, "consume")


# A child process (the allocator's settings are process-wide): after the server's malloc
# tuning, 1 MiB blocks freed and allocated in turn, as bodies flow, reuse the heap's
# pages instead of faulting fresh ones in.  (glibc's defaults fault about 11 of each
# block's 256 pages in here.)
MALLOC_CHILD = """
import collections, resource, sys
from amqplite.server.heap import tune_malloc
tune_malloc()
def flow(blocks):
    live = collections.deque()
    for _ in range(blocks):
        live.append(bytearray(1 << 20))
        if len(live) > 8:
            live.popleft()
flow(50)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
flow(200)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 200)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
async def test_body_memory_is_reused_without_page_faults() -> None:
    result = await trio.run_process(
        [sys.executable, "-c", MALLOC_CHILD], capture_stdout=True, capture_stderr=True
    )
    faults_per_block = float(result.stdout)
    assert faults_per_block < 1, f"{faults_per_block} page faults per 1 MiB block"


@pytest.mark.skipif(not hasattr(socket, "TCP_NOTSENT_LOWAT"), reason="a Linux socket option")
async def test_the_kernel_takes_more_unsent_output_than_the_outbox_holds() -> None:
    """trio limits a socket's unsent bytes to 16 KiB, so a 1 MiB delivery went out in
    about eight partial sends, each after a wake-up for writability.  The broker raises
    the limit above its outbox's high-water mark on every connection it accepts."""
    async with serve(shutdown_timeout=0.2) as running:
        with trio.fail_after(5):
            client = await RawClient.connect(running.port)
            await client.handshake()
            (conn,) = running.server.connections
            assert isinstance(conn.stream, trio.SocketStream)
            lowat = conn.stream.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT)
            assert lowat == unsent_limit(running.server.settings) > conn.outbox.high_water
            await client.aclose()


# A child process: 200 MiB of bodies freed stay in the heap (reused, never faulted in
# again) while messages flow, and are given back once traffic has stopped for the idle
# period.  Time is trio's MockClock: the trimmer's seconds pass at once.
TRIM_CHILD = """
import trio, trio.testing
from amqplite.server.heap import IdleTrimmer, tune_malloc
tune_malloc()
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 >> 20
blocks = [bytearray(1 << 20) for _ in range(200)]
del blocks
freed = rss_mb()
traffic = [0]
async def main():
    trimmer = IdleTrimmer(lambda: traffic[0], idle=5.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trimmer.run)
        for _ in range(30):  # a message a second for 30 s
            traffic[0] += 1
            await trio.sleep(1)
        during = (trimmer.trims, rss_mb())
        await trio.sleep(11)  # quiet for two idle periods
        after = (trimmer.trims, rss_mb())
        nursery.cancel_scope.cancel()
    print(freed, *during, *after)
trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")
async def test_freed_body_memory_is_kept_while_messages_flow_and_given_back_when_idle() -> None:
    result = await trio.run_process(
        [sys.executable, "-c", TRIM_CHILD], capture_stdout=True, capture_stderr=True
    )
    freed, trims_during, rss_during, trims_after, rss_after = map(int, result.stdout.split())
    assert freed > 200, "the freed bodies stay in the heap"
    assert (trims_during, trims_after) == (0, 1)
    assert rss_during > 200
    assert rss_after < freed - 150, f"{freed} MB before the trim, {rss_after} MB after"
