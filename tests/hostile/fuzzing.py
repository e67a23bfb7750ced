"""Hostile AMQP 0-9-1 traffic for the fuzz tests, and the oracles that judge the answers.

Test helper (not a test module).  Inputs come from two sources:

- *valid traffic, mutated*: :func:`record_pika_session` records the bytes a real pika
  client sends through a trio proxy (handshake, declares, binds, publishes with
  properties and headers, a multi-frame body, consume, ack, get, tx, closes);
  :func:`split_frames` cuts them into frames, and :func:`mutate` applies frame-aware
  mutations (bit flips, interesting lengths over length fields, truncation, frames
  dropped, duplicated, swapped or spliced, channel and type changes, over-long bodies,
  tables nested past the limit);
- *generated frames* from the method table (``methods.METHODS``): every method with
  random arguments of the right AMQP types (:func:`gen_method_frame`), random field
  tables (:func:`gen_table`) and content (:func:`gen_content`).

Every generator takes a :class:`random.Random`: the long run (``make fuzz``) drives them
with a seeded ``random.Random`` (fast, a million inputs), the suite drives them through
the hypothesis strategies at the bottom (``st.randoms(use_true_random=False)``, so
hypothesis chooses and shrinks every draw).

Oracles: :func:`run_codec` feeds an input to the sans-I/O codec in random chunks,
answering the handshake as a server would; the only exceptions allowed out are the
codec's documented protocol errors, with the codes it documents.  :func:`run_live`
sends an input to a live broker and reads until it hangs up.
"""

from __future__ import annotations

import functools
import random
import struct
import time
from collections.abc import Callable
from typing import Any

import attrs
import pika
import trio
from hypothesis import strategies as st
from rawamqp import RawClient, publish_frames

from amqplite.app import run_in_thread
from amqplite.errors import AMQPConnectionError, ChannelError, ReplyCode
from amqplite.protocol import NEED_DATA, ServerConnection, events, methods
from amqplite.protocol.fields import MAX_DEPTH, encode_table
from amqplite.protocol.frames import (
    FRAME_BODY,
    FRAME_HEAD,
    FRAME_HEADER,
    FRAME_METHOD,
    PROTOCOL_HEADER,
    encode_frame,
)

FRAME_MAX = 131072

#: Hard-error codes the codec documents (protocol/connection.py's module docstring).
CODEC_CODES = frozenset(
    {
        ReplyCode.FRAME_ERROR,
        ReplyCode.COMMAND_INVALID,
        ReplyCode.CHANNEL_ERROR,
        ReplyCode.UNEXPECTED_FRAME,
        ReplyCode.NOT_ALLOWED,
        ReplyCode.NOT_IMPLEMENTED,
    }
)
#: What a live broker may close a fuzzed connection with: the codec's codes and the
#: session's (a refused login, a missing vhost or queue, a bad argument).  Never 541.
LIVE_CODES = CODEC_CODES | {
    ReplyCode.CONNECTION_FORCED,
    ReplyCode.ACCESS_REFUSED,
    ReplyCode.NOT_FOUND,
    ReplyCode.RESOURCE_LOCKED,
    ReplyCode.PRECONDITION_FAILED,
    ReplyCode.SYNTAX_ERROR,
    ReplyCode.INVALID_PATH,
    ReplyCode.RESOURCE_ERROR,
}

INTERESTING_U8 = (0, 1, 7, 8, 0x7F, 0x80, 0xCE, 0xFE, 0xFF)
INTERESTING_U16 = (0, 1, 10, 20, 40, 50, 60, 85, 90, 0x7FFF, 0x8000, 0xFFFF)
INTERESTING_U32 = (
    0,
    1,
    2,
    4,
    7,
    8,
    0x7F,
    0xFF,
    0x100,
    4095,
    4096,
    FRAME_MAX - 8,
    FRAME_MAX,
    FRAME_MAX + 1,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFE,
    0xFFFFFFFF,
)


