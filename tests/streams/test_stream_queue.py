"""Stream queues in the broker core: declare rules, consuming from offsets, credit-only
acks, filters, tracking, retention on the virtual clock, restart (real stores, real files)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from sinks import RecordingSink

from amqplite.broker import Broker, Channel, FakeClock
from amqplite.errors import AMQPConnectionError, ChannelError, ReplyCode
from amqplite.message import BasicProperties, Long, Message
from amqplite.store import FileStore

STREAM = {"x-queue-type": "stream"}
T0 = 1_700_000_000.0


class Node:
    """A broker on a fake clock, optionally on a file store it can restart on."""

    def __init__(self, path: Path | None = None) -> None:
        self.clock = FakeClock(T0)
        self.path = path
        self.store: Any = None
        self.broker = self._start()
        self.n = 0

    def _start(self) -> Broker:
        if self.path is not None:
            self.store = FileStore.open(self.path)
        broker = Broker(self.clock, store=self.store)
        if self.store is not None:
            broker.recover()
        if "/" not in broker.vhosts:
            broker.add_vhost("/")
        return broker

    def restart(self) -> None:
        self.store.close()
        self.broker = self._start()

    def channel(self, prefetch: int = 100) -> tuple[Channel, RecordingSink]:
        self.n += 1
        sink = RecordingSink()
        ch = self.broker.open_connection("/").open_channel(self.n, sink)
        if prefetch:
            ch.qos(prefetch)
        return ch, sink

    def declare(self, name: str = "s", **args: Any) -> None:
        ch, _ = self.channel()
        ch.declare_queue(name, durable=True, arguments={**STREAM, **args})

    def publish(self, n: int, name: str = "s", start: int = 0, **props: Any) -> None:
        ch, _ = self.channel()
        for i in range(start, start + n):
            body = f"m{i}".encode()
            ch.publish("", name, Message("", name, BasicProperties(**props), body))
        if self.store is not None:
            self.store.flush()

    def consume(
        self, prefetch: int = 100, name: str = "s", **args: Any
    ) -> tuple[Channel, RecordingSink]:
        ch, sink = self.channel(prefetch)
        ch.consume(name, "c", arguments=args)
        return ch, sink


@pytest.fixture
def node() -> Node:
    return Node()


@pytest.fixture
def disk_node(tmp_path: Path) -> Any:
    n = Node(tmp_path / "data")
    yield n
    n.store.close()


def offsets(sink: RecordingSink) -> list[int]:
    return [d[5].properties.headers["x-stream-offset"] for d in sink.deliveries]


def reply(exc: pytest.ExceptionInfo[Any]) -> tuple[int, str]:
    """The reply code and text as on the wire, minus the code name RabbitMQ puts first."""
    code, text = exc.value.reply_code, exc.value.reply_text
    prefix = f"{ReplyCode(code).name} - "
    assert text.startswith(prefix)
    return code, text[len(prefix) :]


# -- declaring -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({}, "invalid property 'non-durable' for queue 'q' in vhost '/'"),
        (
            {"durable": True, "exclusive": True},
            "invalid property 'exclusive-owner' for queue 'q' in vhost '/'",
        ),
        (
            {"durable": True, "auto_delete": True},
            "invalid property 'auto-delete' for queue 'q' in vhost '/'",
        ),
        (
            {"exclusive": True, "auto_delete": True},
            "invalid property 'auto-delete' for queue 'q' in vhost '/'",
        ),
    ],
)
def test_declare_refuses_properties_as_rabbitmq(
    node: Node, kwargs: dict[str, Any], text: str
) -> None:
    ch, _ = node.channel()
    with pytest.raises(ChannelError) as exc:
        ch.declare_queue("q", arguments=STREAM, **kwargs)
    assert reply(exc) == (ReplyCode.PRECONDITION_FAILED, text)
    assert "q" not in node.broker.vhosts["/"].queues


def test_declare_refuses_server_named_streams(node: Node) -> None:
    ch, _ = node.channel()
    with pytest.raises(ChannelError) as exc:
        ch.declare_queue("", durable=True, arguments=STREAM)
    assert reply(exc) == (
        ReplyCode.PRECONDITION_FAILED,
        "Cannot declare a server-named queue for type rabbit_stream_queue",
    )


@pytest.mark.parametrize(
    ("args", "detail"),
    [
        (
            {"x-message-ttl": 5},
            "invalid arg 'x-message-ttl' for queue 'q' in vhost '/' of queue type rabbit_stream_queue",
        ),
        (
            {"x-max-length": 5},
            "invalid arg 'x-max-length' for queue 'q' in vhost '/' of queue type rabbit_stream_queue",
        ),
        (
            {"x-dead-letter-exchange": "x"},
            "invalid arg 'x-dead-letter-exchange' for queue 'q' in vhost '/' of queue type rabbit_stream_queue",
        ),
        (
            {"x-overflow": "drop-head"},
            "invalid arg 'x-overflow' for queue 'q' in vhost '/' of queue type rabbit_stream_queue",
        ),
        (
            {"x-max-priority": 3},
            "invalid arg 'x-max-priority' for queue 'q' in vhost '/' of queue type rabbit_stream_queue",
        ),
        (
            {"x-max-age": "7d"},
            "invalid arg 'x-max-age' for queue 'q' in vhost '/': invalid_max_age",
        ),
        (
            {"x-max-age": "0D"},
            "invalid arg 'x-max-age' for queue 'q' in vhost '/': invalid_max_age",
        ),
        (
            {"x-max-age": "1.5h"},
            "invalid arg 'x-max-age' for queue 'q' in vhost '/': invalid_max_age",
        ),
        (
            {"x-max-age": 5},
            "invalid arg 'x-max-age' for queue 'q' in vhost '/': {unacceptable_type,signedint}",
        ),
        (
            {"x-max-age": "7x", "x-message-ttl": 5},
            "invalid arg 'x-max-age' for queue 'q' in vhost '/': invalid_max_age",
        ),
        (
            {"x-max-length-bytes": -1},
            "invalid arg 'x-max-length-bytes' for queue 'q' in vhost '/': {value_negative,-1}",
        ),
        (
            {"x-stream-max-segment-size-bytes": -5},
            "invalid arg 'x-stream-max-segment-size-bytes' for queue 'q' in vhost '/': {value_negative,-5}",
        ),
        (
            {"x-initial-cluster-size": 0},
            "invalid arg 'x-initial-cluster-size' for queue 'q' in vhost '/': {value_zero,0}",
        ),
    ],
)
def test_declare_refuses_bad_and_foreign_arguments(
    node: Node, args: dict[str, Any], detail: str
) -> None:
    ch, _ = node.channel()
    with pytest.raises(ChannelError) as exc:
        ch.declare_queue("q", durable=True, arguments={**STREAM, **args})
    assert reply(exc) == (ReplyCode.PRECONDITION_FAILED, detail)


def test_declared_stream_shows_the_documented_interface(node: Node) -> None:
    node.declare("s", **{"x-max-age": "7D", "x-max-length-bytes": 10**9})
    q: Any = node.broker.vhosts["/"].queues["s"]
    assert (q.queue_type, q.args.queue_type, q.durable, q.exclusive, q.auto_delete) == (
        "stream",
        "stream",
        True,
        False,
        False,
    )
    assert q.args.max_age == 7 * 86400 and q.args.segment_max_age == 3600
    info = q.info()
    assert (info.first_offset, info.last_offset, info.messages) == (None, None, 0)
    node.publish(3)
    info = q.info()
    assert (info.first_offset, info.last_offset, info.messages, info.segments) == (0, 2, 3, 1)
    assert info.first_timestamp == info.last_timestamp == T0
    assert q.message_count == 3 and q.read(1, 5)[0].message.body == b"m1"
    ch, _ = node.channel()
    ok = ch.declare_queue(
        "s", durable=True, arguments={**STREAM, "x-max-age": "7D", "x-max-length-bytes": 10**9}
    )
    assert ok.message_count == 3
    with pytest.raises(ChannelError, match="inequivalent arg 'x-max-age'"):
        ch.declare_queue(
            "s", durable=True, arguments={**STREAM, "x-max-age": "8D", "x-max-length-bytes": 10**9}
        )


# -- consuming ------------------------------------------------------------------------------


def test_consumer_needs_prefetch_and_manual_acks(node: Node) -> None:
    node.declare()
    ch, _ = node.channel(prefetch=0)
    with pytest.raises(ChannelError) as exc:
        ch.consume("s", "c")
    assert reply(exc) == (
        ReplyCode.PRECONDITION_FAILED,
        "consumer prefetch count is not set for 'queue 's' in vhost '/''",
    )
    ch, _ = node.channel()
    with pytest.raises(AMQPConnectionError) as cexc:
        ch.consume("s", "c", no_ack=True)
    assert reply(cexc) == (
        ReplyCode.NOT_IMPLEMENTED,
        "automatic acknowledgement not supported by stream queues queue 's' in vhost '/'",
    )
    with pytest.raises(AMQPConnectionError) as cexc:
        ch.get("s")
    assert reply(cexc) == (
        ReplyCode.NOT_IMPLEMENTED,
        "basic.get not supported by stream queues queue 's' in vhost '/'",
    )
    with pytest.raises(AMQPConnectionError) as cexc:
        ch.purge_queue("s")
    assert reply(cexc) == (
        ReplyCode.NOT_IMPLEMENTED,
        "queue.purge not supported by stream queues queue 's' in vhost '/'",
    )
    assert node.broker.vhosts["/"].queues["s"].consumers == []


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (None, []),
        ("next", []),
        ("first", list(range(10))),
        ("last", [6, 7, 8, 9]),  # the start of the newest chunk, as RabbitMQ
        (7, [7, 8, 9]),
        (-3, list(range(10))),
        (1000, []),
    ],
)
def test_start_offsets(node: Node, offset: Any, expected: list[int]) -> None:
    node.declare()
    node.publish(6)
    node.publish(4, start=6)  # a second chunk when the store flushes; no store: one per message
    args = {} if offset is None else {"x-stream-offset": offset}
    _, sink = node.consume(**args)
    if offset == "last":
        expected = [9]  # without a store every publish is its own chunk
    assert offsets(sink) == expected


def test_timestamps_seek_exactly_and_intervals_count_back_from_now(node: Node) -> None:
    node.declare()
    for i in range(10):
        node.publish(1, start=i)
        node.clock.advance(0.25)  # message i at T0 + i/4
    now = node.clock()
    cases = {
        datetime.datetime.fromtimestamp(T0 + 1, datetime.UTC): 4,  # an AMQP timestamp (s)
        T0 + 1.6: 7,  # a float: millisecond precision, lands inside second 1
        "2023-11-14T22:13:21.510+00:00": 7,  # ISO 8601 (T0 = 22:13:20Z)
        "1s": 6,  # now - 1 s = T0 + 1.5
        "1h": 0,
    }
    assert now == T0 + 2.5
    for value, first in cases.items():
        _, sink = node.consume(**{"x-stream-offset": value})
        assert offsets(sink)[0] == first, value


def test_every_delivery_carries_its_offset_and_is_never_redelivered(node: Node) -> None:
    node.declare()
    node.publish(3, headers={"app": 1})
    _, sink = node.consume(**{"x-stream-offset": "first"})
    headers = [d[5].properties.headers for d in sink.deliveries]
    assert headers == [{"app": 1, "x-stream-offset": i} for i in range(3)]
    assert all(type(h["x-stream-offset"]) is Long for h in headers)
    assert [d[2] for d in sink.deliveries] == [False] * 3


def test_acks_nacks_rejects_only_return_credit(node: Node) -> None:
    node.declare()
    node.publish(10)
    ch, sink = node.consume(prefetch=3, **{"x-stream-offset": "first"})
    assert offsets(sink) == [0, 1, 2]
    ch.ack(1)
    ch.nack(2, requeue=True)
    ch.reject(3, requeue=False)
    assert offsets(sink) == [0, 1, 2, 3, 4, 5]
    assert [d[2] for d in sink.deliveries] == [False] * 6  # nothing came back redelivered
    ch.close()
    _, again = node.consume(**{"x-stream-offset": "first"})
    assert offsets(again) == list(range(10))  # nothing was removed or dead-lettered


def test_a_run_of_deliveries_is_acked_by_tag_and_unknown_tags_are_refused(node: Node) -> None:
    node.declare()
    node.publish(10)
    ch, sink = node.consume(prefetch=4, **{"x-stream-offset": "first"})
    assert sink.tags == [1, 2, 3, 4] and offsets(sink) == [0, 1, 2, 3]
    ch.ack(3)  # out of order, in the middle of the run
    ch.ack(2, multiple=True)
    assert offsets(sink) == [0, 1, 2, 3, 4, 5, 6]
    assert list(ch.unacked) == [4, 5, 6, 7]
    ch.ack(5)
    ch.ack(6, multiple=True)  # over a gap: 4 and 6
    assert list(ch.unacked) == [7, 8, 9, 10]
    assert offsets(sink) == list(range(10))
    for tag in (2, 3):
        with pytest.raises(ChannelError) as exc:
            ch.ack(tag)
        assert reply(exc) == (ReplyCode.PRECONDITION_FAILED, f"unknown delivery tag {tag}")


def test_a_rolled_back_transaction_gives_a_run_s_tags_back(node: Node) -> None:
    node.declare()
    node.publish(10)
    ch, sink = node.consume(prefetch=5, **{"x-stream-offset": "first"})
    ch.tx_select()
    ch.ack(3, multiple=True)
    ch.nack(5)
    assert list(ch.unacked) == [4]
    ch.tx_rollback()
    assert list(ch.unacked) == [1, 2, 3, 4, 5]
    assert offsets(sink) == [0, 1, 2, 3, 4]  # no credit came back
    ch.ack(2, multiple=True)
    ch.tx_commit()
    assert list(ch.unacked) == [3, 4, 5, 6, 7]
    assert offsets(sink) == list(range(7))


class FillingSink(RecordingSink):
    """A connection whose output is full after ``room`` more deliveries."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def deliver(self, *args: Any) -> None:
        super().deliver(*args)
        self.room -= 1
        self.writable = self.room > 0


