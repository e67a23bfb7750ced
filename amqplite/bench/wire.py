"""The bench client's AMQP 0-9-1 wire format: frame encoders and the one-pass receive parser.

Layer: ``amqplite/bench`` (stdlib only). This is deliberately independent of
``amqplite.protocol`` so that the benchmark never shares a codec bug with the broker it
measures. Only what a load generator needs is here:

* small encoders for the handful of methods the client sends (``method_frame``, ``shortstr``,
  ``table``);
* ``PublishTemplate``: basic.publish + content header + body pre-encoded once, so a batch of
  ``k`` messages is one bytes object (only the 8-byte timestamp at the start of the body
  changes between batches);
* ``Receiver``: a sans-I/O parser that walks a whole receive buffer with ``struct.unpack_from``,
  counts deliveries, records end-to-end latency from the embedded timestamp, tracks publisher
  confirms, and returns the acks to write back as one bytes object;
* ``encode_deliver``: what a broker would send, for the self-test and the unit tests.
"""

from __future__ import annotations

import array
import struct
import time
from collections.abc import Callable

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE
FRAME_END_BYTE = b"\xce"
PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"

# class << 16 | method, so the hot loop compares one int.
BASIC_DELIVER = (60 << 16) | 60
BASIC_ACK = (60 << 16) | 80
BASIC_NACK = (60 << 16) | 120

_FRAME_HDR = struct.Struct(">BHI")
_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_NATIVE_I64 = struct.Struct("=q")  # array('q') is native-endian
# A complete basic.ack frame: type, channel, size=13, class, method, tag, flags, frame end.
_ACK_FRAME = struct.Struct(">BHIHHQBB")
ACK_FRAME_SIZE = _ACK_FRAME.size

_mono_ns = time.monotonic_ns

#: Body frames at least this long are counted when their head arrives and then skipped.
SKIP_MIN = 8192

MethodHandler = Callable[[int, int, int, bytes], None]


class BenchProtocolError(Exception):
    """The peer sent bytes this client cannot make sense of (or closed the connection)."""