# -- the seed corpus: a real pika session --------------------------------------------


def _pika_session(port: int) -> None:
    # The smallest frame_max, so that a 10 kB body takes three body frames.
    params = pika.ConnectionParameters("127.0.0.1", port, heartbeat=0, frame_max=4096)
    with pika.BlockingConnection(params) as connection:
        ch = connection.channel()
        ch.confirm_delivery()
        ch.exchange_declare("fz.x", "topic", durable=False, arguments={"alternate-exchange": "a"})
        ch.queue_declare("fz.q", arguments={"x-max-length": 100, "x-message-ttl": 60_000})
        ch.queue_bind("fz.q", "fz.x", "a.*.#", arguments={"k": [1, "two", {"three": 3, "t": True}]})
        props = pika.BasicProperties(
            content_type="text/plain",
            delivery_mode=2,
            priority=3,
            correlation_id="c-1",
            reply_to="replies",
            expiration="60000",
            message_id="m-1",
            timestamp=1_700_000_000,
            headers={"h": {"nested": [1, 2, {"deep": "text"}]}, "n": -5},
        )
        ch.basic_publish("fz.x", "a.b.c", b"small body", props)
        ch.basic_publish("", "fz.q", b"x" * 10_000)  # three body frames
        ch.basic_qos(prefetch_count=10)
        got: list[bytes] = []

        def on_message(chan: Any, deliver: Any, _props: Any, body: bytes) -> None:
            got.append(body)
            chan.basic_ack(deliver.delivery_tag)

        tag = ch.basic_consume("fz.q", on_message)
        while len(got) < 2:
            connection.process_data_events(time_limit=1)
        ch.basic_cancel(tag)
        ch.basic_publish("", "fz.q", b"for get")
        ch.basic_get("fz.q", auto_ack=False)
        tx = connection.channel()
        tx.tx_select()
        tx.basic_publish("", "fz.q", b"in tx")
        tx.tx_rollback()
        tx.close()
        ch.queue_purge("fz.q")
        ch.queue_unbind("fz.q", "fz.x", "a.*.#")
        ch.queue_delete("fz.q")
        ch.exchange_delete("fz.x")


async def _pipe(source: trio.SocketStream, sink: trio.SocketStream, tap: bytearray | None) -> None:
    try:
        while data := await source.receive_some(65536):
            if tap is not None:
                tap += data
            await sink.send_all(data)
        await sink.send_eof()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def record_pika_session(broker_port: int) -> bytes:
    """Everything a real pika client sends in one varied session, recorded by a proxy."""
    recorded = bytearray()
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:

        async def proxy() -> None:
            client = await listeners[0].accept()
            server = await trio.open_tcp_stream("127.0.0.1", broker_port)
            async with client, server, trio.open_nursery() as inner:
                inner.start_soon(_pipe, client, server, recorded)
                inner.start_soon(_pipe, server, client, None)

        nursery.start_soon(proxy)
        await trio.to_thread.run_sync(_pika_session, port)
        nursery.cancel_scope.cancel()
    for listener in listeners:
        await listener.aclose()
    return bytes(recorded)


def split_frames(stream: bytes) -> list[bytes]:
    """The protocol header and each whole frame of a recorded client stream."""
    assert stream.startswith(PROTOCOL_HEADER)
    frames = [stream[:8]]
    pos = 8
    while pos + 7 <= len(stream):
        _, _, size = FRAME_HEAD.unpack_from(stream, pos)
        end = pos + 8 + size
        frames.append(stream[pos:end])
        pos = end
    return frames


# -- generated frames -------------------------------------------------------------------

_METHOD_CLASSES = sorted(methods.METHODS.values(), key=lambda cls: (cls.CLASS_ID, cls.METHOD_ID))


def gen_text(rng: random.Random, max_len: int = 12) -> str:
    alphabet = "abcxyz.#*-_09 é\x00"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(max_len + 1)))