@pytest.mark.parametrize("filtered", [False, True])
def test_a_reader_stopped_by_a_full_connection_goes_on_where_it_stopped(
    node: Node, filtered: bool
) -> None:
    node.declare()
    ch, _ = node.channel()
    for i in range(30):
        headers = {"x-stream-filter-value": "odd" if i % 2 else "even"}
        ch.publish("", "s", Message("", "s", BasicProperties(headers=headers), f"{i}".encode()))
    sink = FillingSink(3)
    consumer_ch = node.broker.open_connection("/").open_channel(99, sink)
    consumer_ch.qos(100)
    args: dict[str, Any] = {"x-stream-offset": "first"}
    if filtered:
        args["x-stream-filter"] = "odd"
    consumer_ch.consume("s", "c", arguments=args)
    expected = list(range(1, 30, 2)) if filtered else list(range(30))
    assert offsets(sink) == expected[:3]
    sink.room = 4
    sink.writable = True
    consumer_ch.resume()
    assert offsets(sink) == expected[:7]
    sink.room = 100
    sink.writable = True
    consumer_ch.resume()
    assert offsets(sink) == expected
    assert sink.tags == list(range(1, len(expected) + 1))


def test_a_reader_at_the_end_gets_an_input_buffer_s_publishes_as_one_run(disk_node: Node) -> None:
    node = disk_node
    node.declare()
    _, sink = node.consume()  # at the end
    broker = node.broker
    q: Any = broker.vhosts["/"].queues["s"]
    like = Message("", "s", BasicProperties(), b"")
    for round_ in range(3):
        broker.begin_batch()  # what the server does around one receive buffer
        q.publish(Message("", "s", BasicProperties(), b"one"), node.clock())
        q.publish_repeated(like, [b"a", b"b", b"c"], node.clock())
        assert len(sink.deliveries) == 4 * round_  # nothing before the buffer's end
        broker.end_batch()
        assert offsets(sink) == list(range(4 * (round_ + 1)))
        assert sink.bodies[-4:] == [b"one", b"a", b"b", b"c"]
        if round_ == 1:
            node.store.flush()  # the next buffer starts a new chunk


