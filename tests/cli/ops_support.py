"""Helpers for the CLI tests: a real amqplite (AMQP + HTTP API) in a background thread.

The CLI is synchronous (blocking sockets, urllib), so the broker runs in its own trio
thread, the way ``amqplite serve`` would, on ephemeral 127.0.0.1 ports.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from amqplite.app import serve, start_http

DATA = Path(__file__).parent / "data"


@attrs.define
class Stack:
    url: str  # amqp://guest:guest@127.0.0.1:PORT/
    api: str  # http://guest:guest@127.0.0.1:PORT
    running: Any  # amqplite.app.RunningBroker

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.running.call(fn, *args)


@contextmanager
def stack_in_thread() -> Iterator[Stack]:
    started = threading.Event()
    box: dict[str, Any] = {}

    async def run() -> None:
        try:
            async with serve() as running, trio.open_nursery() as nursery:
                port = await start_http(nursery, running.server, "127.0.0.1", 0)
                running.trio_token = trio.lowlevel.current_trio_token()
                stop = trio.Event()
                box.update(
                    stack=Stack(running.url, f"http://guest:guest@127.0.0.1:{port}", running),
                    stop=stop,
                )
                started.set()
                await stop.wait()
                nursery.cancel_scope.cancel()
        except BaseException as exc:
            box["error"] = exc
            started.set()
            raise

    def target() -> None:
        try:
            trio.run(run)
        except BaseException:
            started.set()

    thread = threading.Thread(target=target, name="amqplite-ops-test", daemon=True)
    thread.start()
    assert started.wait(20), "broker did not start"
    if "error" in box:
        raise box["error"]
    stack: Stack = box["stack"]
    try:
        yield stack
    finally:
        token = stack.running.trio_token
        try:
            trio.from_thread.run_sync(box["stop"].set, trio_token=token)
        except trio.RunFinishedError:
            pass
        thread.join(10)


@attrs.frozen
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., Result]


def rabbitmq_urls() -> tuple[str, str]:
    """(AMQP URL, API URL) of a real RabbitMQ, or skip the test."""
    url = os.environ.get("AMQPLITE_RABBITMQ_URL")
    api = os.environ.get("AMQPLITE_RABBITMQ_API")
    if not url or not api:
        pytest.skip("set AMQPLITE_RABBITMQ_URL and AMQPLITE_RABBITMQ_API to test against RabbitMQ")
    return url, api