def gen_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 7)
    if kind == 0:
        return rng.random() < 0.5
    if kind == 1:
        return rng.choice((0, 1, -1, 2**31 - 1, -(2**31), 2**63 - 1, rng.randrange(1000)))
    if kind == 2:
        return gen_text(rng)
    if kind == 3:
        return rng.randbytes(rng.randrange(8))
    if kind == 4:
        return None
    if kind == 5:
        return rng.random() * 1e6
    if kind == 6:
        return rng.choice(("x-dead-letter-exchange", "x-max-length", "x-queue-type", "stream"))
    if kind == 7:
        return [gen_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return gen_table(rng, depth + 1)


def gen_table(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    """A field table of every value type, nested a few levels."""
    return {gen_text(rng, 8): gen_value(rng, depth) for _ in range(rng.randrange(4))}


def _gen_field(rng: random.Random, kind: str) -> Any:
    if kind == "bit":
        return rng.random() < 0.5
    if kind == "octet":
        return rng.choice(INTERESTING_U8)
    if kind == "short":
        return rng.choice((*INTERESTING_U16, rng.randrange(65536)))
    if kind in ("long", "longlong", "timestamp"):
        return rng.choice((*INTERESTING_U32, rng.randrange(1000)))
    if kind == "shortstr":
        return gen_text(rng, 20)
    if kind == "longstr":
        return rng.randbytes(rng.randrange(24))
    return gen_table(rng)


def gen_method(rng: random.Random) -> methods.Method:
    """Any method of the table (client's or server's) with random arguments."""
    cls = rng.choice(_METHOD_CLASSES)
    return cls(**{name: _gen_field(rng, kind) for name, kind in cls.FIELDS})


def gen_method_frame(rng: random.Random, channel: int | None = None) -> bytes:
    if channel is None:
        channel = rng.choice((0, 1, 1, 1, 2, 65535))
    return encode_frame(FRAME_METHOD, channel, gen_method(rng).encode())


def gen_content(rng: random.Random, channel: int = 1) -> bytes:
    """A basic.publish with a header whose declared size may disagree with its bodies."""
    body = rng.randbytes(rng.randrange(64))
    declared = rng.choice((len(body), len(body), 0, len(body) + 1, max(0, len(body) - 1)))
    pieces = rng.randrange(1, 4)
    cut = sorted(rng.randrange(len(body) + 1) for _ in range(pieces - 1))
    chunks = [body[a:b] for a, b in zip([0, *cut], [*cut, len(body)], strict=True)]
    flags = rng.choice((0, 0x8000, 0x2000))
    raw = struct.pack(">H", flags)
    if flags == 0x8000:
        raw += bytes((4,)) + b"text"
    elif flags == 0x2000:
        raw += encode_table(gen_table(rng))
    publish = methods.BasicPublish(0, rng.choice(("", "amq.topic")), gen_text(rng), False, False)
    out = [encode_frame(FRAME_METHOD, channel, publish.encode())]
    out.append(encode_frame(FRAME_HEADER, channel, struct.pack(">HHQ", 60, 0, declared) + raw))
    out.extend(encode_frame(FRAME_BODY, channel, chunk) for chunk in chunks)
    return b"".join(out)


@functools.cache
def nested_table(depth: int) -> bytes:
    """A field table (with its length) nesting ``depth`` tables, one key each."""
    inner = b"\x00\x00\x00\x00"
    for _ in range(depth):
        entry = b"\x01kF" + inner
        inner = struct.pack(">I", len(entry)) + entry
    return inner


def nested_table_frame(depth: int, channel: int = 1) -> bytes:
    """queue.declare whose arguments nest ``depth`` tables (past MAX_DEPTH when asked)."""
    payload = struct.pack(">HHH", 50, 10, 0) + b"\x01q" + b"\x00" + nested_table(depth)
    return encode_frame(FRAME_METHOD, channel, payload)


# -- mutations ---------------------------------------------------------------------------

Frames = list[bytes]


def _pick(rng: random.Random, frames: Frames) -> int:
    return rng.randrange(len(frames))


def _patch(frame: bytes, pos: int, new: bytes) -> bytes:
    pos = min(pos, max(0, len(frame) - len(new)))
    return frame[:pos] + new + frame[pos + len(new) :]


def m_flip_bit(rng: random.Random, frames: Frames) -> None:
    i = _pick(rng, frames)
    if frames[i]:
        pos = rng.randrange(len(frames[i]))
        frames[i] = _patch(frames[i], pos, bytes((frames[i][pos] ^ (1 << rng.randrange(8)),)))


def m_set_u8(rng: random.Random, frames: Frames) -> None:
    i = _pick(rng, frames)
    pos = rng.randrange(len(frames[i]) + 1)
    frames[i] = _patch(frames[i], pos, bytes((rng.choice(INTERESTING_U8),)))


def m_set_u16(rng: random.Random, frames: Frames) -> None:
    i = _pick(rng, frames)
    pos = rng.randrange(len(frames[i]) + 1)
    frames[i] = _patch(frames[i], pos, struct.pack(">H", rng.choice(INTERESTING_U16)))


def m_set_u32(rng: random.Random, frames: Frames) -> None:
    """An interesting value over any four octets: table, long-string and size fields."""
    i = _pick(rng, frames)
    pos = rng.randrange(len(frames[i]) + 1)
    frames[i] = _patch(frames[i], pos, struct.pack(">I", rng.choice(INTERESTING_U32)))


def m_frame_size(rng: random.Random, frames: Frames) -> None:
    i = _pick(rng, frames)
    if len(frames[i]) >= 7 and i:
        frames[i] = _patch(frames[i], 3, struct.pack(">I", rng.choice(INTERESTING_U32)))


def m_frame_type(rng: random.Random, frames: Frames) -> None:
    i = _pick(rng, frames)
    if frames[i] and i:
        frames[i] = bytes((rng.choice((0, 1, 2, 3, 4, 8, 9, 0xCE, 0xFF)),)) + frames[i][1:]


def m_channel(rng: random.Random, frames: Frames) -> None:
    i = _pick(rng, frames)
    if len(frames[i]) >= 3 and i:
        frames[i] = _patch(frames[i], 1, struct.pack(">H", rng.choice((0, 1, 2, 3, 65535))))


def m_truncate(rng: random.Random, frames: Frames) -> None:
    i = _pick(rng, frames)
    frames[i] = frames[i][: rng.randrange(len(frames[i]) + 1)]
    del frames[i + 1 :]


def m_insert(rng: random.Random, frames: Frames) -> None:
    i = _pick(rng, frames)
    pos = rng.randrange(len(frames[i]) + 1)
    frames[i] = frames[i][:pos] + rng.randbytes(rng.randrange(1, 9)) + frames[i][pos:]


def m_delete_bytes(rng: random.Random, frames: Frames) -> None:
    i = _pick(rng, frames)
    pos = rng.randrange(len(frames[i]) + 1)
    frames[i] = frames[i][:pos] + frames[i][pos + rng.randrange(1, 9) :]


def m_drop_frame(rng: random.Random, frames: Frames) -> None:
    if len(frames) > 1:
        del frames[_pick(rng, frames)]


def m_duplicate_frame(rng: random.Random, frames: Frames) -> None:
    i = _pick(rng, frames)
    frames.insert(i, frames[i])


def m_swap_frames(rng: random.Random, frames: Frames) -> None:
    i = _pick(rng, frames)
    if i + 1 < len(frames):
        frames[i], frames[i + 1] = frames[i + 1], frames[i]


def m_generated_method(rng: random.Random, frames: Frames) -> None:
    frames.insert(rng.randrange(1, len(frames) + 1), gen_method_frame(rng))


def m_generated_content(rng: random.Random, frames: Frames) -> None:
    frames.insert(rng.randrange(1, len(frames) + 1), gen_content(rng, rng.choice((1, 1, 2))))


def m_extra_body(rng: random.Random, frames: Frames) -> None:
    """A body frame after a content body: more than the declared body size."""
    bodies = [i for i, f in enumerate(frames) if f[:1] == b"\x03"]
    if bodies:
        i = rng.choice(bodies)
        frames.insert(i + 1, frames[i])


def m_deep_table(rng: random.Random, frames: Frames) -> None:
    depth = rng.choice((MAX_DEPTH, MAX_DEPTH + 1, 1000, 20_000))
    frames.insert(rng.randrange(1, len(frames) + 1), nested_table_frame(depth))


MUTATIONS: tuple[Callable[[random.Random, Frames], None], ...] = (
    m_flip_bit,
    m_set_u8,
    m_set_u16,
    m_set_u32,
    m_set_u32,
    m_frame_size,
    m_frame_type,
    m_channel,
    m_truncate,
    m_insert,
    m_delete_bytes,
    m_drop_frame,
    m_duplicate_frame,
    m_swap_frames,
    m_generated_method,
    m_generated_content,
    m_extra_body,
    m_deep_table,
)


def mutate(rng: random.Random, corpus: Frames) -> bytes:
    """A prefix of the recorded session (cut at a random frame), mutated 1-4 times."""
    end = rng.randrange(2, len(corpus) + 1)
    frames = corpus[:end]
    for _ in range(rng.randrange(1, 5)):
        rng.choice(MUTATIONS)(rng, frames)
    return b"".join(frames)


def hostile_input(rng: random.Random, corpus: Frames) -> bytes:
    """One fuzz input: mostly mutated valid traffic, else a valid prefix (the protocol
    header, the handshake, or the handshake and channel.open) and generated frames."""
    if rng.random() < 0.8:
        return mutate(rng, corpus)
    prefix = corpus[: rng.choice((1, 4, 5))]
    tail = [
        gen_content(rng, 1) if rng.random() < 0.3 else gen_method_frame(rng)
        for _ in range(rng.randrange(1, 5))
    ]
    return b"".join(prefix + tail)


# -- oracle: the codec in-process --------------------------------------------------------


@attrs.define
class CodecOutcome:
    events: int = 0
    code: int | None = None  # the hard error's reply code, if any
    channel_errors: int = 0


_SERVER_REPLIES: dict[type[methods.Method], Callable[[], methods.Method]] = {
    methods.ConnectionOpen: methods.ConnectionOpenOk,
    methods.ChannelOpen: methods.ChannelOpenOk,
    methods.ChannelClose: methods.ChannelCloseOk,
    methods.ConnectionClose: methods.ConnectionCloseOk,
}


def _answer(proto: ServerConnection, event: events.Event) -> None:
    """What a session would send back, as far as the codec's state depends on it."""
    if isinstance(event, events.ProtocolHeader):
        proto.send_method(0, methods.ConnectionStart(0, 9, {}, b"PLAIN", b"en_US"))
    elif isinstance(event, events.Method):
        if isinstance(event.method, methods.ConnectionStartOk):
            proto.send_method(0, proto.tune_method())
        reply = _SERVER_REPLIES.get(type(event.method))
        if reply is not None:
            proto.send_method(event.channel, reply())


def run_codec(data: bytes, rng: random.Random) -> CodecOutcome:
    """Feed ``data`` in random chunks; raises anything but the documented protocol errors."""
    proto = ServerConnection(frame_max=FRAME_MAX)
    outcome = CodecOutcome()
    cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randrange(4)))
    for start, stop in zip([0, *cuts], [*cuts, len(data)], strict=True):
        if start == stop:
            continue  # b"" would mean EOF
        proto.receive_data(data[start:stop])
        while True:
            try:
                event = proto.next_event()
            except AMQPConnectionError as exc:
                outcome.code = exc.reply_code
                assert exc.reply_code in CODEC_CODES, exc
                return outcome
            except ChannelError as exc:
                assert exc.reply_code == ReplyCode.PRECONDITION_FAILED, exc
                outcome.channel_errors += 1
                continue
            if event is NEED_DATA:
                break
            outcome.events += 1
            if isinstance(event, events.ProtocolHeaderMismatch | events.EOF):
                return outcome
            _answer(proto, event)  # type: ignore[arg-type]
    return outcome


