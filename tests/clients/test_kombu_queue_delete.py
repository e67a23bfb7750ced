"""kombu/py-amqp: deleting the queue a channel consumes from, from that same channel.

kombu's own integration suite (test_ack_from_another_thread) does this; py-amqp raises
ConsumerCancelled if the server's basic.cancel arrives before queue.delete-ok, so the
cancel must follow the -ok, as RabbitMQ sends it.
"""

from __future__ import annotations

from typing import Any

import amqp.exceptions
import pytest
from kombu import Connection, Consumer, Producer, Queue


def test_deleting_a_consumed_queue_from_its_channel_cancels_after_delete_ok(
    amqplite_url: str,
) -> None:
    queue = Queue("k.deleted.by.consumer", routing_key="k.deleted.by.consumer")
    with Connection(amqplite_url) as conn:
        Producer(conn.channel()).publish({"n": 1}, routing_key=queue.routing_key, declare=[queue])
        got: list[Any] = []
        consumer = Consumer(conn, [queue], callbacks=[lambda body, message: got.append(body)])
        with consumer:
            conn.drain_events(timeout=5)
            assert got == [{"n": 1}]
            # Must not raise: the server's cancel comes after delete-ok...
            assert queue(consumer.channel).delete() == 0
            # ...and then reaches the client as the consumer's cancellation.
            with pytest.raises(amqp.exceptions.ConsumerCancelled):
                conn.drain_events(timeout=5)
