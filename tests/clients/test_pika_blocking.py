"""pika's BlockingConnection against amqplite: the everyday RabbitMQ client, unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel


@pytest.fixture
def channel(amqplite_url: str) -> Iterator[BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(amqplite_url))
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            connection.close()


def test_publish_with_confirms_and_consume_with_prefetch(channel: BlockingChannel) -> None:
    channel.confirm_delivery()
    channel.exchange_declare("jobs", "direct")
    channel.queue_declare("work")
    channel.queue_bind("work", "jobs", "job")
    for i in range(10):
        channel.basic_publish("jobs", "job", f"job {i}".encode())
    channel.basic_qos(prefetch_count=3)
    got = []
    for method, _, body in channel.consume("work", inactivity_timeout=2):
        assert method is not None, "timed out waiting for deliveries"
        got.append(body.decode())
        channel.basic_ack(method.delivery_tag)
        if len(got) == 10:
            break
    channel.cancel()
    assert got == [f"job {i}" for i in range(10)]


def test_nack_requeues_with_redelivered_flag(channel: BlockingChannel) -> None:
    channel.queue_declare("again")
    channel.basic_publish("", "again", b"retry me")
    method, _, _ = channel.basic_get("again")
    assert method is not None and not method.redelivered
    channel.basic_nack(method.delivery_tag, requeue=True)
    method, _, body = channel.basic_get("again", auto_ack=True)
    assert method is not None and method.redelivered and body == b"retry me"


def test_reject_dead_letters_with_x_death(channel: BlockingChannel) -> None:
    channel.queue_declare("dlq")
    channel.queue_declare(
        "orders",
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"},
    )
    channel.basic_publish("", "orders", b"bad order")
    method, _, _ = channel.basic_get("orders")
    assert method is not None
    channel.basic_reject(method.delivery_tag, requeue=False)
    method, properties, body = channel.basic_get("dlq", auto_ack=True)
    assert method is not None and body == b"bad order"
    (death,) = properties.headers["x-death"]
    assert death["queue"] == "orders"
    assert death["reason"] == "rejected"
    assert death["count"] == 1
    assert death["exchange"] == ""
    assert death["routing-keys"] == ["orders"]


def test_topic_wildcards(channel: BlockingChannel) -> None:
    channel.exchange_declare("logs", "topic")
    for name, key in [("star", "*.error"), ("hash", "app.#"), ("all", "#")]:
        channel.queue_declare(name)
        channel.queue_bind(name, "logs", key)
    for key in ["app.error", "app.db.info", "web.error", "app"]:
        channel.basic_publish("logs", key, key.encode())

    def drain(queue: str) -> list[str]:
        out = []
        while True:
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append(body.decode())

    assert drain("star") == ["app.error", "web.error"]
    assert drain("hash") == ["app.error", "app.db.info", "app"]
    assert drain("all") == ["app.error", "app.db.info", "web.error", "app"]


def test_mandatory_unroutable_publish_raises_unroutable(channel: BlockingChannel) -> None:
    channel.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError):
        channel.basic_publish("", "no-such-queue", b"lost", mandatory=True)


def test_passive_declare_of_missing_queue_is_404(channel: BlockingChannel) -> None:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        channel.queue_declare("missing", passive=True)
    assert info.value.reply_code == 404
    assert info.value.reply_text == "NOT_FOUND - no queue 'missing' in vhost '/'"


def test_inequivalent_redeclare_is_406(channel: BlockingChannel) -> None:
    channel.queue_declare("q", durable=False)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        channel.queue_declare("q", durable=True)
    assert info.value.reply_code == 406
    assert "inequivalent arg 'durable'" in info.value.reply_text


def test_server_named_exclusive_queue(channel: BlockingChannel) -> None:
    result = channel.queue_declare("", exclusive=True)
    assert result.method.queue.startswith("amq.gen-")


def test_wrong_password_is_an_authentication_error(amqplite_broker: object) -> None:
    port = amqplite_broker.port  # type: ignore[attr-defined]
    params = pika.URLParameters(f"amqp://guest:nope@127.0.0.1:{port}/")
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(params)
