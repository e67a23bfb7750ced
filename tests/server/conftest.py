"""Fixtures for the server tests: an embedded broker in the test's own trio run."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from rawamqp import RawClient

from amqplite.app import RunningBroker, serve


@pytest.fixture
async def running() -> AsyncIterator[RunningBroker]:
    async with serve(shutdown_timeout=0.2) as r:
        yield r


@pytest.fixture
async def witness(running: RunningBroker) -> AsyncIterator[RawClient]:
    """A second, well-behaved connection that must keep working whatever a test does."""
    client = await RawClient.connect(running.port)
    await client.handshake()
    await client.open_channel(1)
    yield client
    await client.aclose()