# -- oracle: a live broker ---------------------------------------------------------------


@attrs.define
class LiveOutcome:
    code: int | None  # the reply code of the first connection.close, if any
    replies: int
    seconds: float
    opened: bool = False  # connection.open-ok came back (the handshake was over)


async def run_live(port: int, data: bytes, *, timeout: float = 15.0) -> LiveOutcome:
    """Send ``data`` on a new connection, half-close, read until the broker hangs up."""
    started = time.monotonic()
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    buf = bytearray()
    code = None
    replies = 0
    opened = False
    with trio.fail_after(timeout):  # a hang is a failure
        async with stream:
            try:
                await stream.send_all(data)
                await stream.send_eof()
                while chunk := await stream.receive_some(65536):
                    buf += chunk
            except trio.BrokenResourceError:
                pass  # reset after a close (the broker hung up with our input unread)
    pos = 8 if buf.startswith(b"AMQP") else 0
    while pos + 7 <= len(buf):
        ftype, channel, size = FRAME_HEAD.unpack_from(buf, pos)
        payload = bytes(buf[pos + 7 : pos + 7 + size])
        pos += 8 + size
        if ftype == FRAME_METHOD and len(payload) >= 4:
            replies += 1
            opened = opened or payload[:4] == b"\x00\x0a\x00\x29"
            if payload[:4] == b"\x00\x0a\x00\x32" and code is None and channel == 0:
                (code,) = struct.unpack_from(">H", payload, 4)
    return LiveOutcome(code, replies, time.monotonic() - started, opened)


