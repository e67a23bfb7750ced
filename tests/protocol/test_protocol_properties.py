"""Basic properties: flag words, continuation, and the raw bytes kept for re-sending."""

from __future__ import annotations

import pytest
from _protocol_helpers import basic_properties
from hypothesis import given, settings

from amqplite.errors import AMQPConnectionError, ReplyCode
from amqplite.message import EMPTY_PROPERTIES, BasicProperties, Message
from amqplite.protocol import decode_properties, encode_deliver, encode_properties


@settings(max_examples=150, deadline=None)
@given(basic_properties)
def test_properties_round_trip(props: BasicProperties) -> None:
    raw = encode_properties(props)
    assert decode_properties(raw) == props
    assert decode_properties(bytearray(b"xx" + raw + b"yy"), 2, 2 + len(raw)) == props


def test_flags_follow_the_spec_bit_order() -> None:
    raw = encode_properties(BasicProperties(content_type="a", delivery_mode=2, cluster_id="c"))
    assert raw == b"\x90\x04" + b"\x01a" + b"\x02" + b"\x01c"
    assert encode_properties(EMPTY_PROPERTIES) == b"\x00\x00"
    assert decode_properties(b"\x00\x00") is EMPTY_PROPERTIES


def test_continuation_flag_words_without_properties_are_accepted() -> None:
    assert decode_properties(b"\x10\x01\x00\x00\x02") == BasicProperties(delivery_mode=2)


def test_properties_beyond_the_basic_class_are_a_frame_error() -> None:
    with pytest.raises(AMQPConnectionError) as info:
        decode_properties(b"\x00\x01\x80\x00")
    assert info.value.reply_code == ReplyCode.FRAME_ERROR


@pytest.mark.parametrize("raw", [b"\x80\x00\x05ab", b"\x10\x00", b"\x00\x00\x00", b"\x00"])
def test_truncated_or_padded_properties_are_frame_errors(raw: bytes) -> None:
    with pytest.raises(AMQPConnectionError):
        decode_properties(raw)


def test_delivering_a_python_built_message_caches_its_raw_properties() -> None:
    props = BasicProperties(content_type="text/plain", headers={"x-death": [{"count": 1}]})
    message = Message("ex", "rk", props, b"body")
    assert message.raw_properties is None
    encode_deliver(1, "ctag", 1, False, "ex", "rk", message, 131072)
    assert message.raw_properties == encode_properties(props)


def test_received_raw_properties_are_resent_unchanged() -> None:
    # A publisher's encoding our encoder would not produce (a 'b' int8 header).
    raw = b"\x20\x00" + b"\x00\x00\x00\x04\x01kb\x05"
    message = Message("", "q", decode_properties(raw), b"", raw_properties=raw)
    assert raw in encode_deliver(1, "c", 1, False, "", "q", message, 131072)
