"""A consumer: one basic.consume subscription of a channel on a queue (broker layer).

Consumers are hot-path objects looked at for every dispatch, so they are plain slotted
classes holding only what dispatch needs: credit (prefetch and unacked count), priority
and the channel to deliver through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from amqplite.message import FieldTable

if TYPE_CHECKING:
    from amqplite.broker.channel import Channel
    from amqplite.broker.queue import Queue, QueueEntry


#: The most deliveries :meth:`Consumer.credit` grants at once: the sink's ``writable`` is
#: asked once per batch, so a batch may take the output this far past its high-water mark
#: (and ``Queue.BATCH_BYTES`` of bodies at most).
BATCH = 256


class Consumer:
    __slots__ = (
        "arguments",
        "channel",
        "deliver",
        "deliver_many",
        "exclusive",
        "no_ack",
        "prefetch",
        "priority",
        "queue",
        "seq",
        "tag",
        "unacked",
    )

    def __init__(
        self,
        tag: str,
        channel: Channel,
        queue: Queue,
        *,
        no_ack: bool,
        exclusive: bool,
        prefetch: int,
        priority: int,
        arguments: FieldTable,
        seq: int,
        deliver: Callable[[Consumer, Queue, QueueEntry], None],
        deliver_many: Callable[[Consumer, Queue, list[QueueEntry]], None],
    ) -> None:
        self.tag = tag
        self.channel = channel
        self.queue = queue
        self.no_ack = no_ack
        self.exclusive = exclusive
        self.prefetch = prefetch  # 0 = unlimited
        self.priority = priority
        self.arguments = arguments
        self.unacked = 0
        self.seq = seq  # registration order, for single-active-consumer hand-over
        #: Hands an entry to this consumer (its channel numbers it and calls the sink);
        #: the queue calls ``consumer.deliver(consumer, queue, entry)`` when it dispatches.
        self.deliver = deliver
        #: The same for a batch of entries, in order (``Queue.dispatch`` with one consumer).
        self.deliver_many = deliver_many

    def can_take(self) -> bool:
        """Whether one more delivery may go to this consumer right now."""
        channel = self.channel
        # Credit first: a consumer with a backlog is asked after every publish and mostly
        # has none, and this way the sink (whose ``writable`` is a property) is not asked.
        # (A sink over its high-water mark then learns it only once credit frees up; it
        # only needs to when a delivery could follow.)
        if not self.no_ack:
            if self.prefetch and self.unacked >= self.prefetch:
                return False
            limit = channel.global_prefetch
            if limit and channel.consumer_unacked >= limit:
                return False
        return channel.active and channel.sink.writable

    def credit(self) -> int:
        """How many deliveries may go to this consumer right now, at most ``BATCH``
        (what :meth:`can_take` says, for a batch: the sink is asked once)."""
        channel = self.channel
        if self.no_ack or not self.prefetch:
            n = BATCH
        else:
            n = self.prefetch - self.unacked
            if n <= 0:
                return 0
            if n > BATCH:
                n = BATCH
        if not self.no_ack:
            limit = channel.global_prefetch
            if limit and limit - channel.consumer_unacked < n:
                n = limit - channel.consumer_unacked
                if n <= 0:
                    return 0
        return n if channel.active and channel.sink.writable else 0

    def __repr__(self) -> str:
        return f"<Consumer {self.tag!r} on {self.queue.name!r}>"