def shortstr(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    if len(raw) > 255:
        raise ValueError(f"shortstr longer than 255 bytes: {raw[:40]!r}...")
    return bytes((len(raw),)) + raw


def longstr(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return _U32.pack(len(raw)) + raw


FieldValue = bool | int | str | dict[str, "FieldValue"]


def _field_value(value: FieldValue) -> bytes:
    # bool before int: bool is an int subclass.
    if isinstance(value, bool):
        return b"t\x01" if value else b"t\x00"
    if isinstance(value, int):
        return b"l" + struct.pack(">q", value)
    if isinstance(value, str):
        return b"S" + longstr(value)
    return b"F" + table(value)


def table(values: dict[str, FieldValue] | None) -> bytes:
    body = b"".join(shortstr(k) + _field_value(v) for k, v in (values or {}).items())
    return _U32.pack(len(body)) + body


def bits(*flags: bool) -> bytes:
    packed = 0
    for i, flag in enumerate(flags):
        if flag:
            packed |= 1 << i
    return bytes((packed,))


def method_frame(channel: int, class_id: int, method_id: int, args: bytes = b"") -> bytes:
    payload = struct.pack(">HH", class_id, method_id) + args
    return _FRAME_HDR.pack(FRAME_METHOD, channel, len(payload)) + payload + FRAME_END_BYTE


def ack_frame(channel: int, delivery_tag: int, multiple: bool) -> bytes:
    return _ACK_FRAME.pack(FRAME_METHOD, channel, 13, 60, 80, delivery_tag, multiple, FRAME_END)


def _content_frames(channel: int, body: bytes, frame_max: int, properties: bytes) -> bytes:
    """Content header + body frames (bodies larger than a frame are split)."""
    header = struct.pack(">HHQ", 60, 0, len(body)) + properties
    out = [_FRAME_HDR.pack(FRAME_HEADER, channel, len(header)), header, FRAME_END_BYTE]
    chunk_max = frame_max - 8
    for off in range(0, len(body), chunk_max):
        chunk = body[off : off + chunk_max]
        out += [_FRAME_HDR.pack(FRAME_BODY, channel, len(chunk)), chunk, FRAME_END_BYTE]
    return b"".join(out)


def encode_deliver(
    channel: int,
    consumer_tag: str,
    delivery_tag: int,
    exchange: str,
    routing_key: str,
    body: bytes,
    frame_max: int = 131072,
) -> bytes:
    """basic.deliver with an empty property list, as a broker sends it."""
    args = (
        shortstr(consumer_tag)
        + _U64.pack(delivery_tag)
        + b"\x00"
        + shortstr(exchange)
        + shortstr(routing_key)
    )
    return method_frame(channel, 60, 60, args) + _content_frames(
        channel, body, frame_max, b"\x00\x00"
    )


class PublishTemplate:
    """Pre-encoded publishes: ``batch(k, now_ns)`` is ``k`` complete messages in one bytes object.

    Bodies of 8 bytes or more start with the publish time (``time.monotonic_ns``, big endian)
    so the consumer can measure end-to-end latency on the same machine; all messages of one
    batch share the batch's timestamp. With several routing keys the batch cycles through them.
    """

    __slots__ = ("_heads", "_key_index", "_tail", "batch_max", "has_timestamp", "message_len")

    def __init__(
        self,
        channel: int,
        exchange: str,
        routing_keys: list[str],
        size: int,
        frame_max: int,
        *,
        persistent: bool = False,
    ) -> None:
        if not routing_keys:
            raise ValueError("at least one routing key")
        self.has_timestamp = size >= 8
        stamp_len = 8 if self.has_timestamp else 0
        # delivery-mode is property bit 12 (flags 0x1000), a single octet; 2 = persistent.
        properties = b"\x10\x00\x02" if persistent else b"\x00\x00"
        # The content is encoded once with a zero timestamp; the bytes up to and including the
        # first body frame header become per-key heads, the rest of the body the shared tail.
        content = _content_frames(
            channel, b"\x00" * stamp_len + b"x" * (size - stamp_len), frame_max, properties
        )
        header_len = 7 + len(struct.pack(">HHQ", 60, 0, 0)) + len(properties) + 1
        split = header_len + (7 if size else 0)
        prefix, rest = content[:split], content[split + stamp_len :]
        self._heads = [
            method_frame(
                channel, 60, 40, b"\x00\x00" + shortstr(exchange) + shortstr(key) + b"\x00"
            )
            + prefix
            for key in routing_keys
        ]
        self._tail = rest
        self._key_index = 0
        self.message_len = len(self._heads[0]) + stamp_len + len(rest)
        # About 64 KiB per write keeps the socket busy without building huge strings.
        self.batch_max = max(1, min(512, 65536 // self.message_len))

    def batch(self, count: int, now_ns: int) -> bytes:
        stamp = _U64.pack(now_ns) if self.has_timestamp else b""
        heads = self._heads
        if len(heads) == 1:
            # One join: a 1 MiB body is copied once per message, not twice.
            return b"".join((heads[0], stamp, self._tail)) * count
        middle = stamp + self._tail
        nkeys = len(heads)
        i = self._key_index
        parts: list[bytes] = []
        append = parts.append
        for _ in range(count):
            append(heads[i])
            append(middle)
            i += 1
            if i == nkeys:
                i = 0
        self._key_index = i
        return b"".join(parts)


class ConfirmTracker:
    """Publisher confirms for one channel: how many are confirmed, and publish→confirm latency."""

    __slots__ = ("_acked_ahead", "_published_ns", "confirmed", "latencies_ns", "nacked", "upto")

    def __init__(self) -> None:
        self._published_ns = array.array("q")
        self._acked_ahead: set[int] = set()
        self.upto = 0  # every sequence number <= upto is confirmed
        self.confirmed = 0
        self.nacked = 0
        self.latencies_ns = array.array("q")

    @property
    def published(self) -> int:
        return len(self._published_ns)

    def on_publish(self, count: int, now_ns: int) -> None:
        self._published_ns.frombytes(_NATIVE_I64.pack(now_ns) * count)

    def on_confirm(self, tag: int, multiple: bool, nack: bool, now_ns: int) -> None:
        before = self.confirmed
        stamps = self._published_ns
        lat = self.latencies_ns
        if tag > len(stamps):
            raise BenchProtocolError(f"confirm for sequence {tag} never published")
        if multiple:
            if tag > self.upto:
                ahead = self._acked_ahead
                if ahead:
                    for seq in range(self.upto + 1, tag + 1):
                        if seq in ahead:
                            ahead.discard(seq)
                        else:
                            lat.append(now_ns - stamps[seq - 1])
                            self.confirmed += 1
                else:
                    lat.extend([now_ns - t for t in stamps[self.upto : tag]])
                    self.confirmed += tag - self.upto
                self.upto = tag
        elif tag > self.upto and tag not in self._acked_ahead:
            lat.append(now_ns - stamps[tag - 1])
            self.confirmed += 1
            if tag == self.upto + 1:
                self.upto = tag
                while self.upto + 1 in self._acked_ahead:
                    self._acked_ahead.discard(self.upto + 1)
                    self.upto += 1
            else:
                self._acked_ahead.add(tag)
        if nack:
            self.nacked += self.confirmed - before


class _ChannelState:
    __slots__ = (
        "ack_every",
        "body_left",
        "confirms",
        "dirty",
        "last_tag",
        "pending_acks",
        "stamp",
        "tag",
        "unacked",
    )

    def __init__(self) -> None:
        self.tag = 0
        self.body_left = 0
        self.stamp = 0
        self.ack_every = 0  # 0 = one multiple-ack per receive buffer; 1 = ack each message
        self.unacked = 0
        self.last_tag = 0
        self.pending_acks: list[bytes] = []
        self.dirty = False
        self.confirms: ConfirmTracker | None = None


class Receiver:
    """Sans-I/O receive side: ``feed(data)`` parses every complete frame and returns acks to send.

    The fast path (basic.deliver, content header/body, basic.ack/nack confirms, heartbeats) is
    one loop over the buffer; every other method goes to ``on_method(channel, class_id,
    method_id, arguments)``. A partial frame at the end of a buffer is kept for the next call.
    """

    __slots__ = (
        "_channels",
        "_dirty",
        "_skip",
        "_tail",
        "delivered",
        "latencies_ns",
        "on_method",
        "record_latency",
    )

    def __init__(self, on_method: MethodHandler | None = None) -> None:
        self._tail = b""
        # Bytes still to come of a large body frame already counted (its payload and end).
        self._skip = 0
        self._channels: list[_ChannelState] = [_ChannelState() for _ in range(8)]
        self._dirty: list[int] = []
        self.delivered = 0
        self.latencies_ns = array.array("q")
        self.record_latency = True
        self.on_method = on_method

    def channel(self, number: int) -> _ChannelState:
        while number >= len(self._channels):
            self._channels.append(_ChannelState())
        return self._channels[number]

    def set_ack_every(self, channel: int, every: int) -> None:
        self.channel(channel).ack_every = every

    def track_confirms(self, channel: int) -> ConfirmTracker:
        tracker = ConfirmTracker()
        self.channel(channel).confirms = tracker
        return tracker

    def _complete_empty(self, st: _ChannelState, channel: int) -> None:
        # A zero-length body has no body frame and so no timestamp.
        self.delivered += 1
        self._queue_ack(st, channel)

    def _queue_ack(self, st: _ChannelState, channel: int) -> None:
        if st.ack_every == 1:
            st.pending_acks.append(_ACK_FRAME.pack(1, channel, 13, 60, 80, st.tag, 0, FRAME_END))
        else:
            st.last_tag = st.tag
            st.unacked += 1
            if st.ack_every and st.unacked >= st.ack_every:
                st.pending_acks.append(
                    _ACK_FRAME.pack(1, channel, 13, 60, 80, st.tag, 1, FRAME_END)
                )
                st.unacked = 0
        if not st.dirty:
            st.dirty = True
            self._dirty.append(channel)

    def _confirm(self, ch: int, data: bytes, pos: int, nack: bool, now: int) -> None:
        tracker = self._channels[ch].confirms
        if tracker is None:
            raise BenchProtocolError(f"confirm on channel {ch} without confirm.select")
        tracker.on_confirm(_U64.unpack_from(data, pos + 11)[0], bool(data[pos + 19] & 1), nack, now)

    def _begin(self, data: bytes) -> tuple[bytes, int] | None:
        """Where parsing starts: after the rest of a skipped body frame (discarded, never
        kept or copied), or at the kept partial frame joined with ``data``; None when
        ``data`` is all skipped."""
        skip = self._skip
        if not skip:
            return self._tail + data, 0
        if len(data) < skip:
            self._skip = skip - len(data)
            return None
        if data[skip - 1] != FRAME_END:
            raise BenchProtocolError(f"frame end octet is {data[skip - 1]:#x}, not 0xce")
        self._skip = 0
        return data, skip

    def feed(self, data: bytes) -> bytes:
        """Parse ``data`` (appended to any partial frame kept from before); return acks to write."""
        pos = 0
        if self._skip or self._tail:
            begun = self._begin(data)
            if begun is None:
                return b""
            data, pos = begun
        n = len(data)
        now = _mono_ns()
        chans = self._channels
        nchans = len(chans)
        unpack_hdr = _FRAME_HDR.unpack_from
        unpack_u64 = _U64.unpack_from
        record = self.record_latency
        lat_append = self.latencies_ns.append
        dirty_append = self._dirty.append
        unpack_u32 = _U32.unpack_from
        delivered = 0
        while n - pos >= 8:
            ftype, ch, size = unpack_hdr(data, pos)
            end = pos + 7 + size
            if end >= n:
                # A large body frame begun: counted now, the rest skipped (see _begin).
                if ftype != FRAME_BODY or size < SKIP_MIN or n - pos < 15:
                    break
                self._skip = end + 1 - n
            elif data[end] != 0xCE:
                raise BenchProtocolError(f"frame end octet is {data[end]:#x}, not 0xce")
            if ch >= nchans:
                self.channel(ch)  # grows the same list ``chans`` refers to
                nchans = len(chans)
            if ftype == FRAME_BODY:
                st = chans[ch]
                if st.body_left <= 0:
                    raise BenchProtocolError(f"body frame on channel {ch} without a content header")
                if st.stamp == 0:
                    # 1 marks "no timestamp" (a body shorter than 8 bytes).
                    st.stamp = unpack_u64(data, pos + 7)[0] if size >= 8 else 1
                st.body_left -= size
                if st.body_left <= 0:
                    delivered += 1
                    if record and st.stamp > 1:
                        lat_append(now - st.stamp)
                    st.body_left = 0
                    if st.ack_every == 0:  # the common case, inlined: one multiple-ack per buffer
                        st.last_tag = st.tag
                        st.unacked += 1
                        if not st.dirty:
                            st.dirty = True
                            dirty_append(ch)
                    else:
                        self._queue_ack(st, ch)
            elif ftype == FRAME_METHOD:
                cm = unpack_u32(data, pos + 7)[0]
                if cm == BASIC_DELIVER:
                    chans[ch].tag = unpack_u64(data, pos + 12 + data[pos + 11])[0]
                elif cm in (BASIC_ACK, BASIC_NACK):
                    self._confirm(ch, data, pos, cm == BASIC_NACK, now)
                elif self.on_method is not None:
                    self.on_method(ch, cm >> 16, cm & 0xFFFF, data[pos + 11 : end])
            elif ftype == FRAME_HEADER:
                st = chans[ch]
                st.body_left = unpack_u64(data, pos + 11)[0]
                st.stamp = 0
                if st.body_left == 0:
                    self._complete_empty(st, ch)
            elif ftype != FRAME_HEARTBEAT:
                raise BenchProtocolError(f"unknown frame type {ftype}")
            pos = end + 1
        self._tail = data[pos:] if pos < n else b""
        self.delivered += delivered
        if not self._dirty:
            return b""
        return self._flush_acks()

    def _flush_acks(self) -> bytes:
        out: list[bytes] = []
        for ch in self._dirty:
            st = self._channels[ch]
            st.dirty = False
            if st.pending_acks:
                out.extend(st.pending_acks)
                st.pending_acks.clear()
            if st.ack_every != 1 and st.unacked:
                # Whatever is left of this buffer: acking it now returns prefetch credit.
                out.append(_ACK_FRAME.pack(1, ch, 13, 60, 80, st.last_tag, 1, FRAME_END))
                st.unacked = 0
        self._dirty.clear()
        return b"".join(out)
