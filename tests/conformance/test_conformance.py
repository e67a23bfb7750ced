"""Behaviour that must match RabbitMQ exactly, checked against both brokers.

Run against a real RabbitMQ with AMQPLITE_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672/.
Queues are auto-deleted or exclusive (or deleted at the end) to leave RabbitMQ clean.
"""

from __future__ import annotations

from collections.abc import Callable

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel

Name = Callable[[str], str]
Connect = Callable[[], pika.BlockingConnection]


def _closed_by_broker(call: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        call()
    return info.value.reply_code, info.value.reply_text


def _drain(channel: BlockingChannel, queue: str) -> list[str]:
    bodies = []
    while True:
        method, _, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return bodies
        bodies.append(body.decode())


def test_queue_redeclare_with_other_durability_is_406(connect: Connect, name: Name) -> None:
    q = name("q")
    connection = connect()
    channel = connection.channel()
    channel.queue_declare(q, auto_delete=True)
    channel.basic_consume(q, lambda *_: None)  # keeps the auto-delete queue alive
    other = connection.channel()
    code, text = _closed_by_broker(lambda: other.queue_declare(q, durable=True, auto_delete=True))
    assert code == 406
    assert text == (
        f"PRECONDITION_FAILED - inequivalent arg 'durable' for queue '{q}' in vhost '/': "
        "received 'true' but current is 'false'"
    )


def test_exchange_redeclare_with_other_type_is_406(channel: BlockingChannel, name: Name) -> None:
    x = name("x")
    channel.exchange_declare(x, "direct", auto_delete=True)
    channel.queue_declare(name("xq"), exclusive=True)
    channel.queue_bind(name("xq"), x, "k")  # keeps the auto-delete exchange alive
    code, text = _closed_by_broker(lambda: channel.exchange_declare(x, "fanout", auto_delete=True))
    assert code == 406
    assert text == (
        f"PRECONDITION_FAILED - inequivalent arg 'type' for exchange '{x}' in vhost '/': "
        "received 'fanout' but current is 'direct'"
    )


def test_topic_wildcards_match_like_rabbitmq(channel: BlockingChannel, name: Name) -> None:
    x = name("topic")
    channel.exchange_declare(x, "topic", auto_delete=True)
    patterns = ["*.orange.*", "*.*.rabbit", "lazy.#", "#.end", "#", "a.#.b", "*"]
    queues = {}
    for i, pattern in enumerate(patterns):
        q = name(f"t{i}")
        channel.queue_declare(q, exclusive=True)
        channel.queue_bind(q, x, pattern)
        queues[pattern] = q
    keys = [
        "quick.orange.rabbit",
        "lazy.orange.elephant",
        "quick.orange.fox",
        "lazy.brown.fox",
        "lazy",
        "end",
        "a.b",
        "a.x.y.b",
        "quick.orange.male.rabbit",
        "",
        "orange",
    ]
    for key in keys:
        channel.basic_publish(x, key, key.encode())
    got = {pattern: _drain(channel, q) for pattern, q in queues.items()}
    assert got == {
        "*.orange.*": ["quick.orange.rabbit", "lazy.orange.elephant", "quick.orange.fox"],
        "*.*.rabbit": ["quick.orange.rabbit"],
        "lazy.#": ["lazy.orange.elephant", "lazy.brown.fox", "lazy"],
        "#.end": ["end"],
        "#": keys,
        "a.#.b": ["a.b", "a.x.y.b"],
        "*": ["lazy", "end", "orange"],
    }


def test_requeued_messages_keep_their_order_and_are_flagged_redelivered(
    connect: Connect, name: Name
) -> None:
    q = name("requeue")
    channel = connect().channel()
    channel.queue_declare(q, exclusive=True)
    for i in range(1, 6):
        channel.basic_publish("", q, f"m{i}".encode())
    tags = {}
    for _ in range(3):
        method, _, body = channel.basic_get(q)
        tags[body.decode()] = method.delivery_tag
    channel.basic_nack(tags["m2"], requeue=True)
    channel.basic_reject(tags["m1"], requeue=True)
    channel.basic_recover(requeue=True)  # m3 goes back too
    order = []
    flags = []
    while True:
        method, _, body = channel.basic_get(q, auto_ack=True)
        if method is None:
            break
        order.append(body.decode())
        flags.append(method.redelivered)
    assert order == ["m1", "m2", "m3", "m4", "m5"]
    assert flags == [True, True, True, False, False]


def test_x_death_header_shape(channel: BlockingChannel, name: Name) -> None:
    q, dlq = name("work"), name("dead")
    channel.queue_declare(dlq, exclusive=True)
    channel.queue_declare(
        q,
        exclusive=True,
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq},
    )
    channel.basic_publish("", q, b"doomed", pika.BasicProperties(headers={"keep": "me"}))
    method, _, _ = channel.basic_get(q)
    channel.basic_reject(method.delivery_tag, requeue=False)
    # RabbitMQ dead-letters asynchronously: wait for the delivery instead of polling.
    method, properties, body = next(channel.consume(dlq, auto_ack=True, inactivity_timeout=5))
    assert body == b"doomed"
    assert method.exchange == ""
    assert method.routing_key == dlq
    headers = properties.headers
    assert headers["keep"] == "me"
    assert headers["x-first-death-queue"] == q
    assert headers["x-first-death-reason"] == "rejected"
    assert headers["x-first-death-exchange"] == ""
    (death,) = headers["x-death"]
    assert set(death) == {"count", "reason", "queue", "time", "exchange", "routing-keys"}
    assert (death["count"], death["reason"], death["queue"]) == (1, "rejected", q)
    assert (death["exchange"], death["routing-keys"]) == ("", [q])