def test_readers_are_independent_and_wait_at_the_end(node: Node) -> None:
    node.declare()
    node.publish(5)
    ch_a, a = node.consume(prefetch=2, **{"x-stream-offset": "first"})
    _, b = node.consume(**{"x-stream-offset": 3})
    _, live = node.consume()
    assert (offsets(a), offsets(b), offsets(live)) == ([0, 1], [3, 4], [])
    node.publish(2, start=5)
    assert (offsets(a), offsets(b), offsets(live)) == ([0, 1], [3, 4, 5, 6], [5, 6])
    ch_a.ack(2, multiple=True)
    assert offsets(a) == [0, 1, 2, 3]


def test_bad_offset_values_get_rabbitmq_s_406(node: Node) -> None:
    node.declare()
    for value, shown in [
        ("1x", '{longstr,<<"1x">>}'),
        ("0s", '{longstr,<<"0s">>}'),
        ("bogus", '{longstr,<<"bogus">>}'),
        (True, "{bool,true}"),
    ]:
        ch, _ = node.channel()
        with pytest.raises(ChannelError) as exc:
            ch.consume("s", "c", arguments={"x-stream-offset": value})
        assert reply(exc) == (
            ReplyCode.PRECONDITION_FAILED,
            f"invalid arg 'x-stream-offset' for queue 's' in vhost '/': "
            f"{{invalid_stream_offset_arg,{shown}}}",
        )
    assert node.broker.vhosts["/"].queues["s"].consumers == []


