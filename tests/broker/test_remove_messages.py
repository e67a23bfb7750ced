"""Queue.remove_messages: selective removal of ready messages by Message.id."""

from __future__ import annotations

from broker_helpers import World, publish


def test_remove_messages_keeps_the_order_of_the_rest_and_the_counts(world: World) -> None:
    world.ch.declare_queue("q")
    for i in range(6):
        publish(world.ch, "", "q", f"m{i}")
    q = world.vhost.queues["q"]
    ids = [e.message.id for e in q.browse()]
    assert q.remove_messages({ids[1], ids[4], -1}) == 2
    assert [e.message.body for e in q.browse()] == [b"m0", b"m2", b"m3", b"m5"]
    assert (q.message_count, q.message_bytes) == (4, 8)
    assert q.remove_messages(set()) == 0
    assert [world.ch.get("q").message.body for _ in range(4)] == [b"m0", b"m2", b"m3", b"m5"]  # type: ignore[union-attr]
    assert world.ch.get("q") is None


def test_remove_messages_leaves_unacked_deliveries_alone(world: World) -> None:
    world.ch.declare_queue("q")
    publish(world.ch, "", "q", "held")
    publish(world.ch, "", "q", "ready")
    q = world.vhost.queues["q"]
    got = world.ch.get("q")
    assert got is not None
    assert q.remove_messages({got.message.id}) == 0
    assert q.unacked_count == 1
    world.ch.nack(got.delivery_tag, requeue=True)
    assert [e.message.body for e in q.browse()] == [b"held", b"ready"]


def test_remove_messages_covers_every_priority_level(world: World) -> None:
    world.ch.declare_queue("pq", arguments={"x-max-priority": 5})
    for i, priority in enumerate((0, 5, 2, 5)):
        publish(world.ch, "", "pq", f"m{i}", priority=priority)
    q = world.vhost.queues["pq"]
    by_body = {e.message.body: e.message.id for e in q.browse()}
    assert q.remove_messages({by_body[b"m1"], by_body[b"m0"]}) == 2
    assert [e.message.body for e in q.browse()] == [b"m3", b"m2"]
    assert q.message_count == 2
