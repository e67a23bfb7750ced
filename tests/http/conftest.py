"""Fixtures for the HTTP tests: a real broker serving AMQP and HTTP in the test's trio run."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
from http_support import Stack

from amqplite.http.server import serve_http
from amqplite.server import serve


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    with trio.fail_after(20):
        async with serve() as running, trio.open_nursery() as nursery:
            wake = running.server.wake_writers
            port = await nursery.start(
                lambda task_status: serve_http(
                    running.broker, port=0, task_status=task_status, on_change=wake
                )
            )
            yield Stack(running.broker, running.url, port, wake)
            nursery.cancel_scope.cancel()
