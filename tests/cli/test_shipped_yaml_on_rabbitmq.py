"""Every shipped YAML file applies to RabbitMQ unchanged, and routes the same as on amqplite.

The promise of the topology file is that it follows you to RabbitMQ when you outgrow one
machine.  Each file in ``config/`` and ``examples/`` is applied with the real CLI to a
fresh amqplite (``--api``) and to a real RabbitMQ (``--url``, the AMQP path a user with
no management plugin takes), each time into a vhost of its own (``--vhost``) so runs do
not meet; then the same messages are published to every exchange the file declares, with
routing keys made from its bindings, and every queue must hold the same messages on both.
Skipped unless AMQPLITE_RABBITMQ_URL / AMQPLITE_RABBITMQ_API are set (CI sets them).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from ops_support import Cli, Stack, rabbitmq_urls

from amqplite.client import Connection, connect
from amqplite.client.http import ApiClient, quote
from amqplite.topology import Config, load_config

pytestmark = pytest.mark.rabbitmq

REPO = Path(__file__).resolve().parents[2]
FILES = sorted(
    [*REPO.glob("config/*.yaml"), *REPO.glob("examples/*/topology.yaml")],
    key=lambda p: str(p.relative_to(REPO)),
)


@pytest.fixture
def rabbit_vhost() -> Iterator[tuple[str, str, str]]:
    """(amqp url, api url, vhost): a fresh RabbitMQ vhost guest may use, deleted afterwards."""
    url, api = rabbitmq_urls()
    vhost = f"amqplite-shipped-{secrets.token_hex(3)}"
    client = ApiClient(api)
    client.put(f"/api/vhosts/{quote(vhost)}", {})
    client.put(
        f"/api/permissions/{quote(vhost)}/guest", {"configure": ".*", "write": ".*", "read": ".*"}
    )
    try:
        yield url, api, vhost
    finally:
        client.delete(f"/api/vhosts/{quote(vhost)}")


def _routing_keys(pattern: str) -> list[str]:
    """Keys a binding key should match: wildcards replaced by real words."""
    words = [{"*": "w", "#": "x.y"}.get(w, w) for w in pattern.split(".")] if pattern else []
    keys = {pattern, ".".join(words)}
    if "#" in pattern.split("."):
        keys.add(".".join(w for w in pattern.split(".") if w != "#") or "k")
    return sorted(k for k in keys if "*" not in k.split(".") and "#" not in k.split("."))


def _messages(config: Config) -> list[tuple[str, str]]:
    vhost = config.vhost(config.server.default_vhost)
    assert vhost is not None
    keys = {"", "nothing.matches.this"}
    for b in vhost.bindings:
        keys.update(_routing_keys(b.routing_key))
    return [(e.name, key) for e in vhost.exchanges if not e.internal for key in sorted(keys)]


def _publish_and_collect(url: str, config: Config) -> dict[str, list[str]]:
    vhost = config.vhost(config.server.default_vhost)
    assert vhost is not None
    with connect(url) as conn, conn.channel() as ch:
        ch.confirm_select()
        for exchange, key in _messages(config):
            ch.publish(exchange, key, f"{exchange}|{key}".encode())
        assert ch.wait_for_confirms(30).ok
        got: dict[str, list[str]] = {}
        for q in vhost.queues:
            if q.queue_type == "stream":
                got[q.name] = _read_stream(conn, q.name)
                continue
            bodies = []
            while (delivery := ch.basic_get(q.name, no_ack=True)) is not None:
                bodies.append(delivery.body.decode())
            got[q.name] = sorted(bodies)
    return got


def _read_stream(conn: Connection, name: str) -> list[str]:
    """A stream has no basic.get (540): append an end marker, read from "first" up to it."""
    with conn.channel() as ch:
        ch.confirm_select()
        ch.publish("", name, b"--end--")
        assert ch.wait_for_confirms(30).ok
        ch.basic_qos(1000)
        ch.basic_consume(name, arguments={"x-stream-offset": "first"})
        bodies = []
        while (d := ch.next_delivery(30)) is not None and d.body != b"--end--":
            bodies.append(d.body.decode())
            ch.basic_ack(d.delivery_tag)
    return sorted(bodies)


def _vhost_url(base: str, vhost: str) -> str:
    return base.rstrip("/") + "/" + quote(vhost)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_file_applies_to_rabbitmq_and_routes_the_same(
    cli: Cli, stack: Stack, rabbit_vhost: tuple[str, str, str], path: Path
) -> None:
    url, _api, vhost = rabbit_vhost
    config = load_config(path)
    r = cli("topology", "apply", str(path), "--url", url, "--vhost", vhost)
    assert r.code == 0, r.out + r.err
    r = cli("topology", "plan", str(path), "--url", url, "--vhost", vhost)
    assert r.code == 0 and " 0 to create" in r.out.splitlines()[-1], r.out
    r = cli("topology", "apply", str(path), "--api", stack.api, "--vhost", vhost)
    if r.code != 0 and "stream queues are not supported by amqplite" in r.err:
        pytest.skip("amqplite has no stream queues yet")
    assert r.code == 0, r.out + r.err
    if not config.users:  # then guest has no permissions on the new vhost yet (as on RabbitMQ)
        users = stack.running.broker.users
        stack.call(users.set_permissions, "guest", vhost, ".*", ".*", ".*")
    on_rabbit = _publish_and_collect(_vhost_url(url, vhost), config)
    on_amqplite = _publish_and_collect(_vhost_url(stack.url, vhost), config)
    assert on_amqplite == on_rabbit
    assert any(on_rabbit.values()) or not config.vhost(config.server.default_vhost).queues  # type: ignore[union-attr]
