"""ServerConnection: handshake, content assembly, RabbitMQ's connection-level checks, chunking, fuzzing."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from _protocol_helpers import (
    comparable,
    drain,
    feed,
    handshake_bytes,
    open_channel,
    open_connection,
    running,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amqplite.errors import AMQPConnectionError, AMQPError, ChannelError, ReplyCode
from amqplite.message import BasicProperties, Message
from amqplite.protocol import (
    FRAME_BODY,
    FRAME_HEADER,
    HEARTBEAT_FRAME,
    NEED_DATA,
    PROTOCOL_HEADER,
    ServerConnection,
    encode_content,
    encode_deliver,
    encode_frame,
    encode_method_frame,
    encode_properties,
    events,
    methods,
)
from amqplite.protocol.connection import DIRECT_REST_MIN, PEEK, PEEK_MIN

PUBLISH = methods.BasicPublish(exchange="ex", routing_key="rk", mandatory=True)
PROPS = BasicProperties(content_type="text/plain", delivery_mode=2, headers={"k": "v"})


def _expect_error(proto: ServerConnection, data: bytes, code: int, text: str = "") -> AMQPError:
    proto.receive_data(data)
    with pytest.raises(AMQPError) as info:
        drain(proto)
    assert info.value.reply_code == code, info.value.reply_text
    assert text in info.value.reply_text
    return info.value


# -- handshake ---------------------------------------------------------------------


def test_handshake_yields_header_then_methods_and_negotiates_tune() -> None:
    proto = ServerConnection(frame_max=131072, channel_max=2047, heartbeat=60)
    open_connection(proto, frame_max=65536, channel_max=100, heartbeat=30)
    assert (proto.frame_max, proto.channel_max, proto.heartbeat) == (65536, 100, 30)


def test_client_zero_in_tune_ok_means_the_servers_value() -> None:
    proto = ServerConnection(frame_max=131072, channel_max=2047)
    open_connection(proto, frame_max=0, channel_max=0, heartbeat=0)
    assert (proto.frame_max, proto.channel_max, proto.heartbeat) == (131072, 2047, 0)


@pytest.mark.parametrize(
    ("frame_max", "channel_max", "text"),
    [
        (
            200000,
            10,
            "negotiated frame_max = 200000 is higher than the maximum allowed value (131072)",
        ),
        (1000, 10, "negotiated frame_max = 1000 is lower than the minimum allowed value (4096)"),
        (
            4096,
            5000,
            "negotiated channel_max = 5000 is higher than the maximum allowed value (2047)",
        ),
    ],
)
def test_tune_ok_outside_the_servers_limits_is_not_allowed(
    frame_max: int, channel_max: int, text: str
) -> None:
    proto = ServerConnection()
    header, start_ok, _tune_ok, _ = handshake_bytes()
    feed(proto, header + start_ok)
    proto.send_method(0, proto.tune_method())
    tune_ok = encode_method_frame(0, methods.ConnectionTuneOk(channel_max, frame_max, 0))
    _expect_error(proto, tune_ok, ReplyCode.NOT_ALLOWED, text)


def test_protocol_header_may_arrive_in_pieces() -> None:
    proto = ServerConnection()
    assert feed(proto, b"AM") == []
    assert feed(proto, b"QP\x00\x00") == []
    assert feed(proto, b"\x09\x01") == [events.ProtocolHeader()]


@pytest.mark.parametrize(
    "received", [b"AMQP\x00\x00\x09\x00", b"AMQP\x01\x01\x00\x0a", b"GET / HTTP/1.1\r\n"]
)
def test_wrong_protocol_header_gets_ours_back_and_input_is_ignored(received: bytes) -> None:
    proto = ServerConnection()
    evs = feed(proto, received + encode_method_frame(0, methods.ConnectionStartOk()))
    assert len(evs) == 1 and isinstance(evs[0], events.ProtocolHeaderMismatch)
    assert evs[0].reply == PROTOCOL_HEADER == b"AMQP\x00\x00\x09\x01"
    assert evs[0].received == received[:8]
    assert feed(proto, b"more") == []


def test_garbage_is_refused_before_eight_bytes_arrive() -> None:
    evs = feed(ServerConnection(), b"HELO")
    assert isinstance(evs[0], events.ProtocolHeaderMismatch)


def test_method_out_of_handshake_order_is_a_channel_error() -> None:
    proto = ServerConnection()
    header, _, tune_ok, _ = handshake_bytes()
    feed(proto, header)
    _expect_error(
        proto, tune_ok, ReplyCode.CHANNEL_ERROR, "unexpected method in connection state starting"
    )


def test_frames_on_a_channel_before_the_connection_is_open_are_unexpected() -> None:
    proto = ServerConnection()
    header, start_ok, _, _ = handshake_bytes()
    feed(proto, header + start_ok)
    _expect_error(proto, encode_method_frame(1, methods.ChannelOpen()), ReplyCode.UNEXPECTED_FRAME)


def test_non_connection_method_on_channel_zero_is_a_channel_error() -> None:
    _expect_error(
        running(),
        encode_method_frame(0, methods.QueueDeclare(queue="q")),
        ReplyCode.CHANNEL_ERROR,
        "unexpected method in connection state running",
    )


def test_connection_method_on_a_channel_is_command_invalid() -> None:
    _expect_error(
        running(), encode_method_frame(1, methods.ConnectionOpen()), ReplyCode.COMMAND_INVALID
    )


# -- content assembly --------------------------------------------------------------


def test_publish_header_and_body_assemble_into_one_content_event() -> None:
    proto = running()
    data = encode_content(1, PUBLISH, PROPS, b"hello world", proto.frame_max)
    raw = encode_properties(PROPS)
    assert comparable(feed(proto, data)) == [(1, PUBLISH, "ex", "rk", PROPS, raw, b"hello world")]


def test_empty_body_completes_at_the_header() -> None:
    proto = running()
    evs = feed(proto, encode_content(1, PUBLISH, PROPS, b"", proto.frame_max))
    assert comparable(evs) == [(1, PUBLISH, "ex", "rk", PROPS, encode_properties(PROPS), b"")]


def test_large_body_is_split_and_reassembled_with_a_small_frame_max() -> None:
    proto = ServerConnection(frame_max=4096)
    open_connection(proto, frame_max=4096)
    open_channel(proto, 1)
    body = bytes(range(256)) * (20 * 4096)  # 20 MiB
    data = encode_content(1, PUBLISH, BasicProperties(), body, 4096)
    received = []
    for start in range(0, len(data), 1 << 20):
        received += feed(proto, data[start : start + (1 << 20)])
    assert len(received) == 1
    content = received[0]
    assert isinstance(content, events.Content) and content.message.body == body


def _receive_like_a_server(
    proto: ServerConnection,
    wire: bytes,
    chunk: int,
    reads: list[int] | None = None,
    holds: int = 0,
) -> tuple[list[events.Event], int]:
    """Feed ``wire`` the way the server's reader does: up to ``chunk`` bytes at a time, or
    (like ``recvmsg_into``) scattered over the parts ``next_read`` offers and the bytes
    after them, as many as the socket ``holds`` (default ``chunk``); returns the events
    and how many bytes went into offered parts.  ``reads`` collects each receive's size."""
    holds = holds or chunk
    out: list[events.Event] = []
    pos = 0
    in_place = 0
    while pos < len(wire):
        want = proto.next_read(chunk)
        if isinstance(want, int):
            piece = wire[pos : pos + want]
            pos += len(piece)
            proto.receive_data(piece)
            if reads is not None:
                reads.append(len(piece))
        else:
            parts, after = want
            room = sum(len(p) for p in parts)
            n = min(room, len(wire) - pos, holds)
            start = pos
            for part in parts:
                take = min(len(part), start + n - pos)
                part[:take] = wire[pos : pos + take]
                pos += take
                part.release()
            in_place += n
            rest = proto.body_received(n)
            if rest:
                proto.receive_data(rest)
            piece = b""
            if n == room:  # what follows the payloads, in the same receive
                out += drain(proto)
                piece = wire[pos : pos + min(after, holds - n)]
                pos += len(piece)
                if piece:
                    proto.receive_data(piece)
            if reads is not None:
                reads.append(n + len(piece))
        out += drain(proto)
    return out, in_place