# -- filters --------------------------------------------------------------------------------


def test_filters_are_exact_per_message(node: Node) -> None:
    node.declare()
    ch, _ = node.channel()
    values = ["eu", "us", None, "eu", "asia", None, "us"]
    for i, value in enumerate(values):
        headers = {} if value is None else {"x-stream-filter-value": value}
        ch.publish("", "s", Message("", "s", BasicProperties(headers=headers), f"{i}".encode()))
    first = {"x-stream-offset": "first"}
    _, eu = node.consume(**first, **{"x-stream-filter": "eu"})
    _, many = node.consume(**first, **{"x-stream-filter": ["us", "asia"]})
    _, plus = node.consume(**first, **{"x-stream-filter": "eu", "x-stream-match-unfiltered": True})
    assert offsets(eu) == [0, 3]
    assert offsets(many) == [1, 4, 6]
    assert offsets(plus) == [0, 2, 3, 5]


# -- tracking -------------------------------------------------------------------------------


def test_tracking_key_resumes_after_the_highest_fully_acked_offset(node: Node) -> None:
    node.declare()
    node.publish(10)
    track = {"x-stream-offset": "first", "x-stream-tracking-key": "billing"}
    ch, sink = node.consume(prefetch=5, **track)
    assert offsets(sink) == [0, 1, 2, 3, 4]
    for tag in (1, 2, 4, 5):  # offsets 0, 1, 3, 4: offset 2 stays unacked
        ch.ack(tag)
    q: Any = node.broker.vhosts["/"].queues["s"]
    assert q.info().tracking == {"billing": 2}
    ch.close()
    ch, sink = node.consume(prefetch=100, **track)  # x-stream-offset: first is ignored now
    assert offsets(sink)[0] == 2
    ch.ack(0, multiple=True)
    assert q.info().tracking == {"billing": 10}
    _, other = node.consume(**{"x-stream-tracking-key": "audit"})  # unknown key: next
    assert offsets(other) == []