def test_prefetch_bounds_unacked_deliveries(channel: BlockingChannel, name: Name) -> None:
    q = name("prefetch")
    channel.queue_declare(q, exclusive=True)
    for i in range(5):
        channel.basic_publish("", q, str(i).encode())
    channel.basic_qos(prefetch_count=2)
    received: list[int] = []
    channel.basic_consume(q, lambda ch, method, props, body: received.append(method.delivery_tag))
    channel.connection.process_data_events(time_limit=0.3)
    assert received == [1, 2]
    channel.basic_ack(2, multiple=True)
    channel.connection.process_data_events(time_limit=0.3)
    assert received == [1, 2, 3, 4]


def test_mandatory_unroutable_publish_is_returned_with_312(
    channel: BlockingChannel, name: Name
) -> None:
    returned = []
    channel.add_on_return_callback(
        lambda ch, method, props, body: returned.append((method.reply_code, method.reply_text))
    )
    channel.basic_publish("", name("nowhere"), b"x", mandatory=True)
    channel.connection.process_data_events(time_limit=0.3)
    assert returned == [(312, "NO_ROUTE")]


def test_basic_get_reports_messages_left(channel: BlockingChannel, name: Name) -> None:
    q = name("get")
    channel.queue_declare(q, exclusive=True)
    for i in range(3):
        channel.basic_publish("", q, str(i).encode())
    counts = []
    for _ in range(3):
        method, _, _ = channel.basic_get(q, auto_ack=True)
        counts.append(method.message_count)
    assert counts == [2, 1, 0]
    assert channel.basic_get(q) == (None, None, None)
    assert channel.queue_declare(q, passive=True).method.message_count == 0


def test_exclusive_queue_is_locked_to_its_connection(connect: Connect, name: Name) -> None:
    q = name("mine")
    owner = connect().channel()
    owner.queue_declare(q, exclusive=True)
    other = connect().channel()
    code, text = _closed_by_broker(lambda: other.queue_declare(q, passive=True))
    assert code == 405
    assert text.startswith(
        f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{q}' in vhost '/'"
    )


def test_direct_reply_to_round_trip(connect: Connect, name: Name) -> None:
    rpc = name("rpc")
    server = connect().channel()
    server.queue_declare(rpc, exclusive=True)
    client_connection = connect()
    client = client_connection.channel()
    replies: list[tuple[bytes, str | None]] = []
    client.basic_consume(
        "amq.rabbitmq.reply-to",
        lambda ch, method, props, body: replies.append((body, props.correlation_id)),
        auto_ack=True,
    )
    client.basic_publish(
        "",
        rpc,
        b"ping",
        pika.BasicProperties(reply_to="amq.rabbitmq.reply-to", correlation_id="42"),
    )
    method, props, body = next(server.consume(rpc, inactivity_timeout=5))
    assert method is not None
    assert props.reply_to.startswith("amq.rabbitmq.reply-to.")
    server.basic_publish(
        "", props.reply_to, b"pong " + body, pika.BasicProperties(correlation_id="42")
    )
    server.basic_ack(method.delivery_tag)
    for _ in range(50):
        if replies:
            break
        client_connection.process_data_events(time_limit=0.1)
    assert replies == [(b"pong ping", "42")]


def test_direct_reply_to_misuse_is_406(connect: Connect) -> None:
    channel = connect().channel()
    code, text = _closed_by_broker(
        lambda: (
            channel.basic_publish(
                "", "anything", b"x", pika.BasicProperties(reply_to="amq.rabbitmq.reply-to")
            )
            or channel.queue_declare("amq.rabbitmq.reply-to", passive=True)
        )
    )
    assert (code, text) == (406, "PRECONDITION_FAILED - fast reply consumer does not exist")
    channel = connect().channel()
    code, text = _closed_by_broker(
        lambda: channel.basic_consume("amq.rabbitmq.reply-to", lambda *_: None, auto_ack=False)
    )
    assert (code, text) == (406, "PRECONDITION_FAILED - reply consumer cannot acknowledge")