def test_a_large_body_arriving_in_pieces_is_received_in_place() -> None:
    proto = running(channels=(1, 2))
    body = bytes(range(256)) * 4096  # 1 MiB: 8 frames of 128 KiB
    small = encode_content(2, PUBLISH, PROPS, b"small", proto.frame_max)
    wire = encode_content(1, PUBLISH, PROPS, body, proto.frame_max) + small
    evs, in_place = _receive_like_a_server(proto, wire, 65536)
    contents = [e for e in evs if isinstance(e, events.Content)]
    assert [(c.channel, c.message.body) for c in contents] == [(1, body), (2, b"small")]
    # Most of the body went from the "socket" straight into the body's buffer.
    assert in_place > len(body) * 0.9
    # The header's properties and the method come through unchanged.
    assert contents[0].message.properties == PROPS and contents[0].method == PUBLISH


@pytest.mark.parametrize("size", [48 << 10, 120 << 10])
def test_a_body_frame_is_received_in_place_only_when_much_of_it_is_still_to_come(
    size: int,
) -> None:
    proto = running(channels=(1,))
    body = bytes(range(256)) * (size // 256)
    wire = encode_content(1, PUBLISH, PROPS, body, proto.frame_max)
    for still_to_come in (DIRECT_REST_MIN - 100, DIRECT_REST_MIN + 100):
        proto.receive_data(wire[:-still_to_come])
        assert drain(proto) == []
        want = proto.next_read(1 << 18)
        if still_to_come < DIRECT_REST_MIN and size < PEEK_MIN:
            # A system call for the last few KiB would cost more than copying them out
            # of the next ordinary read, which brings them with whatever follows.
            assert want == 1 << 18
            proto.receive_data(wire[-still_to_come:])
        else:  # (a body large enough for PEEK mode always goes in place)
            assert isinstance(want, tuple)
            parts, _after = want
            assert len(parts[0]) == still_to_come - 1  # the payload's rest; then its frame end
            parts[0][:] = wire[-still_to_come:-1]
            parts[0].release()
            assert proto.body_received(still_to_come - 1) == b""
            proto.receive_data(wire[-1:])
        contents = [e for e in drain(proto) if isinstance(e, events.Content)]
        assert [c.message.body for c in contents] == [body]


def test_large_bodies_back_to_back_are_received_in_place_not_within_large_reads() -> None:
    proto = running(channels=(1, 2))
    body = bytes(range(256)) * 1024  # 256 KiB: two frames of 128 KiB and a short one
    big = encode_content(1, PUBLISH, PROPS, body, proto.frame_max)
    small = encode_content(2, PUBLISH, PROPS, b"small", proto.frame_max)
    size = 256 << 10  # the server's read size, which would hold most of a body
    evs, in_place = _receive_like_a_server(proto, big * 4 + small, size)
    bodies = [e.message.body for e in evs if isinstance(e, events.Content)]
    assert bodies == [body] * 4 + [b"small"]
    # Nothing announced the first body, so one large read took most of it; once its
    # header was seen, reads are short and the next three bodies go in place, all but
    # what each short read took after its header.
    assert in_place > 3 * (len(body) - PEEK)
    # A small body ends the short reads.
    assert proto.next_read(size) == size


def test_a_large_body_in_equal_frames_is_taken_by_one_scatter_read() -> None:
    proto = running(channels=(1, 2))
    body = bytes(range(256)) * 4096  # 1 MiB: 8 frames of 128 KiB
    big = encode_content(1, PUBLISH, PROPS, body, proto.frame_max)
    small = encode_content(2, PUBLISH, PROPS, b"small", proto.frame_max)
    reads: list[int] = []
    # Reads of 256 KiB (the server's size); the socket holds whatever has been sent.
    evs, in_place = _receive_like_a_server(proto, big * 3 + small, 256 << 10, reads, 8 << 20)
    bodies = [e.message.body for e in evs if isinstance(e, events.Content)]
    assert bodies == [body] * 3 + [b"small"]
    # The first body: a 256 KiB read, then the rest of it in one.  The next two: a short
    # read (method, header, first frame head), then all 8 frames in one scatter read.
    assert len(reads) <= 2 + 2 + 2 + 1, reads
    assert in_place > 2 * len(body)


def _frames(channel: int, body: bytes, sizes: list[int]) -> bytes:
    """A publish whose body is cut into frames of ``sizes``, then of 131,064 bytes."""
    parts = [encode_method_frame(channel, PUBLISH)]
    parts.append(encode_content(channel, PUBLISH, PROPS, b"", 4096)[len(parts[0]) :])
    header = bytearray(parts[1])
    header[11:19] = len(body).to_bytes(8, "big")  # the header's body size
    parts[1] = bytes(header)
    pos = 0
    given = iter(sizes)
    while pos < len(body):
        size = next(given, 131064)
        parts.append(encode_frame(FRAME_BODY, channel, body[pos : pos + size]))
        pos += size
    return b"".join(parts)


def _outcome(
    proto: ServerConnection, feeding: Callable[[ServerConnection], list[events.Event]]
) -> tuple[list[object], tuple[int, str] | None]:
    try:
        return comparable(feeding(proto)), None
    except AMQPError as exc:
        return [], (exc.reply_code, exc.reply_text)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frames=st.lists(
        st.lists(st.sampled_from([131064, 131064, 131064, 65536, 9000, 100]), max_size=4),
        min_size=1,
        max_size=3,
    ),
    lengths=st.lists(st.integers(1, 300_000), min_size=3, max_size=3),
    holds=st.sampled_from([4096, 70_000, 131_072, 131_080, 300_000, 8 << 20]),
    flip=st.none() | st.tuples(st.integers(0, 2_000_000), st.integers(0, 255)),
)
def test_scatter_reads_give_the_events_and_errors_of_plain_input(
    frames: list[list[int]],
    lengths: list[int],
    holds: int,
    flip: tuple[int, int] | None,
) -> None:
    """Whatever the peer's frame sizes (equal ones, as every client sends, or not), however
    much each read takes, and with a byte changed anywhere, receiving in place gives what
    receiving the same bytes plainly gives: the same contents, or the same error."""
    wire = bytearray()
    for i, sizes in enumerate(frames):
        body = bytes([i + 1]) * lengths[i]
        wire += _frames(1 + i % 2, body, sizes)
        wire += encode_method_frame(1, methods.BasicAck(i + 1, False))
    if flip is not None:
        wire[flip[0] % len(wire)] = flip[1]
    data = bytes(wire)

    def plain(proto: ServerConnection) -> list[events.Event]:
        return feed(proto, data)

    def in_place(proto: ServerConnection) -> list[events.Event]:
        return _receive_like_a_server(proto, data, 256 << 10, holds=holds)[0]

    got = _outcome(running(channels=(1, 2)), in_place)
    assert got == _outcome(running(channels=(1, 2)), plain)
    if flip is None:
        assert got[1] is None and len(got[0]) == 2 * len(frames)


