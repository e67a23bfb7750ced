"""DeliverEncoder (the delivery hot path) writes exactly the bytes of the general encoder."""

from __future__ import annotations

import pytest

from amqplite.message import BasicProperties, Message, MessageRun
from amqplite.protocol import deliver
from amqplite.protocol.deliver import DeliverEncoder
from amqplite.protocol.frames import encode_deliver
from amqplite.protocol.properties import encode_properties

PROPS = BasicProperties(content_type="text/plain", delivery_mode=2, headers={"k": "v"})


def _message(body: bytes, raw: bool = True, routing_key: str = "rk") -> Message:
    return Message("ex", routing_key, PROPS, body, encode_properties(PROPS) if raw else None)


@pytest.mark.parametrize(
    ("body", "raw", "frame_max"),
    [
        (b"x" * 16, True, 131072),
        (b"", True, 131072),  # no body frame
        (b"y" * 5000, True, 4096),  # several body frames
        (b"z" * 4088, True, 4096),  # exactly one full frame
        (b"z" * 4089, True, 4096),  # one byte over
        (b"w" * 100, False, 131072),  # properties not yet encoded
        (b"v" * 100, True, 0),  # frame_max 0: no limit
    ],
)
def test_same_bytes_as_encode_deliver(body: bytes, raw: bool, frame_max: int) -> None:
    encoder = DeliverEncoder(7)
    for tag, redelivered in ((1, False), (2**40, True)):
        expected = encode_deliver(
            7, "amq.ctag-é", tag, redelivered, "ex", "rk", _message(body, raw), frame_max
        )
        got = encoder.encode(
            "amq.ctag-é", tag, redelivered, "ex", "rk", _message(body, raw), frame_max
        )
        assert got == expected
        head = encoder.encode_head(
            "amq.ctag-é", tag, redelivered, "ex", "rk", _message(body, raw), frame_max
        )
        # Up to the body, for one body frame with wire properties; None otherwise.
        one_frame = raw and body and not (frame_max and len(body) > frame_max - 8)
        assert (head is None) == (not one_frame)
        if head is not None:
            assert head + body + b"\xce" == expected


def test_templates_are_per_consumer_exchange_and_key_and_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deliver, "TEMPLATES_MAX", 4)
    encoder = DeliverEncoder(1)
    for i in range(10):
        key = f"key.{i}"
        for ctag in ("a", "bb"):
            msg = _message(b"body", routing_key=key)
            got = encoder.encode(ctag, i + 1, False, "ex", key, msg, 131072)
            assert got == encode_deliver(1, ctag, i + 1, False, "ex", key, msg, 131072)
    assert len(encoder._templates) <= 4


class _Entry:
    def __init__(self, message: Message, redelivered: bool = False) -> None:
        self.message = message
        self.redelivered = redelivered


def test_encode_many_writes_each_delivery_as_encode_deliver_and_stops_at_a_large_body() -> None:
    entries = [
        _Entry(_message(b"a" * 16)),
        _Entry(_message(b"b" * 16), redelivered=True),
        _Entry(_message(b"c" * 16, routing_key="other")),
        _Entry(_message(b"d" * 16)),
        _Entry(_message(b"")),  # no body frame
        _Entry(_message(b"e" * 20, raw=False)),  # properties not yet encoded
        _Entry(_message(b"f" * 5000)),  # several body frames (frame_max 4096)
        _Entry(_message(b"g" * 16)),
        _Entry(_message(b"h" * 9000)),  # at max_body: the caller sends it
        _Entry(_message(b"i" * 16)),
    ]
    encoder = DeliverEncoder(3)

    def expected(i: int) -> bytes:
        entry = entries[i]
        message = entry.message
        return encode_deliver(
            3, "ctag", 10 + i, entry.redelivered, "ex", message.routing_key, message, 4096
        )

    out: list[bytes | bytearray] = []
    stop = encoder.encode_many("ctag", 10, entries, 0, 9000, 4096, out)
    assert stop == 8
    assert b"".join(out) == b"".join(expected(i) for i in range(8))
    out.clear()
    assert encoder.encode_many("ctag", 10, entries, 9, 9000, 4096, out) == 10
    assert b"".join(out) == expected(9)


def test_batch_writes_the_bytes_of_one_encode_per_message_and_stops_where_told() -> None:
    messages = [
        _message(b"a" * 16),
        _message(b"b" * 300, routing_key="other"),  # a new template mid-run
        Message("ex", "other", PROPS, b"c", encode_properties(PROPS)),  # equal, not same str
        _message(b"d" * 16),
        _message(b"", raw=True),  # no body frame: the templates do not take it
        _message(b"e" * 16),
    ]
    run = MessageRun.of(messages)
    expected = [
        encode_deliver(3, "ct", 10 + i, False, m.exchange, m.routing_key, m, 131072)
        for i, m in enumerate(messages)
    ]
    encoder = DeliverEncoder(3)
    out = bytearray(b"before")
    assert encoder.encode_batch(out, "ct", 10, run, 0, 8191, 1 << 20) == 4
    assert out == b"before" + b"".join(expected[:4])
    out = bytearray()
    assert encoder.encode_batch(out, "ct", 15, run, 5, 8191, 1 << 20) == 1
    assert out == expected[5]
    # Over body_max: not taken; the limit stops after the message that reached it.
    out = bytearray()
    assert encoder.encode_batch(out, "ct", 11, run, 1, 299, 1 << 20) == 0
    assert encoder.encode_batch(out, "ct", 10, run, 0, 8191, 1) == 1
    assert out == expected[0]
    out = bytearray()
    no_raw = MessageRun.of([_message(b"x", raw=False)])
    assert encoder.encode_batch(out, "ct", 1, no_raw, 0, 8191, 1 << 20) == 0
    assert out == b""