# -- the witness: a second connection that must lose nothing -----------------------------


@attrs.define
class Witness:
    """Publishes numbered messages to its own queue and consumes them, in a loop."""

    sent: int = 0
    received: int = 0
    stop: bool = False

    async def run(self, port: int) -> None:
        client = await RawClient.connect(port)
        await client.handshake()
        await client.open_channel(1)
        queue = f"witness-{id(self)}"
        await client.declare_queue(1, queue, exclusive=True)
        await client.send_method(1, methods.BasicConsume(0, queue, "w", False, True, False, False))
        await client.expect(methods.BasicConsumeOk)
        try:
            while not self.stop:
                batch = [self.sent + i for i in range(50)]
                await client.send(
                    b"".join(publish_frames(1, "", queue, str(n).encode()) for n in batch)
                )
                self.sent += len(batch)
                for n in batch:
                    deliver = await client.expect(methods.BasicDeliver)
                    del deliver
                    await client.read_frame()  # header
                    _, _, body = await client.read_frame()
                    assert body == str(n).encode(), (body, n)
                    self.received += 1
        finally:
            await client.aclose()


# -- hypothesis strategies ---------------------------------------------------------------

_randoms = st.randoms(use_true_random=False)

#: Field tables of every value type.
field_tables = _randoms.map(gen_table)
#: Any method of the table with random arguments.
method_objects = _randoms.map(gen_method)
#: A method frame on a random channel.
method_frames = _randoms.map(gen_method_frame)
#: A publish, its header and body frames (sizes that may disagree).
contents = _randoms.map(gen_content)


def traffic(corpus: Frames) -> st.SearchStrategy[bytes]:
    """Fuzz inputs built from ``corpus`` (a recorded session, :func:`split_frames`)."""
    return _randoms.map(lambda rng: hostile_input(rng, corpus))


@functools.cache
def pika_corpus() -> Frames:
    """The recorded pika session as frames (recorded once per process, from a broker in a
    thread; call it outside a trio run)."""
    with run_in_thread() as running:
        stream = trio.run(record_pika_session, running.port)
    return split_frames(stream)
