"""Fixtures for the HTTP tests: a real broker serving AMQP and HTTP in the test's trio run,
plus small blocking clients (http.client, pika) run in worker threads."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar
from urllib.parse import quote

import attrs
import pika
import pytest
import trio

from amqplite.broker import Broker, hash_password
from amqplite.http.server import serve_http
from amqplite.server import serve

T = TypeVar("T")


@attrs.frozen
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def q(name: str) -> str:
    """URL-quote one path segment (vhost "/" is "%2F")."""
    return quote(name, safe="")


@attrs.define
class Stack:
    broker: Broker
    amqp_url: str
    http_port: int
    wake: Callable[[], None]
    auth: tuple[str, str] = ("guest", "guest")

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: tuple[str, str] | None | bool = True,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        credentials = self.auth if auth is True else (auth or None)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        hdrs = dict(headers or {})
        if credentials:
            token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
            hdrs["Authorization"] = f"Basic {token}"
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")

        def go() -> Reply:
            conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
            try:
                conn.request(method, path, body=data, headers=hdrs)
                resp = conn.getresponse()
                return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
            finally:
                conn.close()

        return await trio.to_thread.run_sync(go)

    async def get_json(self, path: str) -> Any:
        reply = await self.request("GET", path)
        assert reply.status == 200, (path, reply)
        return reply.json()

    async def amqp(self, fn: Callable[[pika.adapters.blocking_connection.BlockingChannel], T]) -> T:
        """Run ``fn(channel)`` on a fresh pika connection in a worker thread."""

        def go() -> T:
            conn = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
            try:
                return fn(conn.channel())
            finally:
                conn.close()

        return await trio.to_thread.run_sync(go)


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    with trio.fail_after(20):
        async with serve() as running, trio.open_nursery() as nursery:
            wake = running.server.wake_writers
            port = await nursery.start(
                lambda task_status: serve_http(running.broker, port=0, task_status=task_status, on_change=wake)
            )
            yield Stack(running.broker, running.url, port, wake)
            nursery.cancel_scope.cancel()


_MONITOR_HASH: list[str] = []


def add_user(broker: Broker, name: str, tags: tuple[str, ...], vhost: str | None = "/") -> None:
    """Add ``name`` with password "secret" (hashed once per process: scrypt is slow)."""
    if not _MONITOR_HASH:
        _MONITOR_HASH.append(hash_password("secret"))
    broker.users.add_user(name, _MONITOR_HASH[0], tags)
    if vhost is not None:
        broker.users.set_permissions(name, vhost, ".*", ".*", ".*")