@pytest.mark.parametrize("holds", [131_072 + 3, 131_080 + 7, 262_150, 8 << 20])
@pytest.mark.parametrize(
    "sizes",
    [[131064, 131064, 131064], [131064, 65536, 131064], [131064, 131064, 9000], [131064, 100]],
)
@pytest.mark.parametrize("flip", [None, "frame end", "type", "channel", "size"])
def test_scatter_reads_where_the_frames_are_not_the_assumed_ones(
    holds: int, sizes: list[int], flip: str | None
) -> None:
    """The cases the property above may not reach: a read that ends inside a gap, a
    frame of another size than the one before it, and each octet of a gap spoilt."""
    body = bytes(range(256)) * 1200  # 300 KiB
    wire = bytearray(_frames(1, body, sizes) + _frames(2, body[:200_000], sizes))
    if flip is not None:
        # The second frame's head of the first message: its frame end octet, type,
        # channel and size come at these offsets from the end of the first payload.
        first = wire.index(bytes([FRAME_BODY, 0, 1])) + 7 + sizes[0]
        at = {"frame end": 0, "type": 1, "channel": 3, "size": 7}[flip]
        wire[first + at] ^= 0x40
    data = bytes(wire)
    got = _outcome(
        running(channels=(1, 2)),
        lambda p: _receive_like_a_server(p, data, 256 << 10, holds=holds)[0],
    )
    assert got == _outcome(running(channels=(1, 2)), lambda p: feed(p, data))
    if flip is None:
        assert [c[-1] for c in got[0]] == [body, body[:200_000]]
    else:
        assert got[1] is not None  # every spoilt octet is an error, as on plain input


