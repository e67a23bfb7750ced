"""StreamWire: the x-stream-offset header spliced into a publisher's property bytes decodes
to the same properties plus the header, whatever properties the publisher set."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from amqplite.message import BasicProperties, Long, Message
from amqplite.protocol.properties import StreamWire, decode_properties, encode_properties


@pytest.mark.parametrize(
    "props",
    [
        BasicProperties(),
        BasicProperties(content_type="text/plain"),
        BasicProperties(content_type="a/b", content_encoding="gzip", delivery_mode=2),
        BasicProperties(headers={"app": "x", "n": 5}, message_id="m1", priority=3),
        BasicProperties(content_encoding="br", headers={}, timestamp=1_700_000_000),
        BasicProperties(headers={"x-stream-offset": 99, "k": [1, "two"]}),
    ],
)
@pytest.mark.parametrize("with_raw", [True, False])
def test_offset_header_is_added_and_everything_else_kept(
    props: BasicProperties, with_raw: bool
) -> None:
    raw = encode_properties(props) if with_raw else None
    message = Message("ex", "rk", props, b"body", raw)
    spliced = StreamWire.with_offset(message, 2**40 + 7)
    decoded = decode_properties(spliced)
    headers: dict[str, Any] = dict(props.headers or {})
    headers["x-stream-offset"] = 2**40 + 7
    assert decoded.headers == headers
    assert type(decoded.headers["x-stream-offset"]) is Long  # travels as a long ('l')
    assert decoded == attrs.evolve(props, headers=decoded.headers)
    assert StreamWire.decode(spliced) == decoded
