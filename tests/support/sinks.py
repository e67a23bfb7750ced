"""A DeliverySink that records what the broker core pushed to it (a real sink, not a mock)."""

from __future__ import annotations

from amqplite.broker.queue import QueueEntry
from amqplite.message import Message, MessageRun

Delivery = tuple[str, int, bool, str, str, Message]


class RecordingSink:
    """Records deliveries and server-side consumer cancels, for tests that drive the core."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.cancelled: list[str] = []
        self.writable = True

    def deliver(
        self,
        consumer_tag: str,
        delivery_tag: int,
        redelivered: bool,
        exchange: str,
        routing_key: str,
        message: Message,
    ) -> None:
        self.deliveries.append(
            (consumer_tag, delivery_tag, redelivered, exchange, routing_key, message)
        )

    def deliver_many(self, consumer_tag: str, delivery_tag: int, entries: list[QueueEntry]) -> None:
        for entry in entries:
            message = entry.message
            self.deliver(
                consumer_tag,
                delivery_tag,
                entry.redelivered,
                message.exchange,
                message.routing_key,
                message,
            )
            delivery_tag += 1

    def deliver_batch(self, consumer_tag: str, delivery_tag: int, messages: MessageRun) -> int:
        for i in range(len(messages.bodies)):
            if i and not self.writable:
                return i
            message = messages.message(i)
            self.deliver(
                consumer_tag,
                delivery_tag + i,
                False,
                message.exchange,
                message.routing_key,
                message,
            )
        return len(messages.bodies)

    def cancel_consumer(self, consumer_tag: str) -> None:
        self.cancelled.append(consumer_tag)

    @property
    def bodies(self) -> list[bytes]:
        return [d[5].body for d in self.deliveries]

    @property
    def tags(self) -> list[int]:
        return [d[1] for d in self.deliveries]

    def take(self) -> list[Delivery]:
        out, self.deliveries = self.deliveries, []
        return out
