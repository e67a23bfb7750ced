"""Message flow as RabbitMQ does it: overflow, priorities, requeue order, recover,
cancel notifications, delivery limits, CC/BCC and x-death across hops.

Checked against amqplite and, when AMQPLITE_RABBITMQ_URL is set, against RabbitMQ.
Every count is read after publisher confirms, since RabbitMQ counts a publish only once
it reached the queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel

Name = Callable[[str], str]
Connect = Callable[[], pika.BlockingConnection]


def _confirmed(channel: BlockingChannel) -> BlockingChannel:
    channel.confirm_delivery()
    return channel


def _get_all(channel: BlockingChannel, queue: str) -> list[tuple[bytes, Any]]:
    got = []
    while True:
        method, props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return got
        got.append((body, props))


def _closed_by_broker(channel: BlockingChannel, call: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        call()
    assert channel.is_closed
    return info.value.reply_code, info.value.reply_text


def _wait_for_count(channel: BlockingChannel, queue: str, count: int) -> None:
    deadline = time.monotonic() + 5
    while channel.queue_declare(queue, passive=True).method.message_count < count:
        assert time.monotonic() < deadline, f"{queue} never reached {count} messages"
        channel.connection.process_data_events(time_limit=0.02)


def test_max_length_drop_head_dead_letters_the_oldest_with_reason_maxlen(
    channel: BlockingChannel, name: Name
) -> None:
    q, dlq = name("bounded"), name("dlq")
    _confirmed(channel)
    channel.queue_declare(dlq, exclusive=True)
    channel.queue_declare(
        q,
        exclusive=True,
        arguments={
            "x-max-length": 2,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dlq,
        },
    )
    for body in (b"1", b"2", b"3"):
        channel.basic_publish("", q, body)
    _wait_for_count(channel, dlq, 1)
    assert [body for body, _ in _get_all(channel, q)] == [b"2", b"3"]
    [(body, props)] = _get_all(channel, dlq)
    assert body == b"1"
    [death] = props.headers["x-death"]
    assert (death["reason"], death["queue"], death["count"]) == ("maxlen", q, 1)
    assert props.headers["x-first-death-reason"] == "maxlen"


def test_max_length_reject_publish_nacks_with_confirms(
    channel: BlockingChannel, name: Name
) -> None:
    q = name("full")
    _confirmed(channel)
    channel.queue_declare(
        q, exclusive=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
    )
    channel.basic_publish("", q, b"kept")
    with pytest.raises(pika.exceptions.NackError):
        channel.basic_publish("", q, b"refused")
    assert [body for body, _ in _get_all(channel, q)] == [b"kept"]


def test_priority_queue_delivers_highest_priority_first(
    channel: BlockingChannel, name: Name
) -> None:
    q = name("prio")
    _confirmed(channel)
    channel.queue_declare(q, exclusive=True, arguments={"x-max-priority": 5})
    for body, priority in ((b"low", 1), (b"none", None), (b"high", 5), (b"over", 9), (b"mid", 3)):
        channel.basic_publish("", q, body, pika.BasicProperties(priority=priority))
    # Priorities above the maximum count as the maximum; absent counts as 0.
    assert [body for body, _ in _get_all(channel, q)] == [b"high", b"over", b"mid", b"low", b"none"]


def test_nack_multiple_with_requeue_keeps_the_original_order(
    channel: BlockingChannel, name: Name
) -> None:
    q = name("nacked")
    _confirmed(channel)
    channel.queue_declare(q, exclusive=True)
    for i in range(5):
        channel.basic_publish("", q, b"%d" % i)
    tags = []
    for _ in range(4):
        method, _, _ = channel.basic_get(q)
        assert method is not None
        tags.append(method.delivery_tag)
    channel.basic_nack(tags[2], multiple=True, requeue=True)  # 0, 1, 2 back
    channel.basic_nack(tags[3], requeue=True)  # 3 back
    got = []
    while True:
        method, _, body = channel.basic_get(q, auto_ack=True)
        if method is None:
            break
        got.append((body, method.redelivered))
    assert got == [(b"0", True), (b"1", True), (b"2", True), (b"3", True), (b"4", False)]


def test_basic_recover_redelivers_unacked_messages(connect: Connect, name: Name) -> None:
    q = name("recovered")
    connection = connect()
    channel = _confirmed(connection.channel())
    channel.queue_declare(q, exclusive=True)
    channel.basic_publish("", q, b"again")
    deliveries: list[tuple[bytes, bool]] = []
    channel.basic_consume(q, lambda ch, m, p, body: deliveries.append((body, m.redelivered)))
    while not deliveries:
        connection.process_data_events(time_limit=0.05)
    channel.basic_recover(requeue=True)
    while len(deliveries) < 2:
        connection.process_data_events(time_limit=0.05)
    assert deliveries == [(b"again", False), (b"again", True)]


def test_consumers_hear_of_their_queue_deleted_from_another_channel(
    connect: Connect, name: Name
) -> None:
    q = name("doomed")
    connection = connect()
    consumer = connection.channel()
    consumer.queue_declare(q, exclusive=True)
    cancelled: list[str] = []
    consumer.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    tag = consumer.basic_consume(q, lambda *_: None)
    assert connection.channel().queue_delete(q).method.message_count == 0
    deadline = time.monotonic() + 5
    while not cancelled and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.05)
    assert cancelled == [tag]
    assert consumer.is_open


def test_quorum_delivery_limit_dead_letters_after_too_many_returns(
    channel: BlockingChannel, name: Name
) -> None:
    q, dlq = name("quorum"), name("dlq")
    _confirmed(channel)
    channel.queue_declare(dlq, exclusive=True)
    channel.queue_declare(
        q,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": 1,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dlq,
        },
    )
    try:
        channel.basic_publish("", q, b"poison")
        counts = []
        for _ in range(2):
            method, props, _ = channel.basic_get(q)
            assert method is not None
            counts.append((props.headers or {}).get("x-delivery-count"))
            channel.basic_nack(method.delivery_tag, requeue=True)
        # Quorum queues carry the header from the first delivery on.
        assert counts == [0, 1]
        _wait_for_count(channel, dlq, 1)
        assert channel.basic_get(q)[0] is None
        [(body, props)] = _get_all(channel, dlq)
        assert body == b"poison"
        assert props.headers["x-death"][0]["reason"] == "delivery_limit"
    finally:
        channel.queue_delete(q)


def test_x_expires_deletes_an_unused_queue_and_a_redeclare_counts_as_use(
    connect: Connect, name: Name
) -> None:
    q = name("expiring")
    channel = connect().channel()
    channel.queue_declare(q, arguments={"x-expires": 400})
    # Nothing to await from outside: let the clock run (a passive declare is a use).
    channel.connection.process_data_events(time_limit=0.25)
    channel.queue_declare(q, passive=True)
    channel.connection.process_data_events(time_limit=0.25)
    channel.queue_declare(q, passive=True)  # 500 ms after the declare: still there
    channel.connection.process_data_events(time_limit=0.8)
    code, _ = _closed_by_broker(channel, lambda: channel.queue_declare(q, passive=True))
    assert code == 404


def test_cc_routes_to_more_queues_and_bcc_is_removed(channel: BlockingChannel, name: Name) -> None:
    a, b, c = name("a"), name("b"), name("c")
    _confirmed(channel)
    for q in (a, b, c):
        channel.queue_declare(q, exclusive=True)
    channel.basic_publish("", a, b"m", pika.BasicProperties(headers={"CC": [b], "BCC": [c]}))
    for q in (a, b, c):
        [(body, props)] = _get_all(channel, q)
        assert body == b"m"
        assert props.headers == {"CC": [b]}


def test_x_death_after_two_hops_counts_and_orders_like_rabbitmq(
    channel: BlockingChannel, name: Name
) -> None:
    first, second, last = name("first"), name("second"), name("last")
    _confirmed(channel)
    channel.queue_declare(last, exclusive=True)
    channel.queue_declare(
        second,
        exclusive=True,
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": last},
    )
    channel.queue_declare(
        first,
        exclusive=True,
        arguments={
            "x-message-ttl": 0,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": second,
        },
    )
    channel.basic_publish("", first, b"hop")
    _wait_for_count(channel, second, 1)
    method, props, _ = channel.basic_get(second)
    assert method is not None
    channel.basic_reject(method.delivery_tag, requeue=False)
    _wait_for_count(channel, last, 1)
    [(_, props)] = _get_all(channel, last)
    deaths = props.headers["x-death"]
    # Newest first; each entry counts its own (queue, reason).
    assert [(d["queue"], d["reason"], d["count"]) for d in deaths] == [
        (second, "rejected", 1),
        (first, "expired", 1),
    ]
    assert props.headers["x-first-death-queue"] == first
    assert props.headers["x-first-death-reason"] == "expired"
    # x-last-death-* came with RabbitMQ 3.13 (amqplite sets them; 3.10 does not).


def test_x_death_count_increments_when_a_message_cycles(
    channel: BlockingChannel, name: Name
) -> None:
    work, retry = name("work"), name("retry")
    _confirmed(channel)
    channel.queue_declare(
        retry,
        exclusive=True,
        arguments={
            "x-message-ttl": 0,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": work,
        },
    )
    channel.queue_declare(
        work,
        exclusive=True,
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": retry},
    )
    channel.basic_publish("", work, b"retry me")
    seen = []
    for _ in range(3):
        _wait_for_count(channel, work, 1)
        method, props, _ = channel.basic_get(work)
        assert method is not None
        deaths = (props.headers or {}).get("x-death", [])
        seen.append([(d["queue"], d["reason"], d["count"]) for d in deaths])
        channel.basic_reject(method.delivery_tag, requeue=False)
    assert seen[0] == []
    assert seen[1] == [(retry, "expired", 1), (work, "rejected", 1)]
    assert seen[2] == [(retry, "expired", 2), (work, "rejected", 2)]


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ([(2, False)], [2, 2]),
        ([(3, True)], [0, 3]),
        ([(2, False), (3, True)], [1, 2]),
        # RabbitMQ: a per-consumer qos lifts an earlier channel-wide one.
        ([(3, True), (2, False)], [2, 2]),
    ],
)
def test_prefetch_limits_combine_like_rabbitmq(
    connect: Connect, name: Name, limits: list[tuple[int, bool]], expected: list[int]
) -> None:
    connection = connect()
    channel = _confirmed(connection.channel())
    queues = [name("a"), name("b")]
    for q in queues:
        channel.queue_declare(q, exclusive=True)
        for _ in range(5):
            channel.basic_publish("", q, b"x")
    for count, global_qos in limits:
        channel.basic_qos(prefetch_count=count, global_qos=global_qos)
    got = dict.fromkeys(queues, 0)

    def on_message(queue: str) -> Callable[..., None]:
        return lambda *_: got.__setitem__(queue, got[queue] + 1)

    for q in queues:
        channel.basic_consume(q, on_message(q))
    deadline = time.monotonic() + 0.5  # nothing signals "no more deliveries": wait a bit
    while time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.05)
    assert sorted(got.values()) == expected
