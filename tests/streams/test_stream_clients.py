"""Real clients on stream queues, unchanged: pika, aio-pika and kombu declare a stream,
publish with confirms, consume from an offset with prefetch, and see the offset header."""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
import kombu
import pika
import pika.exceptions
import pytest

STREAM = {"x-queue-type": "stream"}


def test_pika_replays_from_first_and_tails_new_messages(amqplite_url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqplite_url))
    try:
        ch = connection.channel()
        ch.confirm_delivery()
        ch.queue_declare("events", durable=True, arguments=STREAM)
        for i in range(5):
            ch.basic_publish("", "events", f"e{i}".encode())
        ch.basic_qos(prefetch_count=2)
        got: list[tuple[int, bytes, bool]] = []
        for method, props, body in ch.consume(
            "events", arguments={"x-stream-offset": "first"}, inactivity_timeout=5
        ):
            assert method is not None, "timed out waiting for stream deliveries"
            got.append((props.headers["x-stream-offset"], body, method.redelivered))
            ch.basic_ack(method.delivery_tag)
            if len(got) == 5:
                ch.basic_publish("", "events", b"e5")  # a reader at the end gets new ones
            if len(got) == 6:
                break
        ch.cancel()
        assert got == [(i, f"e{i}".encode(), False) for i in range(6)]
    finally:
        if connection.is_open:
            connection.close()


def test_pika_sees_rabbitmq_s_refusals(amqplite_url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqplite_url))
    ch = connection.channel()
    ch.queue_declare("events", durable=True, arguments=STREAM)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.basic_consume("events", lambda *a: None)
        connection.process_data_events(2)
    assert exc.value.reply_code == 406
    ch = connection.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as cexc:
        ch.basic_get("events")
    assert cexc.value.reply_code == 540
    assert "basic.get not supported by stream queues" in cexc.value.reply_text


def test_aio_pika_consumes_from_an_offset(amqplite_url: str) -> None:
    async def main() -> list[tuple[Any, bytes]]:
        connection = await aio_pika.connect(amqplite_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            queue = await channel.declare_queue("ticks", durable=True, arguments=STREAM)
            for i in range(6):
                await channel.default_exchange.publish(aio_pika.Message(f"t{i}".encode()), "ticks")
            await channel.set_qos(prefetch_count=10)
            seen = []
            async with queue.iterator(arguments={"x-stream-offset": 3}) as messages:
                async for message in messages:
                    seen.append((message.headers["x-stream-offset"], message.body))
                    await message.ack()
                    if len(seen) == 3:
                        break
            return seen

    seen = asyncio.run(asyncio.wait_for(main(), 10))
    assert seen == [(3, b"t3"), (4, b"t4"), (5, b"t5")]


def test_kombu_consumer_on_a_stream(amqplite_url: str) -> None:
    queue = kombu.Queue(
        "audit",
        durable=True,
        queue_arguments=STREAM,
        consumer_arguments={"x-stream-offset": "first"},
    )
    got: list[tuple[int, Any]] = []
    with kombu.Connection(amqplite_url) as conn:
        producer = conn.Producer()
        for i in range(4):
            producer.publish({"n": i}, routing_key="audit", declare=[queue], serializer="json")

        def on_message(body: Any, message: Any) -> None:
            got.append((message.headers["x-stream-offset"], body))
            message.ack()

        with conn.Consumer(queue, callbacks=[on_message], prefetch_count=10):
            while len(got) < 4:
                conn.drain_events(timeout=5)
    assert got == [(i, {"n": i}) for i in range(4)]
