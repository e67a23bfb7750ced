"""Management API access rules that mirror the AMQP side: guest from loopback only,
broker-wide totals in the overview, RabbitMQ password hashes exported as RabbitMQ reads them."""

from __future__ import annotations

import base64
import hashlib
import http.client

import pytest
import trio
from addresses import non_loopback_address
from http_support import Stack, add_user

from amqplite.app import serve, start_http


def _status(host: str, port: int, user: str, password: str) -> int:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", "/api/overview", headers={"Authorization": f"Basic {token}"})
        return conn.getresponse().status
    finally:
        conn.close()


async def test_guest_may_use_the_api_only_from_loopback() -> None:
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    with trio.fail_after(20):
        async with serve() as running, trio.open_nursery() as nursery:
            add_user(running.broker, "admin", ("administrator",))
            port = await start_http(nursery, running.server, "0.0.0.0", 0)
            remote = await trio.to_thread.run_sync(_status, address, port, "guest", "guest")
            local = await trio.to_thread.run_sync(_status, "127.0.0.1", port, "guest", "guest")
            admin = await trio.to_thread.run_sync(_status, address, port, "admin", "secret")
            nursery.cancel_scope.cancel()
    assert (remote, local, admin) == (401, 200, 200)


async def test_overview_counts_a_fanout_publish_once(stack: Stack) -> None:
    def publish_to_three_queues(ch: object) -> None:
        ch.exchange_declare("fan", "fanout")  # type: ignore[attr-defined]
        for name in ("f1", "f2", "f3"):
            ch.queue_declare(name)  # type: ignore[attr-defined]
            ch.queue_bind(name, "fan")  # type: ignore[attr-defined]
        ch.confirm_delivery()  # type: ignore[attr-defined]
        ch.basic_publish("fan", "", b"x")  # type: ignore[attr-defined]

    await stack.amqp(publish_to_three_queues)
    overview = await stack.get_json("/api/overview")
    queues = await stack.get_json("/api/queues/%2F")
    assert overview["message_stats"]["publish"] == 1
    assert sum(q["message_stats"]["publish"] for q in queues if q["name"].startswith("f")) == 3
    assert overview["queue_totals"]["messages"] == 3


async def test_rabbitmq_sha512_user_round_trips_in_rabbitmq_format(stack: Stack) -> None:
    salt = b"\x01\x02\x03\x04"
    digest = base64.b64encode(salt + hashlib.sha512(salt + b"s3cret").digest()).decode()
    definitions = {
        "users": [
            {
                "name": "migrated",
                "password_hash": digest,
                "hashing_algorithm": "rabbit_password_hashing_sha512",
                "tags": ["administrator"],
            }
        ],
        "permissions": [
            {"user": "migrated", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
        ],
    }
    assert (await stack.request("POST", "/api/definitions", definitions)).status == 204
    assert (await stack.request("GET", "/api/overview", auth=("migrated", "s3cret"))).status == 200
    assert (await stack.request("GET", "/api/overview", auth=("migrated", "wrong"))).status == 401
    exported = await stack.get_json("/api/definitions")
    (user,) = [u for u in exported["users"] if u["name"] == "migrated"]
    assert user["hashing_algorithm"] == "rabbit_password_hashing_sha512"
    assert user["password_hash"] == digest
