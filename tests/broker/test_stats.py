"""Queue message_stats split as RabbitMQ's, and broker-wide totals counted once per message."""

from __future__ import annotations

from broker_helpers import World, msg, publish


def test_queue_stats_split_deliveries_and_gets_by_ack_mode(world: World) -> None:
    ch = world.ch
    ch.declare_queue("q")
    for i in range(6):
        publish(ch, "", "q", f"m{i}")
    q = world.vhost.queues["q"]
    got = ch.get("q")
    assert got is not None
    ch.get("q", no_ack=True)
    ch.nack(got.delivery_tag, requeue=True)  # m0 comes back redelivered
    other, sink = world.channel()
    other.qos(2)
    other.consume("q", "acking")
    no_ack, _ = world.channel()
    no_ack.consume("q", "auto", no_ack=True)
    stats = q.stats
    assert (stats.get, stats.get_no_ack) == (1, 1)
    assert stats.deliver == 2 and stats.deliver_no_ack == 3
    assert stats.deliver_get == stats.delivered == 7
    assert stats.redelivered == 1
    other.ack(sink.tags[0])
    assert stats.acked == 1
    assert stats.as_dict()["deliver_get"] == 7


def test_broker_totals_count_a_fanout_publish_once(world: World) -> None:
    ch = world.ch
    for name in ("a", "b", "c"):
        ch.declare_queue(name)
        ch.bind_queue(name, "amq.fanout", "")
    publish(ch, "amq.fanout", "", "fan")
    publish(ch, "amq.direct", "nowhere", "lost")
    ch.publish(
        "amq.direct", "nowhere", msg(exchange="amq.direct", routing_key="nowhere"), mandatory=True
    )
    stats = world.broker.stats
    assert (stats.published, stats.returned, stats.dropped_unroutable) == (3, 1, 1)
    tags = [ch.get(name).delivery_tag for name in ("a", "b")]  # type: ignore[union-attr]
    ch.get("c", no_ack=True)
    ch.ack(tags[0])
    assert (stats.delivered, stats.acked) == (3, 1)
    assert sum(q.stats.published for q in world.vhost.queues.values()) == 3


def test_transactional_publishes_count_when_committed(world: World) -> None:
    ch = world.ch
    ch.tx_select()
    ch.publish("amq.direct", "none", msg(exchange="amq.direct", routing_key="none"), mandatory=True)
    stats = world.broker.stats
    assert (stats.published, stats.returned) == (0, 0)
    ch.tx_commit()
    assert (stats.published, stats.returned) == (1, 1)


def test_dead_lettering_is_not_counted_as_a_publish(world: World) -> None:
    ch = world.ch
    ch.declare_queue("dlq")
    ch.declare_queue(
        "q", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"}
    )
    publish(ch, "", "q", "x")
    got = ch.get("q")
    assert got is not None
    ch.nack(got.delivery_tag, requeue=False)
    assert world.vhost.queues["dlq"].message_count == 1
    assert world.broker.stats.published == 1
