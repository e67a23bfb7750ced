"""The no-broker self-test: how many messages per second the bench client itself can handle.

Layer: ``amqplite/bench`` (stdlib only). It times the two halves of the client's per-message
work on one core: encoding publish batches (``PublishTemplate.batch``) and parsing a stream of
basic.deliver + header + body frames in receive-sized chunks (``Receiver.feed``, including
building the acks). If the combined rate is far above what a broker delivers, the client is
not what limits a measurement.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from amqplite.bench.wire import PublishTemplate, Receiver, encode_deliver

RECV_CHUNK = 65536  # what one socket read typically returns under load


@dataclass(frozen=True, slots=True)
class SelftestResult:
    size: int
    messages: int
    encode_per_s: float
    parse_per_s: float
    msg_per_s: float  # encode + parse of each message, one after the other on one core


def run_selftest(size: int = 16, messages: int = 200_000, *, ack_every: int = 0) -> SelftestResult:
    template = PublishTemplate(1, "bench.x", ["k"], size, 131072)
    t0 = time.perf_counter()
    left = messages
    now_ns = time.monotonic_ns
    encoded = 0
    while left > 0:
        k = min(template.batch_max, left)
        encoded += len(template.batch(k, now_ns()))
        left -= k
    t_encode = time.perf_counter() - t0

    body = time.monotonic_ns().to_bytes(8, "big") + b"x" * (size - 8) if size >= 8 else b"x" * size
    one = encode_deliver(1, "ctag", 1, "bench.x", "k", body)
    per_chunk = max(1, RECV_CHUNK // len(one))
    stream = one * per_chunk
    # Cut the stream at chunk boundaries that do not line up with frames, as TCP does.
    cut = len(stream) // 2 + 3
    pieces = (stream[:cut], stream[cut:])
    receiver = Receiver()
    receiver.set_ack_every(1, ack_every)
    feed = receiver.feed
    rounds = max(1, messages // per_chunk)
    t0 = time.perf_counter()
    for _ in range(rounds):
        feed(pieces[0])
        feed(pieces[1])
    t_parse = time.perf_counter() - t0
    parsed = rounds * per_chunk
    if receiver.delivered != parsed:
        raise AssertionError(f"self-test parsed {receiver.delivered} of {parsed} deliveries")
    encode_rate = messages / t_encode
    parse_rate = parsed / t_parse
    return SelftestResult(
        size=size,
        messages=messages,
        encode_per_s=round(encode_rate, 1),
        parse_per_s=round(parse_rate, 1),
        msg_per_s=round(1 / (1 / encode_rate + 1 / parse_rate), 1),
    )
