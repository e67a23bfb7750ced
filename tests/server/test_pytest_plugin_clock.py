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

from amqplite.server.pytest_plugin import BrokerClock


@pytest.fixture
def channel(amqplite_url: str) -> Iterator[Any]:
    conn = pika.BlockingConnection(pika.URLParameters(amqplite_url))
    ch = conn.channel()
    ch.confirm_delivery()
    yield ch
    conn.close()


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