def test_tracked_offsets_and_data_survive_a_restart(disk_node: Node) -> None:
    node = disk_node
    node.declare()
    node.publish(20)
    ch, sink = node.consume(**{"x-stream-offset": "first", "x-stream-tracking-key": "k"})
    ch.ack(12, multiple=True)
    node.store.sync()
    node.restart()
    q: Any = node.broker.vhosts["/"].queues["s"]
    assert (q.info().first_offset, q.info().last_offset, q.info().tracking) == (0, 19, {"k": 12})
    node.publish(1, start=20)
    _, sink = node.consume(**{"x-stream-tracking-key": "k"})
    assert offsets(sink) == list(range(12, 21))
    assert sink.deliveries[-1][5].body == b"m20"


# -- retention on the virtual clock ---------------------------------------------------------


def test_max_age_expires_a_quiet_stream(disk_node: Node) -> None:
    node = disk_node
    node.declare(**{"x-max-age": "60s"})  # segments roll after 6 s
    q: Any = node.broker.vhosts["/"].queues["s"]
    node.publish(1)
    node.clock.advance(30)
    node.broker.tick()  # the active segment is now 30 s old: sealed
    node.publish(1, start=1)  # a new segment
    assert q.info().segments == 2
    node.clock.advance(29)
    node.broker.tick()
    assert q.info().first_offset == 0  # not 60 s old yet
    assert node.broker.next_deadline() is not None
    node.clock.advance(2)
    node.broker.tick()
    assert (q.info().first_offset, q.info().last_offset) == (1, 1)
    node.clock.advance(120)
    node.broker.tick()
    info = q.info()
    assert (info.messages, info.segments, info.first_offset) == (0, 0, None)
    node.publish(1, start=2)
    _, sink = node.consume(**{"x-stream-offset": "first"})
    assert offsets(sink) == [2]  # offsets are never reused


