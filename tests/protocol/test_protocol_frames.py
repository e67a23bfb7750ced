"""Frames: decoding from partial buffers, the 501 checks, and the content encoders."""

from __future__ import annotations

import pytest

from amqplite.errors import AMQPConnectionError, ReplyCode
from amqplite.message import BasicProperties, Message
from amqplite.protocol import (
    FRAME_BODY,
    FRAME_HEADER,
    FRAME_METHOD,
    HEARTBEAT_FRAME,
    decode_frame,
    decode_properties,
    encode_content,
    encode_deliver,
    encode_frame,
    encode_get_ok,
    encode_method_frame,
    encode_return,
    methods,
)
from amqplite.protocol.frames import Frame


def _frames(data: bytes) -> list[Frame]:
    out = []
    pos = 0
    while pos < len(data):
        decoded = decode_frame(data, pos)
        assert decoded is not None
        frame, pos = decoded
        out.append(frame)
    return out


def test_every_proper_prefix_of_a_frame_needs_more_data() -> None:
    frame = encode_method_frame(3, methods.BasicAck(9))
    for cut in range(len(frame)):
        assert decode_frame(frame[:cut]) is None
    assert decode_frame(memoryview(frame)) == (Frame(FRAME_METHOD, 3, frame[7:-1]), len(frame))
    assert decode_frame(bytearray(b"pad" + frame), 3) == (
        Frame(FRAME_METHOD, 3, frame[7:-1]),
        len(frame) + 3,
    )


def test_bad_frame_end_is_a_frame_error() -> None:
    frame = bytearray(HEARTBEAT_FRAME)
    frame[-1] = 0
    with pytest.raises(AMQPConnectionError) as info:
        decode_frame(frame)
    assert info.value.reply_code == ReplyCode.FRAME_ERROR


def test_frame_larger_than_frame_max_is_refused_from_its_header_alone() -> None:
    head = encode_frame(FRAME_BODY, 1, b"x" * 5000)[:7]
    with pytest.raises(AMQPConnectionError) as info:
        decode_frame(head, 0, frame_max=4096)
    assert info.value.reply_code == ReplyCode.FRAME_ERROR
    assert "frame_too_large" in info.value.reply_text


def test_unknown_frame_type_is_a_frame_error() -> None:
    with pytest.raises(AMQPConnectionError) as info:
        decode_frame(encode_frame(4, 0, b""))
    assert info.value.reply_code == ReplyCode.FRAME_ERROR


def test_content_body_is_split_at_frame_max_minus_eight() -> None:
    body = bytes(range(256)) * 40  # 10240 bytes
    data = encode_content(1, methods.BasicPublish(routing_key="q"), BasicProperties(), body, 4096)
    frames = _frames(data)
    assert [f.type for f in frames] == [FRAME_METHOD, FRAME_HEADER] + [FRAME_BODY] * 3
    assert [len(f.payload) for f in frames[2:]] == [4088, 4088, 2064]
    assert b"".join(f.payload for f in frames[2:]) == body


def test_empty_body_sends_no_body_frame() -> None:
    data = encode_content(1, methods.BasicPublish(), BasicProperties(), b"", 4096)
    assert [f.type for f in _frames(data)] == [FRAME_METHOD, FRAME_HEADER]


@pytest.mark.parametrize("frame_max", [0, 4096, 131072])
@pytest.mark.parametrize("body", [b"", b"hi", b"z" * 9000])
def test_fast_encoders_match_the_generic_content_encoder(frame_max: int, body: bytes) -> None:
    props = BasicProperties(content_type="text/plain", priority=3, headers={"h": [1, "two"]})
    message = Message("ex", "rk", props, body)
    cases = [
        (
            encode_deliver(2, "ctag", 42, True, "ex", "rk", message, frame_max),
            methods.BasicDeliver("ctag", 42, True, "ex", "rk"),
        ),
        (
            encode_get_ok(2, 7, False, "ex", "rk", 99, message, frame_max),
            methods.BasicGetOk(7, False, "ex", "rk", 99),
        ),
        (
            encode_return(2, 312, "NO_ROUTE", "ex", "rk", message, frame_max),
            methods.BasicReturn(312, "NO_ROUTE", "ex", "rk"),
        ),
    ]
    for fast, method in cases:
        assert fast == encode_content(2, method, props, body, frame_max)
    header = _frames(cases[0][0])[1]
    assert decode_properties(header.payload, 12) == props
