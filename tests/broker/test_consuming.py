"""Consumers: round robin, priorities, prefetch (per consumer and global), flow control, get."""

from __future__ import annotations

import pytest
from broker_helpers import RecordingSink, World, publish

from amqplite.errors import AMQPConnectionError, ChannelError, ReplyCode


def fill(world: World, queue: str, n: int) -> None:
    for i in range(n):
        publish(world.ch, "", queue, f"m{i}")


def test_messages_are_delivered_in_fifo_order_with_increasing_tags(world: World) -> None:
    world.ch.declare_queue("q")
    fill(world, "q", 3)
    tag = world.ch.consume("q")
    assert tag.startswith("amq.ctag-")
    assert world.sink.bodies == [b"m0", b"m1", b"m2"]
    assert world.sink.tags == [1, 2, 3]
    assert {d[0] for d in world.sink.deliveries} == {tag}
    assert world.sink.deliveries[0][2:5] == (False, "", "q")


def test_consume_ok_callback_runs_before_first_delivery(world: World) -> None:
    world.ch.declare_queue("q")
    fill(world, "q", 1)
    seen: list[int] = []
    world.ch.consume("q", "c", on_registered=lambda tag: seen.append(len(world.sink.deliveries)))
    assert seen == [0]
    assert len(world.sink.deliveries) == 1


def test_consumers_are_served_round_robin(world: World) -> None:
    world.ch.declare_queue("q")
    world.ch.consume("q", "c1")
    world.ch.consume("q", "c2")
    fill(world, "q", 4)
    assert [d[0] for d in world.sink.deliveries] == ["c1", "c2", "c1", "c2"]


def test_higher_priority_consumers_come_first_while_they_have_credit(world: World) -> None:
    world.ch.declare_queue("q")
    low, low_sink = world.channel()
    low.consume("q", "low")
    high, high_sink = world.channel()
    high.qos(2)
    high.consume("q", "high", arguments={"x-priority": 10})
    fill(world, "q", 3)
    assert len(high_sink.deliveries) == 2
    assert low_sink.bodies == [b"m2"]
    high.ack(2, multiple=True)
    publish(world.ch, "", "q", "m3")
    assert high_sink.bodies[-1] == b"m3"


def test_reusing_a_consumer_tag_on_the_channel_is_a_connection_error(world: World) -> None:
    world.ch.declare_queue("q")
    world.ch.consume("q", "c")
    with pytest.raises(AMQPConnectionError) as exc:
        world.ch.consume("q", "c")
    assert exc.value.reply_code == ReplyCode.NOT_ALLOWED


def test_exclusive_consumer_keeps_others_out(world: World) -> None:
    world.ch.declare_queue("q")
    world.ch.consume("q", "c", exclusive=True)
    ch, _ = world.channel()
    with pytest.raises(ChannelError, match="in exclusive use") as exc:
        ch.consume("q", "d")
    assert exc.value.reply_code == ReplyCode.ACCESS_REFUSED
    ch2, _ = world.channel()
    world.ch.cancel("c")
    ch2.consume("q", "e")
    ch3, _ = world.channel()
    with pytest.raises(ChannelError, match="in exclusive use"):
        ch3.consume("q", "f", exclusive=True)


def test_per_consumer_prefetch_applies_to_consumers_created_after_qos(world: World) -> None:
    world.ch.declare_queue("q")
    world.ch.consume("q", "unlimited")
    world.ch.qos(1)
    world.ch.consume("q", "limited")
    fill(world, "q", 6)
    by = [d[0] for d in world.sink.deliveries]
    assert by.count("limited") == 1
    assert by.count("unlimited") == 5


def test_ack_frees_credit_and_delivers_the_next_message(world: World) -> None:
    world.ch.declare_queue("q")
    world.ch.qos(2)
    world.ch.consume("q", "c")
    fill(world, "q", 5)
    assert world.sink.bodies == [b"m0", b"m1"]
    world.ch.ack(1)
    assert world.sink.bodies == [b"m0", b"m1", b"m2"]
    world.ch.ack(3, multiple=True)
    assert world.sink.bodies == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    q = world.vhost.queues["q"]
    assert (q.message_count, q.unacked_count) == (0, 2)


