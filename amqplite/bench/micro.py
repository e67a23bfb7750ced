"""Micro-benchmarks of amqplite's hot functions, in-process (dev tool, bench package).

Unlike the rest of :mod:`amqplite.bench` (a load generator that must never share code
with the broker it measures), this module times *our own* functions directly: the
protocol decoder, the exchange routers, the queue and the session's deliver encoding.
It is never imported by the load generator.

Usage::

    python -m amqplite.bench.micro [--json] [--iterations N] [--repeat R]
    python -m amqplite.bench.micro --compare-ref HEAD~1    # ratios current / ref
    python -m amqplite.bench.micro --scaling               # routing cost vs bindings
    make bench-micro

Each benchmark runs its operation ``N`` times (scaled per benchmark), ``R`` times over,
and reports the best ns per operation (the minimum is the least noisy estimate on a
shared machine).  ``--compare-ref GIT_REF`` checks ``GIT_REF`` out into a temporary
``git worktree`` and runs this very file there in a subprocess (this venv's python, with
``PYTHONPATH`` pointed at the worktree, so it imports the *ref's* amqplite), alternating
with the current tree, and prints current/ref ratios: above 1.0 is slower than the ref.

Output goes to stdout: this is a command-line tool.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: (name, relative weight of iterations, what one operation is).
BENCHMARKS: list[tuple[str, float, str]] = [
    ("decode_publish_16b", 1.0, "publish+header+body frames -> Content event (16 B body)"),
    ("decode_publish_1k", 1.0, "publish+header+body frames -> Content event (1 KiB body)"),
    ("decode_ack", 2.0, "basic.ack frame -> event (a buffer of them: one Acks event per run)"),
    ("route_direct", 4.0, "direct exchange route, 1,000 keys bound"),
    ("route_topic_1000_cached", 4.0, "topic route, 1,000 wildcard bindings, key cached"),
    ("route_topic_1000_uncached", 0.5, "topic route, 1,000 wildcard bindings, trie walk"),
    ("route_fanout_10", 4.0, "fanout exchange route to 10 queues"),
    ("publish_enqueue_dispatch", 1.0, "channel.publish -> route -> enqueue -> deliver"),
    ("ack", 1.0, "channel.ack of one delivery (single, not multiple)"),
    ("ack_run_50", 1.0, "one ack of channel.ack_tags over runs of 50 (a buffer of acks)"),
    ("encode_deliver_16b", 2.0, "basic.deliver + header + body frames (16 B body)"),
    ("encode_deliver_1k", 2.0, "basic.deliver + header + body frames (1 KiB body)"),
    ("encode_deliver_many_16b", 2.0, "one delivery of DeliverEncoder.encode_many over 50 (16 B)"),
    ("decode_publish_1m", 0.002, "publish+header+8 body frames -> Content event (1 MiB body)"),
    (
        "receive_publish_1m",
        0.002,
        "a 1 MiB publish as the server reads it: 4 KiB, then the body's frames in place",
    ),
    ("deliver_1m", 0.02, "basic.deliver of a 1 MiB body into an outbox (spliced) + its iovec"),
    (
        "session_e2e_16b",
        0.5,
        "bytes in -> publish -> deliver bytes out -> ack bytes in (16 B, prefetch 100)",
    ),
    (
        "session_e2e_16k",
        0.1,
        "the same with 16 KiB bodies (one body frame each, sent from the body's own buffer)",
    ),
    (
        "session_e2e_backlog_16b",
        0.5,
        "the same with 1,000 messages queued: each buffer of acks dispatches a batch",
    ),
    ("session_publish_16b", 0.5, "publish bytes in -> queued, nobody consuming (16 B)"),
    (
        "session_stream_publish_16b",
        0.5,
        "publish bytes in, confirm mode -> appended to a stream, confirmed (16 B, runs)",
    ),
    (
        "session_stream_catchup_16b",
        1.0,
        "stream read from 'first' (prefetch 1000): chunk decode -> deliver bytes out -> "
        "multiple-ack bytes in (16 B)",
    ),
    (
        "session_stream_tail_16b",
        0.5,
        "stream live tail (prefetch 1000): publish bytes in -> deliver bytes out -> "
        "multiple-ack bytes in (16 B)",
    ),
    ("store_append_1k", 0.2, "FileStore.append of a persistent 1 KiB message (no fsync)"),
    ("store_remove", 0.2, "FileStore.remove of an appended message (no fsync)"),
    (
        "store_append_16b",
        0.2,
        "FileStore.append of a persistent 16 B message with its enqueue time (the broker's call)",
    ),
    (
        "store_recover_16b",
        0.2,
        "FileStore.recover without bodies, per message: 16 B messages in 100 queues, "
        "sealed segments (read from their summaries)",
    ),
]

DEFAULT_ITERATIONS = 50_000
FRAME_MAX = 131072
#: The (vhost, queue) key the store benchmarks write to.
STORE_QUEUE = ("/", "bench")


# -- helpers -------------------------------------------------------------------------------


def _running_protocol() -> Any:
    """A ServerConnection past the handshake with channel 1 open."""
    from amqplite.protocol import methods
    from amqplite.protocol.connection import ServerConnection
    from amqplite.protocol.frames import PROTOCOL_HEADER, encode_method_frame

    proto = ServerConnection()
    proto.receive_data(PROTOCOL_HEADER)
    proto.next_events()
    proto.send_method(0, methods.ConnectionStart(0, 9, {}, b"PLAIN", b"en_US"))
    proto.receive_data(
        encode_method_frame(0, methods.ConnectionStartOk({}, "PLAIN", b"\0guest\0guest", "en_US"))
    )
    proto.next_events()
    proto.send_method(0, proto.tune_method())
    proto.receive_data(encode_method_frame(0, methods.ConnectionTuneOk(2047, FRAME_MAX, 0)))
    proto.receive_data(encode_method_frame(0, methods.ConnectionOpen("/")))
    proto.next_events()
    proto.receive_data(encode_method_frame(1, methods.ChannelOpen()))
    proto.next_events()
    return proto


def _decode(n: int, one: bytes, events_per_unit: int) -> int:
    """Feed ``n`` copies of ``one`` in 64 KiB receive buffers; return elapsed ns."""
    from amqplite.protocol.connection import NEED_DATA
    from amqplite.protocol.events import Acks

    per_chunk = max(1, 65536 // len(one))
    chunk = one * per_chunk
    rounds = max(1, n // per_chunk)
    proto = _running_protocol()
    count = 0
    start = time.perf_counter_ns()
    for _ in range(rounds):
        proto.receive_data(chunk)
        next_event = proto.next_event
        while (event := next_event()) is not NEED_DATA:
            # A buffer of basic.acks is one event for the run: count the acks.
            count += len(event.tags) if type(event) is Acks else 1
    elapsed = time.perf_counter_ns() - start
    if count != rounds * per_chunk * events_per_unit:
        raise RuntimeError(f"decoded {count} events, expected {rounds * per_chunk}")
    # Scale to exactly n operations.
    return elapsed * n // (rounds * per_chunk)


class _NullSink:
    """A DeliverySink that keeps the last delivery tag (what a session needs to ack)."""

    __slots__ = ("count", "last_tag", "writable")

    def __init__(self) -> None:
        self.writable = True
        self.count = 0
        self.last_tag = 0

    def deliver(
        self,
        consumer_tag: str,
        delivery_tag: int,
        redelivered: bool,
        exchange: str,
        routing_key: str,
        message: Any,
    ) -> None:
        self.count += 1
        self.last_tag = delivery_tag

    def deliver_many(self, consumer_tag: str, delivery_tag: int, entries: list[Any]) -> None:
        self.count += len(entries)
        self.last_tag = delivery_tag + len(entries) - 1

    def deliver_batch(self, consumer_tag: str, delivery_tag: int, messages: Any) -> int:
        count = len(messages.bodies)
        self.count += count
        self.last_tag = delivery_tag + count - 1
        return count

    def cancel_consumer(self, consumer_tag: str) -> None:
        pass


def _world() -> tuple[Any, Any, Any]:
    """(broker, vhost, channel) on an in-memory broker."""
    from amqplite.broker import Broker

    broker = Broker(clock=time.time)
    vhost = broker.add_vhost("/")
    conn = broker.open_connection("/")
    channel = conn.open_channel(1, _NullSink())
    return broker, vhost, channel


def _message(routing_key: str, size: int = 16, exchange: str = "") -> Any:
    from amqplite.message import BasicProperties, Message

    return Message(exchange, routing_key, BasicProperties(delivery_mode=1), b"x" * size)


def _route(n: int, exchange_type: str, bind: Callable[[Any, str], None], keys: list[str]) -> int:
    _broker, vhost, _channel = _world()
    vhost.declare_exchange("bench.x", exchange_type)
    x = vhost.exchanges["bench.x"]
    bind(vhost, "bench.x")
    messages = [_message(k, exchange="bench.x") for k in keys]
    route = vhost.route
    for msg in messages:  # every key must reach a queue, else the bench is wrong
        if not route(x, msg):
            raise RuntimeError(f"{exchange_type}: key {msg.routing_key!r} routes nowhere")
    count = len(messages)
    loops = max(1, n // count)
    start = time.perf_counter_ns()
    for _ in range(loops):
        for msg in messages:
            route(x, msg)
    elapsed = time.perf_counter_ns() - start
    return elapsed * n // (loops * count)


# -- the benchmarks: each takes n and returns elapsed ns for n operations -----------------


def bench_decode_publish_16b(n: int) -> int:
    return _decode(n, _publish_bytes(16), 1)


def bench_decode_publish_1k(n: int) -> int:
    return _decode(n, _publish_bytes(1024), 1)


def _publish_bytes(size: int) -> bytes:
    from amqplite.message import BasicProperties
    from amqplite.protocol import methods
    from amqplite.protocol.frames import encode_content

    return encode_content(
        1,
        methods.BasicPublish(exchange="", routing_key="bench"),
        BasicProperties(delivery_mode=1),
        b"x" * size,
        FRAME_MAX,
    )


def bench_decode_publish_1m(n: int) -> int:
    """Guards the one-buffer assembly: the frames are copied once, into the body."""
    return _decode(n, _publish_bytes(1 << 20), 1)


def bench_receive_publish_1m(n: int) -> int:
    """Guards the scatter receive: after a short read of the method and header, one pass
    of ``next_read`` / ``body_received`` takes all 8 body frames (the parts are filled
    here as the kernel's ``recvmsg_into`` would: one copy of the body)."""
    from amqplite.protocol.connection import NEED_DATA

    wire = memoryview(_publish_bytes(1 << 20))
    proto = _running_protocol()
    start = time.perf_counter_ns()
    for _ in range(n):
        pos = 0
        events = 0
        while pos < len(wire):
            want = proto.next_read(256 << 10)
            if isinstance(want, int):
                proto.receive_data(wire[pos : pos + min(want, 4096)])
                pos += min(want, 4096)
            else:
                parts, _after = want
                if not isinstance(parts, list):  # before scatter reads: one view
                    parts = [parts]
                got = 0
                for part in parts:
                    size = len(part)
                    part[:] = wire[pos : pos + size]
                    pos += size
                    got += size
                    part.release()
                rest = proto.body_received(got)
                if rest:
                    proto.receive_data(rest)
            while proto.next_event() is not NEED_DATA:
                events += 1
        if events != 1:
            raise RuntimeError(f"{events} events for one publish")
    return time.perf_counter_ns() - start


def bench_decode_ack(n: int) -> int:
    from amqplite.protocol import methods
    from amqplite.protocol.frames import encode_method_frame

    return _decode(n, encode_method_frame(1, methods.BasicAck(1, False)), 1)


def bench_route_direct(n: int) -> int:
    def bind(vhost: Any, exchange: str) -> None:
        for i in range(1000):
            vhost.declare_queue(f"q{i}")
            vhost.bind_queue(f"q{i}", exchange, f"key.{i}")

    return _route(n, "direct", bind, [f"key.{i}" for i in range(0, 1000, 7)])


def _bind_topic(vhost: Any, exchange: str) -> None:
    for i in range(10):
        vhost.declare_queue(f"q{i}")
    for i in range(1000):
        vhost.bind_queue(f"q{i % 10}", exchange, f"bench.{i}.*")


def bench_route_topic_1000_cached(n: int) -> int:
    return _route(n, "topic", _bind_topic, [f"bench.{i}.x" for i in range(0, 1000, 7)])


def bench_route_topic_1000_uncached(n: int) -> int:
    # More distinct keys than the route cache holds (4,096), cycled: every lookup misses.
    keys = [f"bench.{i}.{j}" for j in range(9) for i in range(1000)]
    return _route(n, "topic", _bind_topic, keys)


def bench_route_fanout_10(n: int) -> int:
    def bind(vhost: Any, exchange: str) -> None:
        for i in range(10):
            vhost.declare_queue(f"q{i}")
            vhost.bind_queue(f"q{i}", exchange, "")

    return _route(n, "fanout", bind, ["any"])


def _consuming_world() -> tuple[Any, Any, _NullSink]:
    """A channel consuming (manual ack, unlimited prefetch) from queue 'bench'."""
    broker, _vhost, _ = _world()
    conn = broker.open_connection("/")
    sink = _NullSink()
    channel = conn.open_channel(2, sink)
    channel.declare_queue("bench")
    channel.consume("bench", "ctag")
    return broker, channel, sink


def bench_publish_enqueue_dispatch(n: int) -> int:
    _broker, channel, sink = _consuming_world()
    msg = _message("bench")
    publish = channel.publish
    start = time.perf_counter_ns()
    for _ in range(n):
        publish("", "bench", msg)
    elapsed = time.perf_counter_ns() - start
    if sink.count != n:
        raise RuntimeError(f"delivered {sink.count} of {n}")
    return elapsed


def bench_ack(n: int) -> int:
    _broker, channel, sink = _consuming_world()
    msg = _message("bench")
    for _ in range(n):
        channel.publish("", "bench", msg)
    first = sink.last_tag - n + 1
    ack = channel.ack
    start = time.perf_counter_ns()
    for tag in range(first, first + n):
        ack(tag)
    elapsed = time.perf_counter_ns() - start
    if channel.unacked:
        raise RuntimeError("acks left deliveries unacked")
    return elapsed


def bench_ack_run_50(n: int) -> int:
    _broker, channel, sink = _consuming_world()
    msg = _message("bench")
    n = max(50, n - n % 50)
    for _ in range(n):
        channel.publish("", "bench", msg)
    first = sink.last_tag - n + 1
    runs = [list(range(t, t + 50)) for t in range(first, first + n, 50)]
    ack_tags = channel.ack_tags
    start = time.perf_counter_ns()
    for tags in runs:
        ack_tags(tags)
    elapsed = time.perf_counter_ns() - start
    if channel.unacked:
        raise RuntimeError("acks left deliveries unacked")
    return elapsed


def bench_encode_deliver_many_16b(n: int) -> int:
    from amqplite.broker.queue import QueueEntry
    from amqplite.message import BasicProperties, Message
    from amqplite.protocol.deliver import DeliverEncoder
    from amqplite.protocol.properties import encode_properties

    props = BasicProperties(delivery_mode=1)
    raw = encode_properties(props)  # as received: the encoder's template path
    entries = [
        QueueEntry(Message("", "bench", props, b"x" * 16, raw), seq, None) for seq in range(50)
    ]
    encoder = DeliverEncoder(1)
    out: list[Any] = []
    start = time.perf_counter_ns()
    for tag in range(1, n + 1, 50):
        encoder.encode_many("amq.ctag-1", tag, entries, 0, 1 << 20, FRAME_MAX, out)
        out.clear()
    return time.perf_counter_ns() - start


def _encode_deliver(n: int, size: int) -> int:
    from amqplite.protocol.frames import encode_deliver

    msg = _message("bench", size)
    out = bytearray()
    start = time.perf_counter_ns()
    for tag in range(1, n + 1):
        out += encode_deliver(1, "amq.ctag-1", tag, False, "", "bench", msg, FRAME_MAX)
        if len(out) > 1 << 20:
            out = bytearray()
    return time.perf_counter_ns() - start


def bench_encode_deliver_16b(n: int) -> int:
    return _encode_deliver(n, 16)


def bench_encode_deliver_1k(n: int) -> int:
    return _encode_deliver(n, 1024)


def bench_deliver_1m(n: int) -> int:
    """Guards the uncopied send: the body goes into the outbox as memoryview slices and
    out as one iovec (what ``sendmsg`` is given), never joined or copied."""
    from amqplite.protocol.frames import deliver_parts

    msg = _message("bench", 1 << 20)
    outbox = _outbox()
    start = time.perf_counter_ns()
    for tag in range(1, n + 1):
        outbox.write(deliver_parts(1, "amq.ctag-1", tag, False, "", "bench", msg, FRAME_MAX))
        iov = outbox.take()  # what a send would hand the kernel
        outbox.in_flight = 0
    elapsed = time.perf_counter_ns() - start
    if sum(map(len, iov)) <= 1 << 20:
        raise RuntimeError("the delivery lost its body")
    return elapsed


# -- whole sessions: bytes in, bytes out, no sockets ---------------------------------------


def _outbox() -> Any:
    """A connection's real Outbox without a socket: the benchmark plays the socket and
    takes everything at the end of each batch (:func:`_batch`)."""
    from amqplite.server.outbox import Outbox

    return Outbox(None, high_water=1 << 30, low_water=1 << 29, now=0.0)  # type: ignore[arg-type]


def _session(broker: Any, flushes: Any) -> Any:
    """A Session past the handshake (guest on /) with channel 1 open."""
    from amqplite.protocol import methods
    from amqplite.protocol.frames import PROTOCOL_HEADER, encode_method_frame
    from amqplite.server.session import Session
    from amqplite.settings import ServerSettings

    settings = ServerSettings()
    session = Session(
        broker=broker,
        settings=settings,
        outbox=_outbox(),
        flushes=flushes,
        peer=("127.0.0.1", 1),
        name="bench",
    )
    session.data_received(PROTOCOL_HEADER)
    session.data_received(
        encode_method_frame(0, methods.ConnectionStartOk({}, "PLAIN", b"\0guest\0guest", "en_US"))
    )
    login = session.check_login()  # SHA-256 hash: checked inline, never suspends
    try:
        login.send(None)
    except StopIteration:
        pass
    session.data_received(
        encode_method_frame(0, methods.ConnectionTuneOk(2047, FRAME_MAX, 0))
        + encode_method_frame(0, methods.ConnectionOpen("/"))
        + encode_method_frame(1, methods.ChannelOpen())
    )
    if session.connection is None or 1 not in session.channels:
        raise RuntimeError("session handshake failed")
    _sent(session)
    return session


def _session_broker(store: Any = None) -> tuple[Any, Any]:
    from amqplite.broker import Broker
    from amqplite.broker.passwords import hash_password
    from amqplite.server.outbox import FlushQueue

    broker = Broker(clock=time.time, store=store)
    broker.add_vhost("/")
    broker.users.add_user("guest", hash_password("guest"), ("administrator",))
    broker.users.set_permissions("guest", "/", ".*", ".*", ".*")
    return broker, FlushQueue()


def _sent(session: Any) -> int:
    """Take everything the session's outbox holds, as a socket would; how many bytes."""
    outbox = session.outbox
    size = sum(map(len, outbox.take()))  # (large bodies are spliced in, not copied)
    outbox.in_flight -= size
    return size


def _batch(session: Any, data: bytes, flushes: Any) -> int:
    """What the connection's reader does with one receive buffer (store and ticker aside);
    the bytes the session wrote meanwhile."""
    session.data_received(data)
    flushes.wake_dirty(skip=session.outbox)
    session.end_batch()
    return _sent(session)


#: basic.ack on channel 1 (frame head, class/method, tag, multiple=0, frame end).
_ACK_FRAME = struct.Struct(">BHIHHQBB")


def _session_e2e(n: int, backlog: int, size: int = 16) -> int:
    """A publisher and a consumer session (prefetch 100, one basic.ack per message, as
    ampbench sends them), 50 messages per receive buffer each way.  With ``backlog`` the
    queue first holds that many messages, so each ack dispatches one from the queue (the
    steady state of ampbench's e2e, whose publisher runs ahead); without, each publish is
    delivered at once."""
    from amqplite.protocol import methods
    from amqplite.protocol.frames import encode_method_frame

    batch = min(50, (256 << 10) // (size + 64))  # (what one receive buffer holds)
    n = max(batch, n - n % batch)
    broker, flushes = _session_broker()
    producer, consumer = _session(broker, flushes), _session(broker, flushes)
    _batch(
        consumer,
        encode_method_frame(1, methods.QueueDeclare(queue="bench"))
        + encode_method_frame(1, methods.BasicQos(0, 100, False))
        + encode_method_frame(1, methods.BasicConsume(queue="bench", consumer_tag="ctag")),
        flushes,
    )
    publishes = _publish_bytes(size) * batch
    for _ in range(backlog // batch):
        _batch(producer, publishes, flushes)
    _sent(consumer)
    pack = _ACK_FRAME.pack
    acks = [
        b"".join(pack(1, 1, 13, 60, 80, tag, 0, 0xCE) for tag in range(i, i + batch))
        for i in range(1, n + 1, batch)
    ]
    delivered = 0
    start = time.perf_counter_ns()
    for ack in acks:
        _batch(producer, publishes, flushes)
        delivered += _batch(consumer, ack, flushes)  # deliveries, and what the acks freed
    elapsed = time.perf_counter_ns() - start
    one = len(encode_deliver_16b_frames()) + size - 16
    unacked = len(consumer.channels[1].broker.unacked)
    if delivered != n * one or unacked != min(backlog, 100):
        raise RuntimeError(f"delivered {delivered // one} of {n}, {unacked} left unacked")
    return elapsed


def bench_session_e2e_16b(n: int) -> int:
    return _session_e2e(n, 0)


def bench_session_e2e_16k(n: int) -> int:
    """Guards the delivery of large one-frame bodies: templates, then the body spliced."""
    return _session_e2e(n, 0, 16 << 10)


def bench_session_e2e_backlog_16b(n: int) -> int:
    return _session_e2e(n, 1000)


def encode_deliver_16b_frames() -> bytes:
    """The frames of one 16 B delivery to the session bench's consumer (to count them)."""
    from amqplite.message import BasicProperties, Message
    from amqplite.protocol.frames import encode_deliver

    msg = Message("", "bench", BasicProperties(delivery_mode=1), b"x" * 16)
    return encode_deliver(1, "ctag", 1, False, "", "bench", msg, FRAME_MAX)


def bench_session_publish_16b(n: int) -> int:
    """Publishes into a queue nobody consumes, 50 per receive buffer."""
    from amqplite.protocol import methods
    from amqplite.protocol.frames import encode_method_frame

    batch = 50
    rounds = max(1, n // batch)
    broker, flushes = _session_broker()
    producer = _session(broker, flushes)
    _batch(producer, encode_method_frame(1, methods.QueueDeclare(queue="bench")), flushes)
    publishes = _publish_bytes(16) * batch
    start = time.perf_counter_ns()
    for _ in range(rounds):
        _batch(producer, publishes, flushes)
    elapsed = time.perf_counter_ns() - start
    queued = broker.get_vhost("/").queues["bench"].message_count
    if queued != rounds * batch:
        raise RuntimeError(f"queued {queued} of {rounds * batch}")
    return elapsed * n // (rounds * batch)


def bench_session_stream_publish_16b(n: int) -> int:
    """Publishes with confirms to a stream (in memory), 500 per receive buffer: guards the
    run path (``repeated_contents`` -> ``StreamQueue.publish_repeated``), one chunk per
    buffer, one multiple ack per buffer."""
    from amqplite.protocol import methods
    from amqplite.protocol.frames import encode_method_frame

    batch = 500
    rounds = max(1, n // batch)
    broker, flushes = _session_broker()
    producer = _session(broker, flushes)
    _batch(
        producer,
        encode_method_frame(
            1,
            methods.QueueDeclare(queue="bench", durable=True, arguments={"x-queue-type": "stream"}),
        )
        + encode_method_frame(1, methods.ConfirmSelect()),
        flushes,
    )
    publishes = _publish_bytes(16) * batch
    start = time.perf_counter_ns()
    for _ in range(rounds):
        _batch(producer, publishes, flushes)
    elapsed = time.perf_counter_ns() - start
    stored = broker.get_vhost("/").queues["bench"].message_count
    if stored != rounds * batch or producer.channels[1].confirmed != rounds * batch:
        raise RuntimeError(f"stored {stored} of {rounds * batch}")
    return elapsed * n // (rounds * batch)


def _stream_session(broker: Any, flushes: Any, offset: str) -> Any:
    """A consumer session on stream 'bench' (declared here), prefetch 1000, reading from
    ``offset``."""
    from amqplite.protocol import methods
    from amqplite.protocol.frames import encode_method_frame

    consumer = _session(broker, flushes)
    declare = methods.QueueDeclare(
        queue="bench", durable=True, arguments={"x-queue-type": "stream"}
    )
    consume = methods.BasicConsume(
        queue="bench", consumer_tag="ctag", arguments={"x-stream-offset": offset}
    )
    _batch(
        consumer,
        encode_method_frame(1, declare) + encode_method_frame(1, methods.BasicQos(0, 1000, False)),
        flushes,
    )
    _batch(consumer, encode_method_frame(1, consume), flushes)
    return consumer


def _stream_ack(tag: int) -> bytes:
    """basic.ack multiple=1 of ``tag`` on channel 1 (one per receive buffer, as the bench)."""
    return _ACK_FRAME.pack(1, 1, 13, 60, 80, tag, 1, 0xCE)


def _stream_drain(broker: Any, consumer: Any, flushes: Any) -> int:
    """Ack what the consumer was given until nothing more comes (the broker's ticker runs
    when a reader yielded); how many deliveries there were."""
    stats = broker.stats  # only this consumer is given anything: its tags are 1..delivered
    acked = 0
    while True:
        delivered = stats.delivered
        if delivered != acked:
            _batch(consumer, _stream_ack(delivered), flushes)
            acked = delivered
        deadline = broker.next_deadline()
        while deadline is not None and deadline <= broker.clock():
            broker.tick()
            deadline = broker.next_deadline()
        _sent(consumer)
        if stats.delivered == acked:
            return acked


def bench_session_stream_catchup_16b(n: int) -> int:
    """A consumer reads ``n`` messages of a stream (on a FileStore) from ``first``: chunks
    of 1,000 as the group commit writes them, read from the file and decoded (more chunks
    than the log keeps decoded), delivered, and acked with one multiple-ack per batch."""
    return _with_file_store(lambda store: _stream_catchup(n, store))


def _stream_catchup(n: int, store: Any, read: bool = True) -> int:
    """(``read=False``: only the fill, for instruction counts of the read by difference.)"""
    from amqplite.message import BasicProperties, Message
    from amqplite.protocol import methods
    from amqplite.protocol.frames import encode_method_frame
    from amqplite.protocol.properties import encode_properties

    broker, flushes = _session_broker(store)
    consumer = _stream_session(broker, flushes, "next")
    _batch(consumer, encode_method_frame(1, methods.BasicCancel("ctag")), flushes)
    queue = broker.get_vhost("/").queues["bench"]
    props = BasicProperties(delivery_mode=1)
    message = Message("", "bench", props, b"x" * 16, encode_properties(props))
    log, wire, now = queue.log, broker.stream_wire, time.time()
    for offset in range(n):
        stored = Message("", "bench", props, message.body, wire.with_offset(message, offset))
        log.add(now, stored)
        if offset % 1000 == 999:
            log.flush()
    log.flush()
    if not read:
        return 0
    consume = methods.BasicConsume(
        queue="bench", consumer_tag="c2", arguments={"x-stream-offset": "first"}
    )
    start = time.perf_counter_ns()
    _batch(consumer, encode_method_frame(1, consume), flushes)
    total = _stream_drain(broker, consumer, flushes)
    elapsed = time.perf_counter_ns() - start
    if total != n:
        raise RuntimeError(f"delivered {total} of {n}")
    return elapsed


def bench_session_stream_tail_16b(n: int) -> int:
    """A publisher session publishes to a stream (on a FileStore, written at the end of
    each batch as the server does), 100 per receive buffer, while a consumer at the end
    (prefetch 1000) receives and acks each batch."""
    return _with_file_store(lambda store: _stream_tail(n, store))


def _stream_tail(n: int, store: Any) -> int:
    batch = 100
    n = max(batch, n - n % batch)
    broker, flushes = _session_broker(store)
    consumer = _stream_session(broker, flushes, "next")
    producer = _session(broker, flushes)
    channel = consumer.channels[1].broker
    stats = broker.stats  # only this consumer is given anything: its tags are 1..delivered
    publishes = _publish_bytes(16) * batch
    start = time.perf_counter_ns()
    for _ in range(n // batch):
        _batch(producer, publishes, flushes)
        store.flush()
        _sent(consumer)
        _batch(consumer, _stream_ack(stats.delivered), flushes)
    elapsed = time.perf_counter_ns() - start
    if stats.delivered != n or channel.unacked:
        raise RuntimeError(f"delivered {stats.delivered} of {n}")
    return elapsed


def _with_file_store(run: Callable[[Any], int]) -> int:
    """``run(store)`` on a fresh FileStore in a scratch directory."""
    from amqplite.store.filestore import FileStore

    path = tempfile.mkdtemp(prefix="amqplite-micro-store-")
    try:
        store = FileStore.open(path)
        store.recover()
        try:
            return run(store)
        finally:
            store.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _persistent_message(size: int = 1024) -> Any:
    from amqplite.message import BasicProperties, Message

    # As the server stores it: with the publisher's wire-encoded properties attached.
    properties = BasicProperties(content_type="application/octet-stream", delivery_mode=2)
    raw = b"\x90\x00\x18application/octet-stream\x02"
    return Message("amq.direct", "bench", properties, b"x" * size, raw)


def bench_store_append_16b(n: int) -> int:
    message = _persistent_message(16)

    def run(store: Any) -> int:
        append = store.append
        queue = [STORE_QUEUE]
        start = time.perf_counter_ns()
        for i in range(n):
            append(message, queue, 1_700_000_000.0 + i)
        return time.perf_counter_ns() - start

    return _with_file_store(run)


def bench_store_recover_16b(n: int) -> int:
    """Recovery as a restart after a clean stop does it (what ``amqplite bench restart``
    times), without the broker's part: the store's lists of recovered messages."""
    from amqplite.store.filestore import FileStore

    message = _persistent_message(16)
    queues = [[("/", f"bench{i}")] for i in range(100)]
    path = tempfile.mkdtemp(prefix="amqplite-micro-store-")
    try:
        store = FileStore.open(path)
        store.recover()
        for i in range(n):
            store.append(message, queues[i % 100], 1_700_000_000.0 + i)
        store.close()
        store = FileStore.open(path)
        start = time.perf_counter_ns()
        state = store.recover(load_bodies=False)
        elapsed = time.perf_counter_ns() - start
        store.close()
        if sum(len(entries) for entries in state.queues.values()) != n:
            raise RuntimeError("recovered the wrong number of messages")
        return elapsed
    finally:
        shutil.rmtree(path, ignore_errors=True)


def bench_store_append_1k(n: int) -> int:
    message = _persistent_message()

    def run(store: Any) -> int:
        append = store.append
        start = time.perf_counter_ns()
        for _ in range(n):
            append(message, [STORE_QUEUE])
        return time.perf_counter_ns() - start

    return _with_file_store(run)


def bench_store_remove(n: int) -> int:
    message = _persistent_message()

    def run(store: Any) -> int:
        refs = [store.append(message, [STORE_QUEUE]) for _ in range(n)]
        remove = store.remove
        start = time.perf_counter_ns()
        for ref in refs:
            remove(STORE_QUEUE, ref)
        return time.perf_counter_ns() - start

    return _with_file_store(run)


# -- running -------------------------------------------------------------------------------


def run_suite(iterations: int = DEFAULT_ITERATIONS, repeat: int = 3) -> list[dict[str, Any]]:
    """Run every benchmark; one dict per benchmark: name, ns_per_op, ops_per_s, error."""
    results: list[dict[str, Any]] = []
    for name, weight, what in BENCHMARKS:
        fn: Callable[[int], int] = globals()[f"bench_{name}"]
        n = max(1, int(iterations * weight))
        best: float | None = None
        error: str | None = None
        for _ in range(max(1, repeat)):
            gc.collect()
            try:
                ns = fn(n) / n
            except Exception as exc:  # an API the measured tree lacks: report, go on
                error = f"{type(exc).__name__}: {exc}"
                break
            best = ns if best is None else min(best, ns)
        results.append(
            {
                "name": name,
                "what": what,
                "iterations": n,
                "ns_per_op": None if error else best,
                "ops_per_s": None if error or not best else 1e9 / best,
                "error": error,
            }
        )
    return results


# -- scaling: routing cost against the number of bindings ---------------------------------

#: Binding counts for ``--scaling``.
SCALING_BINDINGS = (10, 1_000, 100_000)


def _time_per_op(fn: Callable[[str], object], keys: list[str], n: int, repeat: int) -> float:
    """Best ns per call of ``fn(key)`` over ``repeat`` rounds of about ``n`` calls."""
    loops = max(1, n // len(keys))
    best = float("inf")
    for _ in range(max(1, repeat)):
        gc.collect()
        start = time.perf_counter_ns()
        for _ in range(loops):
            for key in keys:
                fn(key)
        best = min(best, (time.perf_counter_ns() - start) / (loops * len(keys)))
    return best


def run_scaling(
    bindings: tuple[int, ...] = SCALING_BINDINGS, iterations: int = 200_000, repeat: int = 3
) -> list[dict[str, Any]]:
    """Routing cost with few and many bindings, the route cache left out.

    The wire benchmark (``amqplite bench topic --bindings N``) publishes N distinct keys,
    so it compares cache hits at small N with cache misses at large N.  Here every size
    routes the same number (1,000) of distinct *matching* keys through the bare topic trie
    (half ``word.*`` patterns, half ``#.word`` patterns) and the direct router, so the
    figures show what routing itself costs as bindings grow.
    """
    from amqplite.broker.exchanges.direct import DirectRouter
    from amqplite.broker.topic_trie import TopicTrie

    results: list[dict[str, Any]] = []
    for count in bindings:
        trie: TopicTrie[int] = TopicTrie()
        direct = DirectRouter()
        for i in range(count):
            trie.add(f"bench.b{i}.*" if i % 2 == 0 else f"#.evt{i}", i)
            direct.bind(f"key.{i}", {}, i)
        step = max(1, count // 1000)
        sample = range(0, count, step)
        topic_keys = [f"bench.b{i}.x" if i % 2 == 0 else f"a.b.evt{i}" for i in sample]
        direct_keys = [f"key.{i}" for i in sample]
        for key in topic_keys:  # every key must match exactly its own binding
            if len(trie.match(key)) != 1:
                raise RuntimeError(f"topic key {key!r} does not match exactly one binding")

        def direct_route(key: str, router: DirectRouter = direct) -> object:
            return router.route(key, None)

        results.append(
            {
                "bindings": count,
                "topic_trie_ns": _time_per_op(trie.match, topic_keys, iterations, repeat),
                "direct_ns": _time_per_op(direct_route, direct_keys, iterations, repeat),
            }
        )
    base = results[0]
    for row in results:
        row["topic_ratio"] = row["topic_trie_ns"] / base["topic_trie_ns"]
        row["direct_ratio"] = row["direct_ns"] / base["direct_ns"]
    return results


def _scaling_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'bindings':>9} {'topic ns':>9} {'x first':>8} {'direct ns':>10} {'x first':>8}"]
    for r in rows:
        lines.append(
            f"{r['bindings']:>9,} {r['topic_trie_ns']:>9.0f} {r['topic_ratio']:>7.2f}x "
            f"{r['direct_ns']:>10.0f} {r['direct_ratio']:>7.2f}x"
        )
    return "\n".join(lines)


def _table(results: list[dict[str, Any]]) -> str:
    lines = [f"{'benchmark':28} {'ns/op':>10} {'ops/s':>12}  what"]
    for r in results:
        if r["error"]:
            lines.append(f"{r['name']:28} {'-':>10} {'-':>12}  ERROR {r['error']}")
        else:
            lines.append(
                f"{r['name']:28} {r['ns_per_op']:10.0f} {r['ops_per_s']:12,.0f}  {r['what']}"
            )
    return "\n".join(lines)


def _run_tree(tree: Path | None, iterations: int, repeat: int) -> list[dict[str, Any]]:
    """Run this file in a subprocess against the amqplite in ``tree`` (None: this tree)."""
    root = Path(__file__).resolve().parents[2] if tree is None else tree
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root)
    # -P: do not put this file's directory on sys.path; cwd=root: imports come from there.
    proc = subprocess.run(
        [
            sys.executable,
            "-P",
            str(Path(__file__).resolve()),
            "--json",
            "--iterations",
            str(iterations),
            "--repeat",
            str(repeat),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    # Exit status 1 with JSON out: some benchmark reported an error (an API the tree
    # lacks); the comparison shows those as n/a.
    if proc.returncode != 0 and not proc.stdout.startswith("{"):
        raise RuntimeError(f"micro suite failed in {root}:\n{proc.stderr}")
    data: list[dict[str, Any]] = json.loads(proc.stdout)["results"]
    return data


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def compare_ref(ref: str, iterations: int, repeat: int, rounds: int = 2) -> dict[str, Any]:
    """Run the suite on this tree and on ``ref`` (alternating ``rounds`` times); ratios."""
    here = Path(__file__).resolve().parents[2]
    top = Path(_git("rev-parse", "--show-toplevel", cwd=here))
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}", cwd=top)
    tmp = Path(tempfile.mkdtemp(prefix="amqplite-micro-"))
    worktree = tmp / "tree"
    _git("worktree", "add", "--detach", str(worktree), commit, cwd=top)
    try:
        best_cur: dict[str, float] = {}
        best_ref: dict[str, float] = {}
        errors: dict[str, str] = {}
        for _ in range(rounds):
            for tree, best in ((None, best_cur), (worktree, best_ref)):
                for r in _run_tree(tree, iterations, repeat):
                    if r["error"]:
                        errors[r["name"]] = r["error"]
                    elif r["name"] not in best or r["ns_per_op"] < best[r["name"]]:
                        best[r["name"]] = r["ns_per_op"]
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(worktree)],
            cwd=top,
            capture_output=True,
            check=False,
        )
        shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for name, _weight, _what in BENCHMARKS:
        cur, old = best_cur.get(name), best_ref.get(name)
        rows.append(
            {
                "name": name,
                "current_ns": cur,
                "ref_ns": old,
                "ratio": cur / old if cur and old else None,
                "error": errors.get(name),
            }
        )
    return {"ref": ref, "commit": commit, "rows": rows}


def _comparison_table(cmp: dict[str, Any]) -> str:
    lines = [
        f"current / {cmp['ref']} ({cmp['commit'][:10]}): ratio > 1.00 means slower now",
        f"{'benchmark':28} {'current ns':>11} {'ref ns':>9} {'ratio':>7}",
    ]
    for r in cmp["rows"]:
        cur = f"{r['current_ns']:.0f}" if r["current_ns"] else "-"
        old = f"{r['ref_ns']:.0f}" if r["ref_ns"] else "-"
        ratio = f"{r['ratio']:.2f}" if r["ratio"] else "n/a"
        lines.append(f"{r['name']:28} {cur:>11} {old:>9} {ratio:>7}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m amqplite.bench.micro",
        description="Time amqplite's hot functions in-process.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--iterations",
        type=int,
        default=DEFAULT_ITERATIONS,
        help=f"base operations per benchmark (default {DEFAULT_ITERATIONS})",
    )
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; best is kept")
    parser.add_argument(
        "--compare-ref",
        metavar="GIT_REF",
        help="also run on GIT_REF (a temporary git worktree) and print current/ref ratios",
    )
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="routing cost at 10 / 1,000 / 100,000 bindings (route cache left out)",
    )
    args = parser.parse_args(argv)
    if args.scaling:
        rows = run_scaling(iterations=args.iterations, repeat=args.repeat)
        out = json.dumps({"tool": "amqplite-micro", "scaling": rows}) if args.json else None
        sys.stdout.write((out or _scaling_table(rows)) + "\n")
        return 0
    if args.compare_ref:
        cmp = compare_ref(args.compare_ref, args.iterations, args.repeat)
        if args.json:
            sys.stdout.write(json.dumps({"tool": "amqplite-micro", "comparison": cmp}) + "\n")
        else:
            sys.stdout.write(_comparison_table(cmp) + "\n")
        return 0
    results = run_suite(args.iterations, args.repeat)
    if args.json:
        doc = {
            "tool": "amqplite-micro",
            "python": sys.version.split()[0],
            "results": results,
        }
        sys.stdout.write(json.dumps(doc) + "\n")
    else:
        sys.stdout.write(_table(results) + "\n")
    return 0 if not any(r["error"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
