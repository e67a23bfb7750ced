"""Ack, nack, reject (multiple, requeue), requeue position, recover, channel close, transactions."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from broker_helpers import World, publish

from amqplite.errors import AMQPConnectionError, ChannelError, ReplyCode


def setup(world: World, n: int, *, prefetch: int = 0) -> None:
    world.ch.declare_queue("q")
    for i in range(n):
        publish(world.ch, "", "q", f"m{i}")
    if prefetch:
        world.ch.qos(prefetch)


def ready_bodies(world: World) -> list[bytes]:
    return [e.message.body for e in world.vhost.queues["q"].browse()]


def test_unknown_delivery_tag_is_precondition_failed(world: World) -> None:
    setup(world, 1)
    world.ch.consume("q", "c")
    world.ch.ack(1)
    actions: list[Callable[[], object]] = [
        lambda: world.ch.ack(1),
        lambda: world.ch.nack(7),
        lambda: world.ch.reject(0),
    ]
    for action in actions:
        with pytest.raises(ChannelError) as exc:
            action()
        assert exc.value.reply_code == ReplyCode.PRECONDITION_FAILED
    with pytest.raises(ChannelError, match="unknown delivery tag 1"):
        world.ch.ack(1)


def test_ack_multiple_with_unknown_tag_fails_and_zero_means_all(world: World) -> None:
    setup(world, 3)
    world.ch.consume("q", "c")
    world.ch.ack(2)
    with pytest.raises(ChannelError, match="unknown delivery tag 2"):
        world.ch.ack(2, multiple=True)
    world.ch.ack(0, multiple=True)
    assert world.ch.unacked == {}


def test_ack_multiple_acks_up_to_and_including_the_tag(world: World) -> None:
    setup(world, 4)
    world.ch.consume("q", "c")
    world.ch.ack(3, multiple=True)
    assert list(world.ch.unacked) == [4]


def test_requeued_messages_return_to_their_original_position_redelivered(world: World) -> None:
    setup(world, 5, prefetch=3)
    world.ch.consume("q", "c")
    assert world.sink.bodies == [b"m0", b"m1", b"m2"]
    world.ch.cancel("c")
    world.ch.nack(2, requeue=True)
    world.ch.reject(1, requeue=True)
    world.ch.nack(3, requeue=True)
    assert ready_bodies(world) == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    got = world.ch.get("q")
    assert got is not None and got.redelivered and got.message.body == b"m0"
    entries = list(world.vhost.queues["q"].browse())
    assert [e.redelivered for e in entries] == [True, True, False, False]


def test_nack_multiple_requeues_all_and_redelivers(world: World) -> None:
    setup(world, 3)
    world.ch.consume("q", "c")
    world.sink.take()
    world.ch.nack(3, multiple=True)
    delivered = world.sink.take()
    assert [(d[5].body, d[2], d[1]) for d in delivered] == [
        (b"m0", True, 4),
        (b"m1", True, 5),
        (b"m2", True, 6),
    ]


def test_reject_without_requeue_drops_the_message(world: World) -> None:
    setup(world, 1)
    world.ch.consume("q", "c")
    world.ch.reject(1, requeue=False)
    q = world.vhost.queues["q"]
    assert (q.message_count, q.unacked_count, q.stats.dropped) == (0, 0, {"rejected": 1})


def test_closing_a_channel_returns_unacked_messages_to_other_consumers(world: World) -> None:
    world.ch.declare_queue("q")
    world.ch.consume("q", "c")
    other, sink = world.channel(world.connection())
    other.consume("q", "d")
    for i in range(3):
        publish(world.ch, "", "q", f"m{i}")
    assert world.sink.bodies == [b"m0", b"m2"] and sink.bodies == [b"m1"]
    world.ch.close()
    assert sink.bodies == [b"m1", b"m0", b"m2"]
    assert [d[2] for d in sink.deliveries] == [False, True, True]
    assert world.ch.number not in world.conn.channels


def test_recover_requeues_everything_unacked(world: World) -> None:
    setup(world, 2)
    world.ch.consume("q", "c")
    world.sink.take()
    world.ch.recover()
    assert [(d[5].body, d[2]) for d in world.sink.take()] == [(b"m0", True), (b"m1", True)]
    with pytest.raises(AMQPConnectionError):
        world.ch.recover(requeue=False)


def test_acking_after_queue_deletion_is_harmless(world: World) -> None:
    setup(world, 1)
    got = world.ch.get("q")
    assert got is not None
    world.ch.delete_queue("q")
    world.ch.ack(got.delivery_tag)


def test_transaction_buffers_publishes_and_acks_until_commit(world: World) -> None:
    setup(world, 1)
    world.ch.consume("q", "c")
    world.ch.tx_select()
    publish(world.ch, "", "q", "tx")
    world.ch.ack(1)
    q = world.vhost.queues["q"]
    assert (q.message_count, q.unacked_count, len(world.sink.deliveries)) == (0, 1, 1)
    results = world.ch.tx_commit()
    assert [r.queues for r in results] == [1]
    assert q.unacked_count == 1  # the committed publish was delivered, the old one acked
    assert world.sink.bodies == [b"m0", b"tx"]


def test_transaction_rollback_discards_publishes_and_restores_acks(world: World) -> None:
    setup(world, 1)
    world.ch.consume("q", "c")
    world.ch.tx_select()
    publish(world.ch, "", "q", "tx")
    world.ch.ack(1)
    world.ch.tx_rollback()
    world.ch.tx_commit()
    q = world.vhost.queues["q"]
    assert (q.message_count, q.unacked_count) == (0, 1)
    world.ch.ack(1)
    world.ch.tx_commit()
    assert q.unacked_count == 0


def test_commit_without_select_and_mode_switches_are_refused(world: World) -> None:
    with pytest.raises(ChannelError, match="not transactional"):
        world.ch.tx_commit()
    world.ch.confirm_select()
    with pytest.raises(ChannelError, match="confirm to tx"):
        world.ch.tx_select()
    ch, _ = world.channel()
    ch.tx_select()
    with pytest.raises(ChannelError, match="tx to confirm"):
        ch.confirm_select()


def test_closing_a_channel_with_uncommitted_acks_requeues_those_messages(world: World) -> None:
    setup(world, 2)
    world.ch.consume("q", "c")
    world.ch.tx_select()
    world.ch.ack(1)
    world.ch.close()
    q = world.vhost.queues["q"]
    assert (q.message_count, q.unacked_count) == (2, 0)
    assert [e.message.body for e in q.browse()] == [b"m0", b"m1"]
