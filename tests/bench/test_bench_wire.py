"""The bench client's frame encoder and receive parser, checked against an independent reader."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqplite.bench.wire import (
    BenchProtocolError,
    ConfirmTracker,
    PublishTemplate,
    Receiver,
    ack_frame,
    encode_deliver,
    method_frame,
)


def split_frames(data: bytes) -> list[tuple[int, int, bytes]]:
    """A deliberately naive frame reader (written from the spec, not from wire.py)."""
    frames = []
    pos = 0
    while pos < len(data):
        ftype, channel, size = struct.unpack(">BHI", data[pos : pos + 7])
        payload = data[pos + 7 : pos + 7 + size]
        assert data[pos + 7 + size] == 0xCE
        frames.append((ftype, channel, payload))
        pos += 8 + size
    return frames


def read_shortstr(buf: bytes, pos: int) -> tuple[str, int]:
    n = buf[pos]
    return buf[pos + 1 : pos + 1 + n].decode(), pos + 1 + n


def decode_publishes(data: bytes) -> list[tuple[str, str, int, bytes]]:
    """(exchange, routing key, delivery mode or 0, body) of each basic.publish in ``data``."""
    out = []
    frames = split_frames(data)
    i = 0
    while i < len(frames):
        ftype, _, payload = frames[i]
        assert ftype == 1
        assert struct.unpack(">HH", payload[:4]) == (60, 40)
        exchange, pos = read_shortstr(payload, 6)
        key, pos = read_shortstr(payload, pos)
        ftype, _, header = frames[i + 1]
        assert ftype == 2
        class_id, _weight, body_size, flags = struct.unpack(">HHQH", header[:14])
        assert class_id == 60
        mode = header[14] if flags & 0x1000 else 0
        body = b""
        i += 2
        while len(body) < body_size:
            ftype, _, chunk = frames[i]
            assert ftype == 3
            body += chunk
            i += 1
        out.append((exchange, key, mode, body))
    return out


@pytest.mark.parametrize("size", [0, 5, 8, 16, 1024, 200_000])
def test_publish_batch_decodes_to_messages_with_the_timestamp_first(size: int) -> None:
    template = PublishTemplate(3, "ex", ["a", "b", "c"], size, frame_max=131072)
    data = template.batch(4, 0x0102030405060708)
    assert len(data) == 4 * template.message_len
    decoded = decode_publishes(data)
    assert [(ex, key, mode) for ex, key, mode, _ in decoded] == [("ex", k, 0) for k in "abca"]
    for *_, body in decoded:
        assert len(body) == size
        if size >= 8:
            assert body[:8] == bytes(range(1, 9))
    # The key rotation continues across batches.
    assert [key for _, key, _, _ in decode_publishes(template.batch(2, 1))] == ["b", "c"]


def test_persistent_publish_carries_delivery_mode_2() -> None:
    template = PublishTemplate(1, "", ["q"], 16, frame_max=4096, persistent=True)
    assert [mode for _, _, mode, _ in decode_publishes(template.batch(3, 7))] == [2, 2, 2]


def deliveries(
    n: int, body: bytes, channel: int = 1, first_tag: int = 1, frame_max: int = 4096
) -> bytes:
    return b"".join(
        encode_deliver(channel, "ctag", tag, "ex", "rk", body, frame_max=frame_max)
        for tag in range(first_tag, first_tag + n)
    )


def parse_acks(data: bytes) -> list[tuple[int, int, bool]]:
    acks = []
    for ftype, channel, payload in split_frames(data):
        assert ftype == 1
        class_id, method_id, tag, flags = struct.unpack(">HHQB", payload)
        assert (class_id, method_id) == (60, 80)
        acks.append((channel, tag, bool(flags & 1)))
    return acks


@settings(max_examples=200, deadline=None)
@given(
    size=st.sampled_from([0, 3, 8, 100, 5000, 9000]),
    count=st.integers(1, 12),
    cuts=st.lists(st.integers(0, 200_000), max_size=8),
)
def test_receiver_counts_every_delivery_however_the_stream_is_cut(
    size: int, count: int, cuts: list[int]
) -> None:
    stamp = 12345
    body = (stamp.to_bytes(8, "big") + b"x" * size)[:size]
    stream = deliveries(count, body)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    receiver = Receiver()
    receiver.set_ack_every(1, 1)
    acks = b""
    for start, end in itertools.pairwise(points):
        acks += receiver.feed(stream[start:end])
    assert receiver.delivered == count
    assert parse_acks(acks) == [(1, tag, False) for tag in range(1, count + 1)]
    expected_latencies = count if size >= 8 else 0
    assert len(receiver.latencies_ns) == expected_latencies


@settings(max_examples=100, deadline=None)
@given(
    size=st.sampled_from([20_000, 131_064, 300_000]),
    count=st.integers(1, 4),
    cuts=st.lists(st.integers(0, 1_300_000), max_size=12),
)
def test_receiver_skips_large_body_frames_however_the_stream_is_cut(
    size: int, count: int, cuts: list[int]
) -> None:
    stamp = 777
    body = stamp.to_bytes(8, "big") + b"x" * (size - 8)
    stream = deliveries(count, body, frame_max=131072) + deliveries(1, b"small", first_tag=99)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    receiver = Receiver()
    receiver.set_ack_every(1, 1)
    acks = b""
    for start, end in itertools.pairwise(points):
        acks += receiver.feed(stream[start:end])
    assert receiver.delivered == count + 1
    assert parse_acks(acks) == [(1, tag, False) for tag in [*range(1, count + 1), 99]]
    assert len(receiver.latencies_ns) == count  # "small" is too short to carry a stamp


def test_a_bad_frame_end_after_a_skipped_body_frame_is_refused() -> None:
    data = bytearray(deliveries(1, b"x" * 20_000, frame_max=131072))
    data[-1] = 0
    receiver = Receiver()
    receiver.feed(bytes(data[:100]))
    with pytest.raises(BenchProtocolError, match="frame end"):
        receiver.feed(bytes(data[100:]))


def test_receiver_acks_a_whole_buffer_with_one_multiple_ack() -> None:
    receiver = Receiver()
    acks = receiver.feed(deliveries(5, b"y" * 20))
    assert parse_acks(acks) == [(1, 5, True)]
    acks = receiver.feed(deliveries(2, b"y" * 20, first_tag=6))
    assert parse_acks(acks) == [(1, 7, True)]


def test_receiver_acks_every_n_messages_and_the_rest_at_the_end_of_the_buffer() -> None:
    receiver = Receiver()
    receiver.set_ack_every(1, 3)
    acks = receiver.feed(deliveries(7, b"z" * 10))
    assert parse_acks(acks) == [(1, 3, True), (1, 6, True), (1, 7, True)]


def test_receiver_keeps_channels_apart() -> None:
    receiver = Receiver()
    stream = deliveries(2, b"a" * 9, channel=1) + deliveries(3, b"b" * 9, channel=20)
    assert sorted(parse_acks(receiver.feed(stream))) == [(1, 2, True), (20, 3, True)]


def test_receiver_passes_other_methods_to_the_handler() -> None:
    seen: list[tuple[int, int, int, bytes]] = []
    receiver = Receiver(lambda *args: seen.append(args))
    receiver.feed(
        method_frame(2, 50, 11, b"\x01q\x00\x00\x00\x05\x00\x00\x00\x00")
        + b"\x08\x00\x00\x00\x00\x00\x00\xce"
    )
    assert seen == [(2, 50, 11, b"\x01q\x00\x00\x00\x05\x00\x00\x00\x00")]


def test_receiver_rejects_a_bad_frame_end() -> None:
    data = bytearray(deliveries(1, b"x"))
    data[-1] = 0x00
    with pytest.raises(BenchProtocolError, match="frame end"):
        Receiver().feed(bytes(data) + b"\x00")


def test_receiver_rejects_a_body_without_a_header() -> None:
    with pytest.raises(BenchProtocolError, match="without a content header"):
        Receiver().feed(b"\x03\x00\x01\x00\x00\x00\x02hi\xce")


def confirm(tag: int, multiple: bool, nack: bool = False) -> bytes:
    frame = ack_frame(1, tag, multiple)
    if nack:
        # basic.nack has the same layout with method 120 and the flags octet (multiple, requeue).
        frame = frame[:9] + struct.pack(">H", 120) + frame[11:]
    return frame


def test_confirms_multiple_single_out_of_order_and_nack() -> None:
    receiver = Receiver()
    tracker = receiver.track_confirms(1)
    tracker.on_publish(10, 0)
    receiver.feed(confirm(3, multiple=True))
    assert (tracker.confirmed, tracker.upto) == (3, 3)
    receiver.feed(confirm(5, multiple=False) + confirm(4, multiple=False))
    assert (tracker.confirmed, tracker.upto) == (5, 5)
    receiver.feed(confirm(7, multiple=False))
    receiver.feed(confirm(9, multiple=True, nack=True))
    # 6, 8, 9 were nacked by the multiple nack; 7 had been acked already.
    assert (tracker.confirmed, tracker.nacked, tracker.upto) == (9, 3, 9)
    assert len(tracker.latencies_ns) == 9


def test_confirm_for_an_unpublished_sequence_is_a_protocol_error() -> None:
    tracker = ConfirmTracker()
    tracker.on_publish(1, 0)
    with pytest.raises(BenchProtocolError):
        tracker.on_confirm(2, False, False, 10)