def test_large_bodies_in_small_frames_are_read_in_large_reads() -> None:
    proto = ServerConnection(frame_max=4096)
    open_connection(proto, frame_max=4096)
    open_channel(proto, 1)
    body = bytes(range(256)) * 1024  # 256 KiB in 64 frames, each too small to go in place
    wire = encode_content(1, PUBLISH, PROPS, body, 4096) * 3
    size = 256 << 10
    reads: list[int | tuple[memoryview, int]] = []
    pos = 0
    received = []
    while pos < len(wire):
        want = proto.next_read(size)
        reads.append(want)
        assert isinstance(want, int)
        proto.receive_data(wire[pos : pos + want])
        pos += want
        received += drain(proto)
    assert [e.message.body for e in received if isinstance(e, events.Content)] == [body] * 3
    # No short reads: 3 bodies of 64 frames each in 4 reads, not 200.
    assert len(reads) == 4


def test_a_large_body_fed_in_pieces_without_next_read_assembles_the_same() -> None:
    proto = running()
    body = bytes(range(256)) * 3000  # frames of 128 KiB, the last one shorter
    wire = encode_content(1, PUBLISH, PROPS, body, proto.frame_max)
    received = []
    for start in range(0, len(wire), 10000):
        received += feed(proto, wire[start : start + 10000])
    assert len(received) == 1
    assert isinstance(received[0], events.Content) and received[0].message.body == body


def test_a_bad_frame_end_after_a_body_received_in_place_is_a_frame_error() -> None:
    proto = running()
    wire = bytearray(encode_content(1, PUBLISH, PROPS, b"x" * 20000, proto.frame_max))
    wire[-1] = 0  # the body frame's end octet
    proto.receive_data(bytes(wire[:200]))
    assert drain(proto) == []
    proto.receive_data(bytes(wire[200:]))
    with pytest.raises(AMQPError) as info:
        drain(proto)
    assert info.value.reply_code == ReplyCode.FRAME_ERROR


def test_content_on_interleaved_channels_assembles_per_channel() -> None:
    proto = running(channels=(1, 2))
    one = encode_content(1, PUBLISH, PROPS, b"a" * 10, 4096)
    two = encode_content(2, PUBLISH, PROPS, b"b" * 10, 4096)
    # method 1, method 2, header 1, header 2, body 1, body 2
    m1 = one[: one.index(bytes([FRAME_HEADER, 0, 1]))]
    m2 = two[: two.index(bytes([FRAME_HEADER, 0, 2]))]
    h1 = one[len(m1) : one.index(bytes([FRAME_BODY, 0, 1]), len(m1))]
    h2 = two[len(m2) : two.index(bytes([FRAME_BODY, 0, 2]), len(m2))]
    b1, b2 = one[len(m1) + len(h1) :], two[len(m2) + len(h2) :]
    evs = feed(proto, m1 + m2 + h1 + h2 + b1 + b2)
    assert [(e.channel, e.message.body) for e in evs if isinstance(e, events.Content)] == [
        (1, b"a" * 10),
        (2, b"b" * 10),
    ]


