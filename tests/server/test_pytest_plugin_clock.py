"""The pytest plugin's ``amqplite_clock``: a test moves the broker's time and what is due runs.

These use the plugin's own fixtures exactly as a project depending on amqplite would, with
pika as the client; time moves only through ``amqplite_clock.advance``, never by sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pika  # type: ignore[import-untyped]
import pytest

from amqplite.pytest_plugin import BrokerClock


@pytest.fixture
def channel(amqplite_url: str) -> Iterator[Any]:
    conn = pika.BlockingConnection(pika.URLParameters(amqplite_url))
    ch = conn.channel()
    ch.confirm_delivery()
    yield ch
    conn.close()


def first_offset(ch: Any, queue: str) -> int:
    """The offset a consumer attached at "first" gets first."""
    ch.basic_qos(prefetch_count=10)
    for method, props, _ in ch.consume(queue, arguments={"x-stream-offset": "first"}):
        ch.basic_ack(method.delivery_tag)
        ch.cancel()
        return int(props.headers["x-stream-offset"])
    raise AssertionError("unreachable")


def test_advancing_the_clock_applies_stream_retention(
    amqplite_clock: BrokerClock, channel: Any
) -> None:
    channel.queue_declare(
        "events", durable=True, arguments={"x-queue-type": "stream", "x-max-age": "1h"}
    )
    for i in range(3):
        channel.basic_publish("", "events", f"old {i}".encode())
    assert first_offset(channel, "events") == 0
    amqplite_clock.advance(30 * 60)  # half the age: everything is kept
    channel.basic_publish("", "events", b"recent")
    assert first_offset(channel, "events") == 0
    amqplite_clock.advance(45 * 60)  # the old ones are 75 min old, "recent" 45 min
    channel.basic_publish("", "events", b"new")
    assert first_offset(channel, "events") == 3
    assert channel.queue_declare("events", passive=True).method.message_count == 2


def test_advancing_the_clock_expires_messages_by_ttl(
    amqplite_clock: BrokerClock, channel: Any
) -> None:
    channel.queue_declare("jobs", arguments={"x-message-ttl": 60_000})
    channel.basic_publish("", "jobs", b"soon stale")
    before = amqplite_clock.now
    assert amqplite_clock.advance(59) == before + 59
    assert channel.queue_declare("jobs", passive=True).method.message_count == 1
    amqplite_clock.advance(2)
    assert channel.queue_declare("jobs", passive=True).method.message_count == 0


def test_without_the_clock_fixture_the_broker_reads_the_system_clock(
    amqplite_broker: Any,
) -> None:
    assert amqplite_broker.broker.clock is time.time
