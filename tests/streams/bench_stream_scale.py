"""Scale check for the stream log, run by hand (not collected by pytest).

Builds a stream of N messages (16 B bodies, chunks of 1,000) in a directory, then times what
a restart does (open the log: read every segment's index, verify the newest segment's
tail), seeks by offset (a one-off read, and a consumer attach, which decodes the whole
chunk) and by time, and prints the process's peak RSS::

    python tests/streams/bench_stream_scale.py 10000000 /dev/shm/s10m --build
    python tests/streams/bench_stream_scale.py 10000000 /dev/shm/s10m
"""

from __future__ import annotations

import resource
import shutil
import sys
import time

from amqplite.message import BasicProperties, Message
from amqplite.protocol.properties import StreamWire
from amqplite.store.streamfile import FileStreamLog

T0 = 1_700_000_000.0
SEGMENT_BYTES = 500_000_000


def build(n: int, directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    log = FileStreamLog(directory, max_segment_bytes=SEGMENT_BYTES)
    props = BasicProperties()
    raw = StreamWire.with_offset(Message("", "s", props, b"", b"\x00\x00"), 0)
    started = time.perf_counter()
    for base in range(0, n, 1000):
        log.append(
            [
                (T0 + (base + i) / 1000.0, Message("", "s", props, b"0123456789abcdef", raw))
                for i in range(1000)
            ]
        )
    elapsed = time.perf_counter() - started
    print(
        f"built {n} messages in {elapsed:.1f} s: {log.segment_count} segments, {log.size_bytes} B"
    )
    log.close()


def ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


def measure(n: int, directory: str) -> None:
    started = time.perf_counter()
    log = FileStreamLog(directory, max_segment_bytes=SEGMENT_BYTES)
    print(f"restart (open the log): {ms(started)} ms, next offset {log.next_offset}")
    for offset in (0, 1_234_567 % n, n // 2, n - 5):
        started = time.perf_counter()
        found = log.read(offset, 1, cache=False)[0].offset
        one_off = ms(started)
        started = time.perf_counter()
        log.read(offset, 1)
        print(f"seek offset {offset} -> {found}: {one_off} ms; consumer attach {ms(started)} ms")
    for ts in (T0 + 12.3456, T0 + n / 2000.0 + 0.0005, T0 + (n - 3) / 1000.0):
        started = time.perf_counter()
        found = log.offset_at(ts)
        print(f"seek time {ts:.4f} -> offset {found}: {ms(started)} ms")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")


if __name__ == "__main__":
    count, where = int(sys.argv[1]), sys.argv[2]
    if "--build" in sys.argv:
        build(count, where)
    measure(count, where)