def test_max_length_bytes_drops_whole_oldest_segments(disk_node: Node) -> None:
    node = disk_node
    node.declare(**{"x-max-length-bytes": 3000, "x-stream-max-segment-size-bytes": 1000})
    for i in range(40):
        node.publish(1, start=i)
    q: Any = node.broker.vhosts["/"].queues["s"]
    info = q.info()
    assert info.bytes <= 3000 + 1000 and info.first_offset > 0 and info.last_offset == 39
    _, sink = node.consume(**{"x-stream-offset": 0})
    assert offsets(sink) == list(range(info.first_offset, 40))  # clamped to the first kept


def test_streams_bound_to_durable_exchanges_keep_bindings_and_can_be_deleted(
    disk_node: Node,
) -> None:
    node = disk_node
    node.declare()
    ch, _ = node.channel()
    ch.declare_exchange("events", "topic", durable=True)
    ch.bind_queue("s", "events", "order.#")
    ch.publish("events", "order.new", Message("events", "order.new", BasicProperties(), b"o1"))
    node.store.flush()
    node.restart()
    ch, _ = node.channel()
    ch.publish("events", "order.paid", Message("events", "order.paid", BasicProperties(), b"o2"))
    _, sink = node.consume(**{"x-stream-offset": "first"})
    assert [d[5].body for d in sink.deliveries] == [b"o1", b"o2"]
    assert [(d[3], d[4]) for d in sink.deliveries] == [
        ("events", "order.new"),
        ("events", "order.paid"),
    ]
    assert ch.delete_queue("s") == 2
    assert node.broker.vhosts["/"].exchanges["events"].bindings == {}
    node.restart()
    assert node.broker.vhosts["/"].exchanges["events"].bindings == {}


def test_deleting_a_stream_deletes_its_files(disk_node: Node) -> None:
    node = disk_node
    node.declare()
    node.publish(5)
    ch, _ = node.channel()
    assert ch.delete_queue("s") == 5
    node.restart()
    assert "s" not in node.broker.vhosts["/"].queues
    node.declare()
    assert node.broker.vhosts["/"].queues["s"].message_count == 0
