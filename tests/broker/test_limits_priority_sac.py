"""x-max-length / x-max-length-bytes with each overflow mode, priority queues, single active consumer."""

from __future__ import annotations

from broker_helpers import World, publish


def bodies(world: World, queue: str) -> list[bytes]:
    return [e.message.body for e in world.vhost.queues[queue].browse()]


def with_dlq(world: World, **arguments: object) -> None:
    world.ch.declare_exchange("dlx", "fanout")
    world.ch.declare_queue("dlq")
    world.ch.bind_queue("dlq", "dlx", "")
    world.ch.declare_queue("q", arguments={"x-dead-letter-exchange": "dlx", **arguments})


def test_drop_head_drops_the_oldest_and_dead_letters_it(world: World) -> None:
    with_dlq(world, **{"x-max-length": 2})
    for b in ("a", "b", "c"):
        assert publish(world.ch, "", "q", b).rejected is False
    assert bodies(world, "q") == [b"b", b"c"]
    (dead,) = world.vhost.queues["dlq"].browse()
    assert dead.message.body == b"a"
    assert dead.message.headers["x-death"][0]["reason"] == "maxlen"


def test_max_length_bytes_counts_bodies(world: World) -> None:
    world.ch.declare_queue("q", arguments={"x-max-length-bytes": 10})
    for b in ("12345", "123456", "1234"):
        publish(world.ch, "", "q", b)
    assert bodies(world, "q") == [b"123456", b"1234"]
    assert world.vhost.queues["q"].message_bytes == 10


def test_reject_publish_refuses_new_messages(world: World) -> None:
    world.ch.declare_queue("q", arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    assert publish(world.ch, "", "q", "a").rejected is False
    result = publish(world.ch, "", "q", "b")
    assert (result.routed, result.queues, result.rejected) == (True, 0, True)
    assert bodies(world, "q") == [b"a"]


def test_reject_publish_dlx_refuses_and_dead_letters(world: World) -> None:
    with_dlq(world, **{"x-max-length": 1, "x-overflow": "reject-publish-dlx"})
    publish(world.ch, "", "q", "a")
    assert publish(world.ch, "", "q", "b").rejected is True
    assert bodies(world, "q") == [b"a"]
    assert bodies(world, "dlq") == [b"b"]


def test_rejected_by_one_queue_is_still_routed_to_the_others(world: World) -> None:
    world.ch.declare_queue("full", arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
    world.ch.declare_queue("open")
    for q in ("full", "open"):
        world.ch.bind_queue(q, "amq.fanout", "")
    result = publish(world.ch, "amq.fanout", "")
    assert (result.queues, result.rejected) == (1, True)


def test_max_length_counts_ready_messages_only(world: World) -> None:
    world.ch.declare_queue("q", arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    world.ch.consume("q", "c")
    for b in ("a", "b", "c"):
        assert publish(world.ch, "", "q", b).rejected is False
    assert world.sink.bodies == [b"a", b"b", b"c"]


def test_priority_queue_delivers_highest_priority_first(world: World) -> None:
    world.ch.declare_queue("q", arguments={"x-max-priority": 5})
    for body, priority in (("low", 0), ("none", None), ("high", 5), ("capped", 200), ("mid", 3)):
        publish(world.ch, "", "q", body, priority=priority)
    world.ch.consume("q", "c")
    assert world.sink.bodies == [b"high", b"capped", b"mid", b"low", b"none"]


def test_priority_queue_requeues_into_the_right_priority(world: World) -> None:
    world.ch.declare_queue("q", arguments={"x-max-priority": 2})
    publish(world.ch, "", "q", "hi", priority=2)
    publish(world.ch, "", "q", "lo", priority=1)
    got = world.ch.get("q")
    assert got is not None and got.message.body == b"hi"
    world.ch.nack(got.delivery_tag)
    assert bodies(world, "q") == [b"hi", b"lo"]


def test_single_active_consumer_gets_everything_until_it_leaves(world: World) -> None:
    world.ch.declare_queue("q", arguments={"x-single-active-consumer": True})
    first, first_sink = world.channel()
    first.consume("q", "first")
    second, second_sink = world.channel()
    second.consume("q", "second")
    for i in range(3):
        publish(world.ch, "", "q", f"m{i}")
    assert first_sink.bodies == [b"m0", b"m1", b"m2"] and second_sink.deliveries == []
    assert world.vhost.queues["q"].active_consumer is not None
    first.close()  # unacked go back and the next consumer takes over
    assert second_sink.bodies == [b"m0", b"m1", b"m2"]
    assert all(d[2] for d in second_sink.deliveries)
