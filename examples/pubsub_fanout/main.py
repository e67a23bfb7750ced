"""Fanout pub/sub (aio-pika): one publish, a copy in every subscriber's queue.

Two subscribers come from the topology (news.email, news.sms); a third declares its own
exclusive, server-named queue at run time and binds it, as a temporary listener would.
Run a broker with examples/pubsub_fanout/topology.yaml, then:
python examples/pubsub_fanout/main.py   (AMQP_URL overrides the broker URL)
"""

from __future__ import annotations

import asyncio
import os

import aio_pika

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")
HEADLINES = ["broker written in Python", "fanout works", "subscribers rejoice"]


async def main() -> None:
    connection = await aio_pika.connect(URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        news = await channel.get_exchange("news")
        temporary = await channel.declare_queue("", exclusive=True)
        await temporary.bind(news)
        for headline in HEADLINES:
            await news.publish(aio_pika.Message(headline.encode()), routing_key="ignored")
        print(f"published {len(HEADLINES)} headlines")
        for name in ["news.email", "news.sms", temporary.name]:
            queue = await channel.get_queue(name) if name != temporary.name else temporary
            received = []
            for _ in HEADLINES:
                message = await queue.get(timeout=5)
                await message.ack()
                received.append(message.body.decode())
            label = "temporary" if name == temporary.name else name
            print(f"{label} got {len(received)}: {', '.join(received)}")
    print("every subscriber got every headline")


if __name__ == "__main__":
    asyncio.run(main())