def test_method_during_content_assembly_is_an_unexpected_frame() -> None:
    proto = running()
    data = encode_content(1, PUBLISH, PROPS, b"body", 4096)
    method_only = data[: data.index(bytes([FRAME_HEADER, 0, 1]))]
    err = _expect_error(
        proto,
        method_only + encode_method_frame(1, methods.BasicAck(1)),
        ReplyCode.UNEXPECTED_FRAME,
        "expected content header for class 60, got non content header frame instead",
    )
    assert (err.class_id, err.method_id) == (60, 40)


def test_header_without_a_content_method_is_an_unexpected_frame() -> None:
    header = encode_frame(FRAME_HEADER, 1, b"\x00\x3c\x00\x00" + bytes(8) + b"\x00\x00")
    _expect_error(running(), header, ReplyCode.UNEXPECTED_FRAME, "expected method frame")


def test_body_without_a_header_is_an_unexpected_frame() -> None:
    _expect_error(running(), encode_frame(FRAME_BODY, 1, b"x"), ReplyCode.UNEXPECTED_FRAME)
    proto = running()
    data = encode_content(1, PUBLISH, PROPS, b"body", 4096)
    method_only = data[: data.index(bytes([FRAME_HEADER, 0, 1]))]
    _expect_error(
        proto, method_only + encode_frame(FRAME_BODY, 1, b"x"), ReplyCode.UNEXPECTED_FRAME
    )


def test_header_for_another_class_is_an_unexpected_frame() -> None:
    proto = running()
    data = encode_content(1, PUBLISH, PROPS, b"", 4096)
    method_only = data[: data.index(bytes([FRAME_HEADER, 0, 1]))]
    header = encode_frame(FRAME_HEADER, 1, b"\x00\x32\x00\x00" + bytes(8) + b"\x00\x00")
    _expect_error(proto, method_only + header, ReplyCode.UNEXPECTED_FRAME, "got one for class 50")


def test_body_longer_than_announced_is_a_frame_error() -> None:
    proto = running()
    data = encode_content(1, PUBLISH, PROPS, b"abc", 4096)
    head = data[: data.index(bytes([FRAME_BODY, 0, 1]))]
    _expect_error(
        proto,
        head + encode_frame(FRAME_BODY, 1, b"abcd"),
        ReplyCode.FRAME_ERROR,
        "exceeds remaining",
    )


def test_body_over_max_message_size_closes_the_channel_and_drops_the_rest() -> None:
    proto = ServerConnection(max_message_size=10)
    open_connection(proto)
    open_channel(proto, 1)
    data = encode_content(1, PUBLISH, PROPS, b"x" * 11, 4096)
    head = data[: data.index(bytes([FRAME_BODY, 0, 1]))]
    err = _expect_error(
        proto, head, ReplyCode.PRECONDITION_FAILED, "larger than configured max size 10"
    )
    assert isinstance(err, ChannelError)
    proto.send_method(1, methods.ChannelClose(406, err.reply_text, 60, 40))
    rest = data[len(head) :]
    assert feed(proto, rest + encode_method_frame(1, methods.ChannelCloseOk())) == [
        events.Method(1, methods.ChannelCloseOk())
    ]


def test_content_frames_on_channel_zero_are_unexpected() -> None:
    _expect_error(running(), encode_frame(FRAME_BODY, 0, b"x"), ReplyCode.UNEXPECTED_FRAME)


# -- framing errors ----------------------------------------------------------------


def test_bad_frame_end_is_a_frame_error_and_input_is_abandoned() -> None:
    proto = running()
    frame = bytearray(encode_method_frame(1, methods.BasicAck(1)))
    frame[-1] = 0x00
    _expect_error(proto, bytes(frame), ReplyCode.FRAME_ERROR, "frame end")
    assert feed(proto, encode_method_frame(1, methods.BasicAck(2))) == []


def test_oversized_frame_is_a_frame_error_before_its_payload_arrives() -> None:
    proto = ServerConnection(frame_max=4096)
    open_connection(proto, frame_max=4096)
    _expect_error(
        proto,
        bytes([FRAME_BODY, 0, 1]) + (5000).to_bytes(4),
        ReplyCode.FRAME_ERROR,
        "frame_too_large",
    )


def test_unknown_frame_type_is_a_frame_error() -> None:
    _expect_error(running(), encode_frame(7, 1, b""), ReplyCode.FRAME_ERROR, "unknown_frame")


def test_unknown_method_is_not_implemented() -> None:
    _expect_error(running(), encode_frame(1, 1, b"\x00\x3c\x03\xe7"), ReplyCode.NOT_IMPLEMENTED)


def test_truncated_method_arguments_are_a_frame_error() -> None:
    payload = methods.QueueDeclare(queue="q").encode()[:-3]
    err = _expect_error(
        running(), encode_frame(1, 1, payload), ReplyCode.FRAME_ERROR, "queue.declare"
    )
    assert (err.class_id, err.method_id) == (50, 10)


def test_heartbeat_on_a_channel_is_unexpected() -> None:
    _expect_error(running(), encode_frame(8, 1, b""), ReplyCode.UNEXPECTED_FRAME)


# -- channels ----------------------------------------------------------------------