def test_global_prefetch_is_shared_by_the_channels_consumers(world: World) -> None:
    world.ch.declare_queue("a")
    world.ch.declare_queue("b")
    world.ch.qos(3, global_=True)
    world.ch.consume("a", "ca")
    world.ch.consume("b", "cb")
    for i in range(3):
        publish(world.ch, "", "a", f"a{i}")
        publish(world.ch, "", "b", f"b{i}")
    assert len(world.sink.deliveries) == 3
    world.ch.ack(0, multiple=True)
    assert len(world.sink.deliveries) == 6


def test_no_ack_consumers_ignore_prefetch(world: World) -> None:
    world.ch.declare_queue("q")
    world.ch.qos(1)
    world.ch.consume("q", "c", no_ack=True)
    fill(world, "q", 3)
    assert len(world.sink.deliveries) == 3
    q = world.vhost.queues["q"]
    assert (q.message_count, q.unacked_count) == (0, 0)
    assert world.ch.unacked == {}


def test_raising_prefetch_with_qos_dispatches_waiting_messages(world: World) -> None:
    world.ch.declare_queue("q")
    world.ch.qos(1, global_=True)
    world.ch.consume("q", "c")
    fill(world, "q", 3)
    assert len(world.sink.deliveries) == 1
    world.ch.qos(0, global_=True)
    assert len(world.sink.deliveries) == 3


def test_prefetch_size_is_not_implemented(world: World) -> None:
    with pytest.raises(AMQPConnectionError) as exc:
        world.ch.qos(1, prefetch_size=100)
    assert exc.value.reply_code == ReplyCode.NOT_IMPLEMENTED


def test_unwritable_sink_is_skipped_until_resume(world: World) -> None:
    world.ch.declare_queue("q")
    slow, slow_sink = world.channel()
    slow.consume("q", "slow")
    world.ch.consume("q", "fast")
    slow_sink.writable = False
    fill(world, "q", 2)
    assert slow_sink.deliveries == []
    assert len(world.sink.deliveries) == 2
    world.sink.writable = False
    fill(world, "q", 2)
    assert world.vhost.queues["q"].message_count == 2
    slow_sink.writable = True
    slow.resume()
    assert slow_sink.bodies == [b"m0", b"m1"]


def test_channel_flow_pauses_deliveries(world: World) -> None:
    world.ch.declare_queue("q")
    world.ch.consume("q", "c")
    world.ch.flow(False)
    fill(world, "q", 2)
    assert world.sink.deliveries == []
    world.ch.flow(True)
    assert len(world.sink.deliveries) == 2


def test_get_returns_remaining_count_and_shares_tags_with_deliveries(world: World) -> None:
    world.ch.declare_queue("q")
    world.ch.declare_queue("other")
    fill(world, "q", 3)
    first = world.ch.get("q")
    assert first is not None
    assert (first.delivery_tag, first.message.body, first.message_count, first.redelivered) == (
        1,
        b"m0",
        2,
        False,
    )
    assert (first.exchange, first.routing_key) == ("", "q")
    world.ch.consume("other", "c")
    publish(world.ch, "", "other", "o")
    assert world.sink.tags == [2]
    second = world.ch.get("q", no_ack=True)
    assert second is not None and second.delivery_tag == 3
    assert world.ch.get("other") is None
    assert world.vhost.queues["q"].unacked_count == 1


def test_cancel_keeps_unacked_with_the_channel(world: World) -> None:
    world.ch.declare_queue("q")
    world.ch.consume("q", "c")
    fill(world, "q", 1)
    assert world.ch.cancel("c") is True
    assert world.ch.cancel("c") is False
    fill(world, "q", 1)
    assert len(world.sink.deliveries) == 1
    world.ch.ack(1)
    q = world.vhost.queues["q"]
    assert (q.message_count, q.unacked_count, q.stats.acked) == (1, 0, 1)


def test_queue_stats_count_publish_deliver_ack_redeliver(world: World) -> None:
    world.ch.declare_queue("q")
    world.ch.consume("q", "c")
    fill(world, "q", 2)
    world.ch.ack(1)
    world.ch.nack(2)
    world.ch.ack(3)
    stats = world.vhost.queues["q"].stats
    assert (stats.published, stats.delivered, stats.acked, stats.redelivered) == (2, 3, 2, 1)


def test_sink_protocol_is_satisfied_by_a_plain_class() -> None:
    from amqplite.broker import DeliverySink

    sink: DeliverySink = RecordingSink()
    assert sink.writable
