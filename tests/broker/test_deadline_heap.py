"""The deadline heap: tick() and next_deadline() cost what is due, not what exists."""

from __future__ import annotations

import pytest
from broker_helpers import World, publish
from sinks import RecordingSink

from amqplite.broker import Broker, FakeClock


def test_tick_examines_only_what_is_due_among_many_idle_timed_queues_and_channels(
    world: World,
) -> None:
    for i in range(10_000):
        world.ch.declare_queue(f"idle{i}", arguments={"x-message-ttl": 1000})
    world.ch.declare_queue("busy")
    for i in range(1_000):
        ch, _sink = world.channel()
        publish(ch, "", "busy", str(i))
        assert ch.get("busy") is not None  # unacked, under the 30-minute consumer timeout
    world.ch.declare_queue("hot", arguments={"x-message-ttl": 1000})
    publish(world.ch, "", "hot", "expires")
    broker = world.broker
    assert broker.next_deadline() == pytest.approx(world.clock() + 1, abs=1e-6)
    before = broker.deadline_checks
    world.clock.advance(1)
    broker.tick()
    assert world.vhost.queues["hot"].message_count == 0
    assert broker.next_deadline() == pytest.approx(world.clock() - 1 + 1800, abs=1e-6)
    # The hot queue, then the top channel's entry: nowhere near 11,000 objects.
    assert broker.deadline_checks - before <= 3
    before = broker.deadline_checks
    for _ in range(100):
        broker.next_deadline()
    assert broker.deadline_checks - before == 100


def test_a_deadline_that_moved_later_is_pushed_back_not_acted_on(world: World) -> None:
    world.ch.declare_queue("q", arguments={"x-message-ttl": 1000})
    publish(world.ch, "", "q", "a")
    world.clock.advance(0.5)
    publish(world.ch, "", "q", "b")
    assert world.ch.get("q", no_ack=True) is not None  # "a" gone: the head is now "b"
    world.clock.advance(0.5)
    world.broker.tick()
    assert world.vhost.queues["q"].message_count == 1
    assert world.broker.next_deadline() == pytest.approx(world.clock() + 0.5, abs=1e-6)
    world.clock.advance(0.5)
    world.broker.tick()
    assert world.vhost.queues["q"].message_count == 0
    assert world.broker.next_deadline() is None


def test_ack_exposing_a_shorter_consumer_timeout_moves_the_deadline_earlier() -> None:
    clock = FakeClock()
    broker = Broker(clock, consumer_timeout=None)
    broker.add_vhost("/")
    sink = RecordingSink()
    ch = broker.open_connection("/").open_channel(1, sink)
    ch.declare_queue("long", arguments={"x-consumer-timeout": 60_000})
    ch.declare_queue("short", arguments={"x-consumer-timeout": 5_000})
    ch.declare_queue("ttl", arguments={"x-message-ttl": 30_000})
    publish(ch, "", "long", "l")
    publish(ch, "", "short", "s")
    first = ch.get("long")
    clock.advance(1)
    assert ch.get("short") is not None
    assert first is not None
    assert broker.next_deadline() == clock.now - 1 + 60
    publish(ch, "", "ttl", "t")  # another deadline, before the channel's entry in the heap
    assert broker.next_deadline() == clock.now + 30
    ch.ack(first.delivery_tag)  # the oldest is now the 5 s delivery
    assert broker.next_deadline() == clock.now + 5
    clock.advance(5)
    broker.tick()
    assert 1 not in broker.connections[1].channels


def test_tx_rollback_restoring_an_older_delivery_restores_its_deadline(world: World) -> None:
    world.ch.declare_queue("q")
    publish(world.ch, "", "q", "a")
    publish(world.ch, "", "q", "b")
    world.ch.declare_queue("ttl", arguments={"x-message-ttl": 1_805_000})
    publish(world.ch, "", "ttl", "t")  # due between the two deliveries' deadlines
    world.ch.tx_select()
    first = world.ch.get("q")
    assert first is not None
    world.clock.advance(10)
    second = world.ch.get("q")
    assert second is not None
    world.ch.ack(first.delivery_tag)
    assert world.broker.next_deadline() == pytest.approx(world.clock() + 1795, abs=1e-6)
    world.ch.tx_rollback()
    assert world.broker.next_deadline() == pytest.approx(world.clock() - 10 + 1800, abs=1e-6)


def test_closed_channels_and_deleted_queues_do_not_pile_up_in_the_deadline_heap(
    world: World,
) -> None:
    world.ch.declare_queue("q")
    for i in range(5_000):
        conn = world.connection()
        ch, _sink = world.channel(conn)
        publish(ch, "", "q", str(i))
        assert ch.get("q") is not None  # unacked: a 30-minute deadline in the heap
        ch.declare_queue(f"ttl{i}", arguments={"x-expires": 60_000})
        conn.close()  # the channel closes; the delivery goes back to "q"
        world.vhost.remove_queue(world.vhost.queues[f"ttl{i}"])
    heap = world.broker._deadlines
    assert len(heap) <= 2 * 1024 + 2
    assert world.broker.next_deadline() is None
