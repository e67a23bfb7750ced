"""Message TTL (queue and per-message), lazy head expiry, tick/next_deadline, x-expires."""

from __future__ import annotations

import pytest
from broker_helpers import World, publish

from amqplite.errors import ChannelError, ReplyCode


def test_queue_ttl_expires_messages_on_tick(world: World) -> None:
    world.ch.declare_queue("q", arguments={"x-message-ttl": 1000})
    publish(world.ch, "", "q", "a")
    world.clock.advance(0.5)
    publish(world.ch, "", "q", "b")
    assert world.broker.next_deadline() == pytest.approx(world.clock() + 0.5)
    world.clock.advance(0.5)
    world.broker.tick()
    q = world.vhost.queues["q"]
    assert [e.message.body for e in q.browse()] == [b"b"]
    assert q.stats.dropped == {"expired": 1}
    world.clock.advance(0.5)
    world.broker.tick()
    assert q.message_count == 0
    assert world.broker.next_deadline() is None


def test_expired_head_is_skipped_lazily_by_get(world: World) -> None:
    world.ch.declare_queue("q")
    publish(world.ch, "", "q", "short", expiration="100")
    publish(world.ch, "", "q", "long")
    world.clock.advance(0.2)
    got = world.ch.get("q")
    assert got is not None and got.message.body == b"long"
    assert got.message_count == 0


def test_per_message_ttl_only_expires_at_the_head(world: World) -> None:
    world.ch.declare_queue("q")
    publish(world.ch, "", "q", "long", expiration="10000")
    publish(world.ch, "", "q", "short", expiration="100")
    world.clock.advance(1)
    world.broker.tick()
    assert world.vhost.queues["q"].message_count == 2  # as RabbitMQ: blocked behind the head
    world.ch.get("q", no_ack=True)
    assert world.ch.get("q") is None


def test_shorter_of_queue_and_message_ttl_wins(world: World) -> None:
    world.ch.declare_queue("q", arguments={"x-message-ttl": 5000})
    publish(world.ch, "", "q", "m", expiration="1000")
    assert world.broker.next_deadline() == pytest.approx(world.clock() + 1)


def test_ttl_zero_delivers_to_a_waiting_consumer_or_expires(world: World) -> None:
    world.ch.declare_queue("q", arguments={"x-message-ttl": 0})
    publish(world.ch, "", "q", "dropped")
    assert world.vhost.queues["q"].message_count == 0
    world.ch.consume("q", "c")
    publish(world.ch, "", "q", "delivered")
    assert world.sink.bodies == [b"delivered"]


def test_requeued_message_keeps_its_expiry(world: World) -> None:
    world.ch.declare_queue("q", arguments={"x-message-ttl": 1000})
    publish(world.ch, "", "q", "m")
    got = world.ch.get("q")
    assert got is not None
    world.clock.advance(2)
    world.ch.nack(got.delivery_tag)
    world.broker.tick()
    assert world.vhost.queues["q"].message_count == 0


def test_invalid_expiration_is_refused_on_publish(world: World) -> None:
    world.ch.declare_queue("q")
    for bad in ("-1", "soon", "1.5", ""):
        with pytest.raises(ChannelError, match="invalid expiration") as exc:
            publish(world.ch, "", "q", expiration=bad)
        assert exc.value.reply_code == ReplyCode.PRECONDITION_FAILED


def test_unused_queue_is_deleted_after_x_expires(world: World) -> None:
    world.ch.declare_queue("q", arguments={"x-expires": 1000})
    assert world.broker.next_deadline() == pytest.approx(world.clock() + 1)
    world.clock.advance(0.99)
    world.broker.tick()
    assert "q" in world.vhost.queues
    world.clock.advance(0.01)
    world.broker.tick()
    assert "q" not in world.vhost.queues


def test_consumers_and_gets_keep_an_expiring_queue_alive(world: World) -> None:
    world.ch.declare_queue("q", arguments={"x-expires": 1000})
    world.ch.consume("q", "c")
    assert world.broker.next_deadline() is None
    world.clock.advance(5)
    world.broker.tick()
    assert "q" in world.vhost.queues
    world.ch.cancel("c")
    world.clock.advance(0.9)
    world.ch.get("q")
    world.clock.advance(0.9)
    world.broker.tick()
    assert "q" in world.vhost.queues
    world.clock.advance(0.2)
    world.broker.tick()
    assert "q" not in world.vhost.queues


def test_fake_clock_refuses_to_go_backwards(world: World) -> None:
    with pytest.raises(ValueError):
        world.clock.advance(-1)
