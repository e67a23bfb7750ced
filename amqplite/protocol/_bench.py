"""Micro-benchmark of the protocol hot path (protocol layer, dev tool).

``python -m amqplite.protocol._bench`` prints decoded publishes/s (publish + header +
body frames through ServerConnection, in receive buffers of 64 KiB, with a basic.ack
after every message as a consuming client would interleave) and encoded delivers/s.
Output goes to stdout because this is a command-line tool.
"""

from __future__ import annotations

import sys
import time

from amqplite.message import BasicProperties, Message
from amqplite.protocol import methods
from amqplite.protocol.connection import NEED_DATA, ServerConnection
from amqplite.protocol.frames import (
    PROTOCOL_HEADER,
    encode_content,
    encode_deliver,
    encode_method_frame,
)


def _running() -> ServerConnection:
    proto = ServerConnection()
    proto.receive_data(PROTOCOL_HEADER)
    proto.next_events()
    proto.send_method(0, methods.ConnectionStart(0, 9, {}, b"PLAIN", b"en_US"))
    proto.receive_data(
        encode_method_frame(0, methods.ConnectionStartOk({}, "PLAIN", b"\0guest\0guest", "en_US"))
    )
    proto.next_events()
    proto.send_method(0, proto.tune_method())
    proto.receive_data(encode_method_frame(0, methods.ConnectionTuneOk(2047, 131072, 0)))
    proto.receive_data(encode_method_frame(0, methods.ConnectionOpen("/")))
    proto.next_events()
    proto.receive_data(encode_method_frame(1, methods.ChannelOpen()))
    proto.next_events()
    return proto


def bench_publish(n: int = 200_000, size: int = 16) -> float:
    one = encode_content(
        1,
        methods.BasicPublish(exchange="", routing_key="bench"),
        BasicProperties(delivery_mode=1),
        b"x" * size,
        131072,
    ) + encode_method_frame(1, methods.BasicAck(1))
    per_chunk = max(1, 65536 // len(one))
    chunk = one * per_chunk
    proto = _running()
    rounds = n // per_chunk
    start = time.perf_counter()
    count = 0
    for _ in range(rounds):
        proto.receive_data(chunk)
        next_event = proto.next_event
        while next_event() is not NEED_DATA:
            count += 1
    elapsed = time.perf_counter() - start
    assert count == rounds * per_chunk * 2
    return rounds * per_chunk / elapsed


def bench_deliver(n: int = 200_000, size: int = 16) -> float:
    message = Message("", "bench", BasicProperties(delivery_mode=1), b"x" * size)
    start = time.perf_counter()
    for tag in range(1, n + 1):
        encode_deliver(1, "amq.ctag-1", tag, False, "", "bench", message, 131072)
    return n / (time.perf_counter() - start)


def main() -> int:
    for size in (16, 1024):
        pub = bench_publish(size=size)
        dlv = bench_deliver(size=size)
        sys.stdout.write(
            f"body {size:5d} B: {pub:,.0f} publishes/s decoded (+1 ack each), "
            f"{dlv:,.0f} delivers/s encoded\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
