"""Dead-lettering: reasons, routing keys, the exact x-death shape, cycles, delivery limits."""

from __future__ import annotations

import datetime

from broker_helpers import World, publish

from amqplite.message import Message


def dead(world: World, queue: str = "dlq") -> list[Message]:
    return [e.message for e in world.vhost.queues[queue].browse()]


def setup_dlx(
    world: World, *, routing_key: str | None = None, extra: dict[str, object] | None = None
) -> None:
    world.ch.declare_exchange("dlx", "direct")
    world.ch.declare_queue("dlq")
    world.ch.bind_queue("dlq", "dlx", routing_key or "work")
    arguments: dict[str, object] = {"x-dead-letter-exchange": "dlx", **(extra or {})}
    if routing_key is not None:
        arguments["x-dead-letter-routing-key"] = routing_key
    world.ch.declare_queue("work", arguments=arguments)


def test_nack_without_requeue_dead_letters_with_x_death(world: World) -> None:
    setup_dlx(world)
    publish(world.ch, "", "work", "m", headers={"app": 1}, expiration="60000")
    got = world.ch.get("work")
    assert got is not None
    world.ch.nack(got.delivery_tag, requeue=False)
    (message,) = dead(world)
    assert message.exchange == "dlx" and message.routing_key == "work" and message.body == b"m"
    assert message.properties.expiration is None
    headers = message.headers
    assert headers["x-death"] == [
        {
            "count": 1,
            "reason": "rejected",
            "queue": "work",
            "time": datetime.datetime.fromtimestamp(int(world.clock()), tz=datetime.UTC),
            "exchange": "",
            "routing-keys": ["work"],
            "original-expiration": "60000",
        }
    ]
    assert list(headers["x-death"][0]) == [
        "count",
        "reason",
        "queue",
        "time",
        "exchange",
        "routing-keys",
        "original-expiration",
    ]
    assert headers["app"] == 1
    assert (
        headers["x-first-death-queue"],
        headers["x-first-death-reason"],
        headers["x-first-death-exchange"],
    ) == (
        "work",
        "rejected",
        "",
    )
    assert (
        headers["x-last-death-queue"],
        headers["x-last-death-reason"],
        headers["x-last-death-exchange"],
    ) == (
        "work",
        "rejected",
        "",
    )
    assert world.vhost.queues["work"].stats.dead_lettered == {"rejected": 1}


def test_original_message_is_not_mutated(world: World) -> None:
    setup_dlx(world)
    world.ch.declare_queue("copy")
    world.ch.bind_queue("copy", "amq.fanout", "")
    world.ch.bind_queue("work", "amq.fanout", "")
    publish(world.ch, "amq.fanout", "k", headers={"h": 1})
    got = world.ch.get("work")
    assert got is not None
    world.ch.reject(got.delivery_tag, requeue=False)
    (kept,) = world.vhost.queues["copy"].browse()
    assert kept.message.headers == {"h": 1}


def test_dead_letter_routing_key_replaces_the_keys_and_drops_cc(world: World) -> None:
    setup_dlx(world, routing_key="dead")
    world.ch.bind_queue("work", "amq.direct", "orig")
    publish(world.ch, "amq.direct", "orig", headers={"CC": ["other"]})
    got = world.ch.get("work")
    assert got is not None
    world.ch.reject(got.delivery_tag, requeue=False)
    (message,) = dead(world)
    assert message.routing_key == "dead"
    assert "CC" not in message.headers
    death = message.headers["x-death"][0]
    assert death["exchange"] == "amq.direct"
    assert death["routing-keys"] == ["orig", "other"]


def test_without_dead_letter_key_original_keys_including_cc_are_used(world: World) -> None:
    world.ch.declare_exchange("dlx", "direct")
    world.ch.declare_queue("by-key")
    world.ch.declare_queue("by-cc")
    world.ch.bind_queue("by-key", "dlx", "k")
    world.ch.bind_queue("by-cc", "dlx", "cc")
    world.ch.declare_queue("work", arguments={"x-dead-letter-exchange": "dlx", "x-message-ttl": 10})
    world.ch.bind_queue("work", "amq.direct", "k")
    publish(world.ch, "amq.direct", "k", headers={"CC": ["cc"]})
    world.clock.advance(1)
    world.broker.tick()
    assert len(dead(world, "by-key")) == 1 and len(dead(world, "by-cc")) == 1


def test_expired_messages_are_dead_lettered_with_reason_expired(world: World) -> None:
    setup_dlx(world, extra={"x-message-ttl": 100})
    publish(world.ch, "", "work", "m")
    world.clock.advance(0.1)
    world.broker.tick()
    (message,) = dead(world)
    death = message.headers["x-death"][0]
    assert death["reason"] == "expired" and "original-expiration" not in death