def test_method_on_an_unopened_channel_is_a_channel_error() -> None:
    _expect_error(
        running(),
        encode_method_frame(5, methods.BasicQos(0, 1)),
        ReplyCode.CHANNEL_ERROR,
        "expected 'channel.open'",
    )


def test_second_channel_open_is_a_channel_error() -> None:
    _expect_error(
        running(),
        encode_method_frame(1, methods.ChannelOpen()),
        ReplyCode.CHANNEL_ERROR,
        "second 'channel.open' seen",
    )


def test_channel_numbers_above_channel_max_open_as_on_rabbitmq() -> None:
    proto = ServerConnection(channel_max=10)
    open_connection(proto, channel_max=10)
    open_channel(proto, 65535)
    assert proto.open_channels == [65535]


def test_opening_one_channel_more_than_channel_max_is_not_allowed() -> None:
    proto = ServerConnection(channel_max=2)
    open_connection(proto, channel_max=2)
    open_channel(proto, 7)
    open_channel(proto, 65535)
    _expect_error(
        proto,
        encode_method_frame(1, methods.ChannelOpen()),
        ReplyCode.NOT_ALLOWED,
        "number of channels opened (2) has reached the negotiated channel_max (2)",
    )


def test_after_server_channel_close_only_close_and_close_ok_pass() -> None:
    proto = running()
    proto.send_method(1, methods.ChannelClose(404, "NOT_FOUND - no queue 'q'", 50, 10))
    noise = encode_content(1, PUBLISH, PROPS, b"x" * 100, 4096) + encode_method_frame(
        1, methods.BasicAck(1)
    )
    assert feed(proto, noise) == []
    assert not proto.channel_is_open(1)
    assert feed(proto, encode_method_frame(1, methods.ChannelCloseOk())) == [
        events.Method(1, methods.ChannelCloseOk())
    ]
    open_channel(proto, 1)  # the number is free again


def test_client_channel_close_frees_the_channel_once_close_ok_is_sent() -> None:
    proto = running()
    close = methods.ChannelClose(200, "bye")
    assert feed(proto, encode_method_frame(1, close)) == [events.Method(1, close)]
    proto.send_method(1, methods.ChannelCloseOk())
    assert proto.open_channels == []
    open_channel(proto, 1)


# -- connection close --------------------------------------------------------------


def test_after_server_connection_close_only_close_ok_and_close_pass() -> None:
    proto = running(channels=(1, 2))
    proto.send_method(0, methods.ConnectionClose(320, "CONNECTION_FORCED - shutdown"))
    noise = (
        encode_content(1, PUBLISH, PROPS, b"x", 4096)
        + encode_method_frame(2, methods.BasicAck(1))
        + encode_method_frame(0, methods.ConnectionOpen())
        + encode_method_frame(7, methods.QueueDeclare())
        + HEARTBEAT_FRAME
    )
    assert feed(proto, noise) == [events.Heartbeat()]
    close_ok = encode_method_frame(0, methods.ConnectionCloseOk())
    assert feed(proto, close_ok) == [events.Method(0, methods.ConnectionCloseOk())]
    assert proto.state == "closed"
    assert feed(proto, encode_method_frame(1, methods.BasicAck(1))) == []


def test_client_connection_close_then_server_close_ok() -> None:
    proto = running()
    close = methods.ConnectionClose(200, "Normal shutdown")
    assert feed(
        proto, encode_method_frame(0, close) + encode_method_frame(1, methods.BasicAck(1))
    ) == [events.Method(0, close)]
    assert proto.send_method(0, methods.ConnectionCloseOk()) == encode_method_frame(
        0, methods.ConnectionCloseOk()
    )
    assert proto.state == "closed"


def test_eof_is_an_event() -> None:
    proto = running()
    proto.receive_data(encode_method_frame(1, methods.BasicAck(1)) + b"\x01\x00")
    proto.receive_data(b"")
    assert proto.next_events() == [events.Acks(1, [1]), events.EOF()]


def test_next_events_drains_everything_buffered() -> None:
    proto = running()
    proto.receive_data(b"".join(encode_method_frame(1, methods.BasicAck(i)) for i in range(1, 101)))
    evs = proto.next_events()
    assert evs == [events.Acks(1, list(range(1, 101)))]
    assert proto.next_event() is NEED_DATA and proto.buffered == 0


# -- runs of basic.ack ---------------------------------------------------------------


def _acks(channel: int, *tags: int, multiple: bool = False) -> bytes:
    return b"".join(encode_method_frame(channel, methods.BasicAck(t, multiple)) for t in tags)


def _flat(evs: list[events.Event]) -> list[events.Event]:
    """Events with each run of acks as the one basic.ack per tag it stands for."""
    out: list[events.Event] = []
    for ev in evs:
        if isinstance(ev, events.Acks):
            out += [events.Method(ev.channel, methods.BasicAck(t)) for t in ev.tags]
        else:
            out.append(ev)
    return out


