"""DeliverEncoder (the delivery hot path) writes exactly the bytes of the general encoder."""

from __future__ import annotations

import pytest

from amqplite.message import BasicProperties, Message
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
