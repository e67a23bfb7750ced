"""aio-pika (asyncio) against amqplite; the tests are sync and run their own event loop,
since this suite's async tests run under trio."""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
import aio_pika.exceptions
import pytest


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_confirms_prefetch_ack_nack_reject_and_dead_letters(amqplite_url: str) -> None:
    async def main() -> None:
        connection = await aio_pika.connect_robust(amqplite_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            await channel.set_qos(prefetch_count=2)
            dead = await channel.declare_queue("dead")
            exchange = await channel.declare_exchange("tasks", aio_pika.ExchangeType.TOPIC)
            queue = await channel.declare_queue(
                "tasks",
                arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"},
            )
            await queue.bind(exchange, "task.#")
            for i in range(3):
                await exchange.publish(aio_pika.Message(f"t{i}".encode()), f"task.{i}.run")
            seen = []
            async with queue.iterator() as messages:
                async for message in messages:
                    seen.append(message.body)
                    if len(seen) == 1:
                        await message.ack()
                    elif len(seen) == 2:
                        await message.nack(requeue=False)
                    else:
                        await message.reject(requeue=False)
                        break
            assert seen == [b"t0", b"t1", b"t2"]
            deaths = []
            for _ in range(2):
                message = await dead.get(timeout=5)
                await message.ack()
                deaths.append(message.headers["x-death"][0])
            assert [d["reason"] for d in deaths] == ["rejected", "rejected"]
            assert deaths[0]["routing-keys"] == ["task.1.run"]
            assert deaths[0]["exchange"] == "tasks"

    run(main())


def test_mandatory_unroutable_publish_is_returned(amqplite_url: str) -> None:
    async def main() -> None:
        connection = await aio_pika.connect(amqplite_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            with pytest.raises(aio_pika.exceptions.DeliveryError):
                await channel.default_exchange.publish(
                    aio_pika.Message(b"x"), "nowhere", mandatory=True
                )

    run(main())


def test_errors_surface_as_channel_closed(amqplite_url: str) -> None:
    async def main() -> None:
        connection = await aio_pika.connect(amqplite_url)
        async with connection:
            channel = await connection.channel()
            with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity) as missing:
                await channel.declare_queue("missing", passive=True)
            assert "NOT_FOUND - no queue 'missing'" in str(missing.value)
            channel = await connection.channel()
            await channel.declare_queue("q", durable=False)
            with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
                await channel.declare_queue("q", durable=True)

    run(main())