def test_an_ack_run_ends_at_another_channel_a_multiple_ack_or_another_method() -> None:
    proto = running(channels=(1, 2))
    data = (
        _acks(1, 1, 2, 3)
        + _acks(2, 1)
        + _acks(1, 4)
        + _acks(1, 6, multiple=True)
        + _acks(1, 7, 8)
        + encode_method_frame(1, methods.BasicQos(0, 10, False))
        + _acks(1, 9)
    )
    assert feed(proto, data) == [
        events.Acks(1, [1, 2, 3]),
        events.Acks(2, [1]),
        events.Acks(1, [4]),
        events.Method(1, methods.BasicAck(6, True)),
        events.Acks(1, [7, 8]),
        events.Method(1, methods.BasicQos(0, 10, False)),
        events.Acks(1, [9]),
    ]


def test_long_ack_runs_end_where_the_first_other_frame_is() -> None:
    # Longer than the blocks of frames the protocol reads at once.
    proto = running(channels=(1, 2))
    data = (
        _acks(1, *range(1, 25))
        + _acks(1, 25, multiple=True)
        + _acks(1, *range(26, 60))
        + _acks(2, 1)
        + _acks(1, *range(60, 100))
    )
    assert feed(proto, data) == [
        events.Acks(1, list(range(1, 25))),
        events.Method(1, methods.BasicAck(25, True)),
        events.Acks(1, list(range(26, 60))),
        events.Acks(2, [1]),
        events.Acks(1, list(range(60, 100))),
    ]
    bad = bytearray(_acks(1, *range(1, 40)))
    bad[21 * 30 - 1] = 0  # the frame end of tag 30
    proto.receive_data(bytes(bad))
    assert proto.next_event() == events.Acks(1, list(range(1, 30)))
    with pytest.raises(AMQPConnectionError) as info:
        proto.next_event()
    assert info.value.reply_code == ReplyCode.FRAME_ERROR


def test_an_ack_run_stops_at_an_incomplete_frame_and_goes_on_with_the_next_data() -> None:
    proto = running()
    data = _acks(1, 1, 2, 3)
    assert feed(proto, data[:50]) == [events.Acks(1, [1, 2])]
    assert feed(proto, data[50:]) == [events.Acks(1, [3])]


def test_a_bad_frame_end_inside_an_ack_run_is_a_frame_error_after_the_acks_before_it() -> None:
    proto = running()
    bad = bytearray(_acks(1, 3))
    bad[-1] = 0
    proto.receive_data(_acks(1, 1, 2) + bytes(bad))
    assert proto.next_event() == events.Acks(1, [1, 2])
    with pytest.raises(AMQPConnectionError) as info:
        proto.next_event()
    assert info.value.reply_code == ReplyCode.FRAME_ERROR


def test_send_content_uses_the_negotiated_frame_max() -> None:
    proto = ServerConnection(frame_max=4096)
    open_connection(proto, frame_max=4096)
    message = Message("ex", "rk", PROPS, b"y" * 10000)
    deliver = methods.BasicDeliver("ctag", 1, False, "ex", "rk")
    expected = encode_deliver(1, "ctag", 1, False, "ex", "rk", message, 4096)
    assert proto.send_content(1, deliver, message) == expected
    assert proto.encode_deliver(1, "ctag", 1, False, "ex", "rk", message) == expected


# -- properties over whole streams ---------------------------------------------------


def _traffic(bodies: list[bytes]) -> bytes:
    parts = []
    for i, body in enumerate(bodies, 1):
        channel = 1 + i % 2
        parts.append(
            encode_content(channel, PUBLISH, PROPS if i % 3 else BasicProperties(), body, 4096)
        )
        parts.append(encode_method_frame(channel, methods.BasicAck(i, bool(i % 2))))
        if i % 4 == 0:
            parts.append(HEARTBEAT_FRAME)
    return b"".join(parts)


def _fresh() -> ServerConnection:
    proto = ServerConnection(frame_max=4096)
    open_connection(proto, frame_max=4096)
    open_channel(proto, 1)
    open_channel(proto, 2)
    return proto


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bodies=st.lists(st.binary(max_size=9000), min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 60_000), max_size=20),
)
def test_any_split_of_a_valid_stream_yields_the_same_events(
    bodies: list[bytes], cuts: list[int]
) -> None:
    data = _traffic(bodies)
    whole = feed(_fresh(), data)
    proto = _fresh()
    chunked = []
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for start, end in itertools.pairwise(points):
        chunked += feed(proto, data[start:end])
    assert comparable(_flat(chunked)) == comparable(_flat(whole))
    assert sum(isinstance(e, events.Content) for e in whole) == len(bodies)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_after_the_handshake_raise_only_amqp_errors(data: bytes) -> None:
    proto = running()
    proto.receive_data(data)
    try:
        drain(proto)
    except AMQPError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_from_the_start_raise_only_amqp_errors(data: bytes) -> None:
    proto = ServerConnection()
    proto.receive_data(PROTOCOL_HEADER + data)
    try:
        drain(proto)
    except AMQPError:
        pass


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8),
    st.lists(st.binary(max_size=200), min_size=1, max_size=3),
)
def test_mutated_valid_streams_raise_only_amqp_errors(
    flips: list[tuple[int, int]], bodies: list[bytes]
) -> None:
    data = bytearray(_traffic(bodies))
    for position, value in flips:
        data[position % len(data)] = value
    proto = _fresh()
    proto.receive_data(bytes(data))
    try:
        drain(proto)
    except AMQPConnectionError:
        pass
    except ChannelError as exc:  # only the configured body-size limit is soft
        assert exc.reply_code == ReplyCode.PRECONDITION_FAILED


