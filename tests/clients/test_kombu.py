"""kombu over its py-amqp transport against amqplite."""

from __future__ import annotations

from typing import Any

import amqp.exceptions
import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue


def test_kombu_publish_consume_ack_requeue_reject_and_dead_letter(amqplite_url: str) -> None:
    with Connection(amqplite_url, transport_options={"confirm_publish": True}) as conn:
        channel = conn.channel()
        events = Exchange("k.events", type="topic", durable=False)
        dead = Queue("k.dead", exchange=Exchange("", type="direct"), routing_key="k.dead")
        work = Queue(
            "k.work",
            exchange=events,
            routing_key="order.*",
            queue_arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "k.dead"},
        )
        dead(channel).declare()
        work(channel).declare()
        returned: list[Any] = []
        producer = Producer(channel, exchange=events, on_return=lambda *a: returned.append(a))
        for key in ["order.created", "order.paid", "order.shipped", "invoice.sent"]:
            producer.publish({"key": key}, routing_key=key, serializer="json")
        producer.publish({"x": 1}, routing_key="nobody.home", mandatory=True)
        assert returned and returned[0][0].args[0] == 312

        got: list[str] = []

        def on_message(body: dict[str, str], message: Any) -> None:
            got.append(body["key"])
            if body["key"] == "order.created":
                message.ack()
            elif body["key"] == "order.paid" and not message.delivery_info["redelivered"]:
                message.requeue()
            elif body["key"] == "order.paid":
                message.ack()
            else:
                message.reject()  # requeue=False: dead-lettered

        with Consumer(channel, [work], callbacks=[on_message], prefetch_count=2):
            while len(got) < 4:
                conn.drain_events(timeout=5)
        assert sorted(got) == ["order.created", "order.paid", "order.paid", "order.shipped"]

        message = dead(channel).get(no_ack=True)
        assert message is not None
        assert message.payload == {"key": "order.shipped"}
        (death,) = message.headers["x-death"]
        assert (death["queue"], death["reason"], death["count"]) == ("k.work", "rejected", 1)


def test_kombu_errors_are_amqp_exceptions(amqplite_url: str) -> None:
    with Connection(amqplite_url) as conn:
        channel = conn.channel()
        with pytest.raises(amqp.exceptions.NotFound):
            Queue("k.missing", channel=channel).queue_declare(passive=True)
        channel = conn.channel()
        Queue("k.q", durable=False, channel=channel).declare()
        with pytest.raises(amqp.exceptions.PreconditionFailed):
            Queue("k.q", durable=True, channel=channel).declare()
