"""Values the broker core returns to the session and the delivery sink protocol (broker layer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import attrs

from amqplite.message import Message, MessageRun

if TYPE_CHECKING:
    from amqplite.broker.queue import QueueEntry


@attrs.frozen(slots=True)
class PublishResult:
    """What happened to one publish.

    ``routed`` False → basic.return 312 NO_ROUTE if mandatory; ``rejected`` True → a queue
    with x-overflow=reject-publish refused it (confirm with basic.nack); ``durable_write``
    True → written to the store, confirm only after the store syncs.
    """

    routed: bool
    queues: int
    rejected: bool = False
    durable_write: bool = False


#: What ``Channel.publish`` returns when the message went to one stream queue and nothing
#: else: publishes repeating it (same exchange, routing key and properties) may follow
#: through ``Channel.publish_repeated``.  Compare with ``is``.
ROUTED_STREAM = PublishResult(routed=True, queues=1, durable_write=True)

#: What ``Channel.publish`` returns in tx mode: the publish waits for tx.commit, whose
#: results say where it went.  Compare with ``is``.
TX_BUFFERED = PublishResult(routed=True, queues=0)


@attrs.frozen(slots=True)
class GetResult:
    """basic.get-ok: the delivery and the number of ready messages left in the queue."""

    delivery_tag: int
    redelivered: bool
    exchange: str
    routing_key: str
    message: Message
    message_count: int


@attrs.frozen(slots=True)
class DeclareOk:
    """queue.declare-ok: the (possibly server-generated) name and the queue's counts."""

    queue: str
    message_count: int
    consumer_count: int


class DeliverySink(Protocol):
    """What the session gives each channel so the core can push deliveries to it."""

    def deliver(
        self,
        consumer_tag: str,
        delivery_tag: int,
        redelivered: bool,
        exchange: str,
        routing_key: str,
        message: Message,
    ) -> None: ...

    def deliver_many(self, consumer_tag: str, delivery_tag: int, entries: list[QueueEntry]) -> None:
        """:meth:`deliver` for each of ``entries`` in order, tagged ``delivery_tag``,
        ``delivery_tag + 1``... (a queue's batch for one consumer; each entry's message
        is delivered with its own exchange and routing key)."""

    def deliver_batch(self, consumer_tag: str, delivery_tag: int, messages: MessageRun) -> int:
        """Deliver ``messages`` to one consumer, tags from ``delivery_tag`` up, none
        redelivered (a stream reader's run), as :meth:`deliver` would one by one while
        :attr:`writable` stays true -- the first always goes.  Returns how many went."""
        ...

    def cancel_consumer(self, consumer_tag: str) -> None:
        """Server-side cancel (the queue went away): send basic.cancel to the client."""

    @property
    def writable(self) -> bool:
        """False while the connection's output is over its high-water mark."""
        ...
