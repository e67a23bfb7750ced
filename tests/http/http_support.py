"""Helpers for the HTTP tests: a client for the API (http.client in a worker thread), pika
access, users, and the dead-letter scenario most tests start from."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar
from urllib.parse import quote

import attrs
import pika  # type: ignore[import-untyped]
import trio

from amqplite.broker import Broker, hash_password
from amqplite.server.listener import AmqpServer

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
    server: AmqpServer
    auth: tuple[str, str] = ("guest", "guest")

    @property
    def wake(self) -> Callable[[], None]:
        """Flush what a change made from outside a connection caused (deliveries...)."""
        return self.server.wake_writers

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: tuple[str, str] | bool | None = True,
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

    async def amqp(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(channel)`` on a fresh pika connection in a worker thread."""

        def go() -> T:
            conn = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
            try:
                return fn(conn.channel())
            finally:
                conn.close()

        return await trio.to_thread.run_sync(go)


_MONITOR_HASH: list[str] = []


def add_user(broker: Broker, name: str, tags: tuple[str, ...], vhost: str | None = "/") -> None:
    """Add ``name`` with password "secret" (hashed once per process: scrypt is slow)."""
    if not _MONITOR_HASH:
        _MONITOR_HASH.append(hash_password("secret"))
    broker.users.add_user(name, _MONITOR_HASH[0], tags)
    if vhost is not None:
        broker.users.set_permissions(name, vhost, ".*", ".*", ".*")


#: pika's BlockingChannel (pika ships no type hints).
Channel: TypeAlias = Any


def dlq_topology(ch: Channel) -> None:
    """work.x --job--> work (DLX dlx) ; other (TTL 0, DLX dlx) ; dlx (fanout) -> dlq."""
    ch.exchange_declare("dlx", "fanout")
    ch.queue_declare("dlq")
    ch.queue_bind("dlq", "dlx")
    ch.exchange_declare("work.x", "direct")
    ch.queue_declare("work", arguments={"x-dead-letter-exchange": "dlx"})
    ch.queue_bind("work", "work.x", "job")
    ch.queue_declare("other", arguments={"x-dead-letter-exchange": "dlx", "x-message-ttl": 0})


def reject_all(ch: Channel, queue: str = "work") -> int:
    count = 0
    while True:
        method, _, _ = ch.basic_get(queue)
        if method is None:
            return count
        ch.basic_reject(method.delivery_tag, requeue=False)
        count += 1


def make_dead_letters(ch: Channel) -> None:
    """Three rejected messages from ``work`` and two expired ones from ``other`` in ``dlq``."""
    dlq_topology(ch)
    for i in range(3):
        props = pika.BasicProperties(
            headers={"tenant": "a" if i < 2 else "b"}, message_id=f"job-{i}"
        )
        ch.basic_publish("work.x", "job", f"job {i}".encode(), props)
    assert reject_all(ch) == 3
    for i in range(2):
        ch.basic_publish("", "other", f"late {i}".encode())