def test_repeated_deaths_increment_count_and_move_entry_to_front(world: World) -> None:
    # work --rejected--> retry --expired--> work, twice round.
    world.ch.declare_queue(
        "work", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "retry"}
    )
    world.ch.declare_queue(
        "retry",
        arguments={
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "work",
            "x-message-ttl": 10,
        },
    )
    publish(world.ch, "", "work", "m")
    for _ in range(2):
        got = world.ch.get("work")
        assert got is not None
        world.ch.reject(got.delivery_tag, requeue=False)
        world.clock.advance(1)
        world.broker.tick()
    (entry,) = world.vhost.queues["work"].browse()
    deaths = entry.message.headers["x-death"]
    assert [(d["queue"], d["reason"], d["count"]) for d in deaths] == [
        ("retry", "expired", 2),
        ("work", "rejected", 2),
    ]
    assert entry.message.headers["x-first-death-queue"] == "work"
    assert entry.message.headers["x-last-death-queue"] == "retry"


def test_automatic_dead_letter_cycle_is_dropped(world: World) -> None:
    # A queue whose expired messages come straight back to itself: RabbitMQ drops them.
    world.ch.declare_queue("loop", arguments={"x-dead-letter-exchange": "", "x-message-ttl": 10})
    publish(world.ch, "", "loop", "m")
    world.clock.advance(1)
    world.broker.tick()
    q = world.vhost.queues["loop"]
    assert q.message_count == 0
    assert q.stats.dropped == {"cycle": 1}


def test_two_queue_expiry_cycle_is_dropped_on_second_lap(world: World) -> None:
    world.ch.declare_queue(
        "a",
        arguments={
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "b",
            "x-message-ttl": 10,
        },
    )
    world.ch.declare_queue(
        "b",
        arguments={
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "a",
            "x-message-ttl": 10,
        },
    )
    publish(world.ch, "", "a", "m")
    for _ in range(4):
        world.clock.advance(1)
        world.broker.tick()
    assert world.vhost.queues["a"].message_count == 0
    assert world.vhost.queues["b"].message_count == 0
    assert world.vhost.queues["b"].stats.dead_lettered == {"expired": 1}


def test_cycle_with_a_rejection_is_allowed(world: World) -> None:
    world.ch.declare_queue("self", arguments={"x-dead-letter-exchange": ""})
    publish(world.ch, "", "self", "m")
    for _ in range(3):
        got = world.ch.get("self")
        assert got is not None
        world.ch.reject(got.delivery_tag, requeue=False)
    (entry,) = world.vhost.queues["self"].browse()
    assert entry.message.headers["x-death"][0]["count"] == 3


def test_missing_dead_letter_exchange_drops(world: World) -> None:
    world.ch.declare_queue("q", arguments={"x-dead-letter-exchange": "nowhere"})
    publish(world.ch, "", "q")
    got = world.ch.get("q")
    assert got is not None
    world.ch.reject(got.delivery_tag, requeue=False)
    assert world.vhost.queues["q"].stats.dropped == {"rejected": 1}


def test_delivery_limit_dead_letters_instead_of_redelivering(world: World) -> None:
    setup_dlx(world, extra={"x-delivery-limit": 2})
    publish(world.ch, "", "work", "m")
    counts = []
    for _ in range(3):
        got = world.ch.get("work")
        assert got is not None
        counts.append(got.message.headers.get("x-delivery-count"))
        world.ch.nack(got.delivery_tag, requeue=True)
    assert counts == [None, 1, 2]
    assert world.vhost.queues["work"].message_count == 0
    (message,) = dead(world)
    assert message.headers["x-death"][0]["reason"] == "delivery_limit"
    assert "x-delivery-count" not in message.headers


def test_delivery_limit_counts_channel_close_returns(world: World) -> None:
    world.ch.declare_queue("q", arguments={"x-delivery-limit": 0})
    publish(world.ch, "", "q", "m")
    ch, _ = world.channel()
    assert ch.get("q") is not None
    ch.close()
    q = world.vhost.queues["q"]
    assert q.message_count == 0 and q.stats.dropped == {"delivery_limit": 1}


def test_x_death_count_is_a_64_bit_long_as_rabbitmq_sends_it(world: World) -> None:
    from amqplite.message import Long
    from amqplite.protocol import encode_table

    setup_dlx(world)
    publish(world.ch, "", "work", "m")
    got = world.ch.get("work")
    assert got is not None
    world.ch.reject(got.delivery_tag, requeue=False)
    (message,) = dead(world)
    count = message.headers["x-death"][0]["count"]
    assert type(count) is Long and count == 1
    assert b"countl" in encode_table(message.headers)  # 'l', not the 32-bit 'I'
