"""The broker object: vhosts, connections, channels, and the timer API the server drives."""

from __future__ import annotations

import pytest
from broker_helpers import RecordingSink, World, publish

from amqplite.broker import Broker, ConnectionInfo, FakeClock
from amqplite.errors import AMQPConnectionError, ReplyCode


def test_missing_vhost_is_not_allowed() -> None:
    broker = Broker(clock=FakeClock())
    with pytest.raises(AMQPConnectionError) as exc:
        broker.get_vhost("/")
    assert exc.value.reply_code == ReplyCode.NOT_ALLOWED
    assert broker.add_vhost("/") is broker.add_vhost("/")


def test_connections_are_registered_until_closed() -> None:
    broker = Broker(clock=FakeClock(100.0))
    broker.add_vhost("/")
    conn = broker.open_connection(
        "/", info=ConnectionInfo(name="a -> b", client_properties={"product": "t"})
    )
    assert broker.connections == {conn.id: conn}
    assert (conn.info.name, conn.connected_at) == ("a -> b", 100.0)
    conn.open_channel(1, RecordingSink())
    with pytest.raises(AMQPConnectionError) as exc:
        conn.open_channel(1, RecordingSink())
    assert exc.value.reply_code == ReplyCode.CHANNEL_ERROR
    conn.close()
    assert broker.connections == {}
    assert conn.channels == {}


def test_deleting_a_vhost_closes_its_connections_and_queues(world: World) -> None:
    world.ch.declare_queue("q")
    world.ch.consume("q", "c")
    world.broker.delete_vhost("/")
    assert world.broker.vhosts == {}
    assert world.broker.connections == {}
    assert world.vhost.queues == {}


def test_next_deadline_is_the_earliest_over_all_queues(world: World) -> None:
    assert world.broker.next_deadline() is None
    world.ch.declare_queue("slow", arguments={"x-message-ttl": 5000})
    world.ch.declare_queue("fast", arguments={"x-message-ttl": 1000})
    publish(world.ch, "", "slow")
    publish(world.ch, "", "fast")
    now = world.clock()
    assert world.broker.next_deadline() == pytest.approx(now + 1)
    world.clock.advance(1)
    world.broker.tick()
    assert world.broker.next_deadline() == pytest.approx(now + 5)


def test_consumer_priority_must_be_an_integer(world: World) -> None:
    from amqplite.errors import ChannelError

    world.ch.declare_queue("q")
    with pytest.raises(ChannelError, match="x-priority"):
        world.ch.consume("q", arguments={"x-priority": "high"})
