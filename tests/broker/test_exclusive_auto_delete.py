"""Exclusive queues belong to their connection; auto-delete queues go with their last consumer."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from broker_helpers import World, publish

from amqplite.errors import ChannelError, ReplyCode


def test_exclusive_queue_is_locked_for_other_connections(world: World) -> None:
    world.ch.declare_queue("ex", exclusive=True)
    other, _ = world.channel(world.connection())
    actions: list[Callable[[], object]] = [
        lambda: other.declare_queue("ex", exclusive=True),
        lambda: other.declare_queue("ex", passive=True),
        lambda: other.bind_queue("ex", "amq.direct", "k"),
        lambda: other.consume("ex"),
        lambda: other.get("ex"),
        lambda: other.purge_queue("ex"),
        lambda: other.delete_queue("ex"),
    ]
    for action in actions:
        with pytest.raises(ChannelError) as exc:
            action()
        assert exc.value.reply_code == ReplyCode.RESOURCE_LOCKED
        assert (
            "cannot obtain exclusive access to locked queue 'ex' in vhost '/'"
            in exc.value.reply_text
        )
        other, _ = world.channel(world.connection())
    # Publishing to it is not an exclusive operation.
    assert publish(other, "", "ex").queues == 1


def test_owner_may_use_its_exclusive_queue_from_any_channel(world: World) -> None:
    world.ch.declare_queue("ex", exclusive=True)
    ch, _ = world.channel()
    ch.declare_queue("ex", exclusive=True)
    ch.consume("ex", "c")
    with pytest.raises(ChannelError) as exc:
        ch.declare_queue("ex")  # non-exclusive redeclare of an exclusive queue
    assert exc.value.reply_code == ReplyCode.RESOURCE_LOCKED


def test_exclusive_queues_are_deleted_with_their_connection(world: World) -> None:
    world.ch.declare_queue("ex", exclusive=True)
    world.ch.bind_queue("ex", "amq.fanout", "")
    world.conn.close()
    assert "ex" not in world.vhost.queues
    assert world.vhost.bindings() == []
    assert world.conn.id not in world.broker.connections


def test_auto_delete_queue_goes_when_last_consumer_cancels(world: World) -> None:
    world.ch.declare_queue("ad", auto_delete=True)
    assert "ad" in world.vhost.queues  # never had a consumer: stays
    world.ch.consume("ad", "c1")
    world.ch.consume("ad", "c2")
    world.ch.cancel("c1")
    assert "ad" in world.vhost.queues
    world.ch.cancel("c2")
    assert "ad" not in world.vhost.queues
    assert world.sink.cancelled == []  # client-initiated: no server-side cancel


def test_auto_delete_queue_goes_when_consuming_channel_closes(world: World) -> None:
    world.ch.declare_queue("ad", auto_delete=True)
    ch, _ = world.channel()
    ch.consume("ad", "c")
    ch.close()
    assert "ad" not in world.vhost.queues
