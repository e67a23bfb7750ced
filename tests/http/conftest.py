"""Fixtures for the HTTP tests: a real broker serving AMQP and HTTP in the test's trio run."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
from http_support import Stack

from amqplite.app import serve, start_http


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    with trio.fail_after(20):
        async with serve() as running, trio.open_nursery() as nursery:
            port = await start_http(nursery, running.server, "127.0.0.1", 0)
            yield Stack(running.broker, running.url, port, running.server)
            nursery.cancel_scope.cancel()