def test_close_ok_on_an_open_channel_is_503_unimplemented_method() -> None:
    # Only an answer to the server's channel.close; RabbitMQ's reply otherwise.
    _expect_error(
        running(),
        encode_method_frame(1, methods.ChannelCloseOk()),
        ReplyCode.COMMAND_INVALID,
        "unimplemented method",
    )


# -- runs of repeated publishes (repeated_contents) ------------------------------------


def _events_taking_runs(proto: ServerConnection, limit: int) -> tuple[list[object], object]:
    """The events, with each run ``repeated_contents`` takes after a content expanded into
    the content events it stands for; and the error that ended them, if any."""
    out: list[object] = []
    try:
        while (ev := proto.next_event()) is not NEED_DATA:
            out.append(ev)
            if isinstance(ev, events.EOF):
                break
            if isinstance(ev, events.Content):
                m = ev.message
                head = (ev.channel, ev.method, m.exchange, m.routing_key, m.properties)
                for body in proto.repeated_contents(ev.channel, limit):
                    out.append((*head, m.raw_properties, body))
    except AMQPError as exc:
        return comparable(out), (type(exc), exc.reply_code)  # type: ignore[arg-type]
    return comparable(out), None  # type: ignore[arg-type]


def _events_one_by_one(proto: ServerConnection) -> tuple[list[object], object]:
    out: list[object] = []
    try:
        while (ev := proto.next_event()) is not NEED_DATA:
            out.append(ev)
            if isinstance(ev, events.EOF):
                break
    except AMQPError as exc:
        return comparable(out), (type(exc), exc.reply_code)  # type: ignore[arg-type]
    return comparable(out), None  # type: ignore[arg-type]


def _runs(spec: list[tuple[int, int, int]]) -> bytes:
    """Runs of publishes: (count, body size, kind) each; kinds vary channel, routing key
    and properties, so that runs end where a publish differs."""
    parts = []
    seq = 0
    for count, size, kind in spec:
        channel = 1 + kind % 2
        publish = methods.BasicPublish(exchange="ex", routing_key=f"rk{kind % 3}")
        props = PROPS if kind % 4 else BasicProperties(delivery_mode=2)
        for _ in range(count):
            seq += 1
            parts.append(encode_content(channel, publish, props, bytes([seq % 256]) * size, 4096))
        if kind % 5 == 0:
            parts.append(encode_method_frame(channel, methods.BasicAck(seq, False)))
    return b"".join(parts)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=st.lists(
        st.tuples(st.integers(1, 6), st.sampled_from([0, 1, 16, 5000]), st.integers(0, 20)),
        min_size=1,
        max_size=6,
    ),
    cuts=st.lists(st.integers(0, 80_000), max_size=6),
    flips=st.lists(st.tuples(st.integers(0, 80_000), st.integers(0, 255)), max_size=2),
    limit=st.integers(1, 5),
)
def test_taking_runs_of_repeated_publishes_yields_the_same_events(
    spec: list[tuple[int, int, int]],
    cuts: list[int],
    flips: list[tuple[int, int]],
    limit: int,
) -> None:
    data = bytearray(_runs(spec))
    for position, value in flips:
        data[position % len(data)] = value
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    one_by_one, runs = _fresh(), _fresh()
    expected: list[object] = []
    got: list[object] = []
    for start, end in itertools.pairwise(points):
        one_by_one.receive_data(bytes(data[start:end]))
        runs.receive_data(bytes(data[start:end]))
        evs, error = _events_one_by_one(one_by_one)
        expected += evs
        evs2, error2 = _events_taking_runs(runs, limit)
        got += evs2
        assert error2 == error
        if error is not None:
            break
    assert got == expected


def test_a_run_stops_at_the_limit_and_at_the_first_publish_that_differs() -> None:
    proto = _fresh()
    one = encode_content(1, PUBLISH, PROPS, b"a", 4096)
    other = encode_content(1, PUBLISH, BasicProperties(delivery_mode=2), b"b", 4096)
    proto.receive_data(one * 5 + other + one)

    def body() -> bytes:
        ev = proto.next_event()
        assert isinstance(ev, events.Content)
        return bytes(ev.message.body)

    assert body() == b"a"
    assert proto.repeated_contents(1, 3) == [b"a"] * 3
    assert proto.repeated_contents(1, 3) == []  # only right after a content
    assert body() == b"a"
    assert proto.repeated_contents(1, 10) == []  # the next one differs
    assert body() == b"b"
    assert proto.repeated_contents(1, 10) == []
    assert body() == b"a"
    assert proto.next_event() is NEED_DATA
