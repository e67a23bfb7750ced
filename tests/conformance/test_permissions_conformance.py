"""Users, vhosts, permissions, topic permissions and limits, managed through RabbitMQ's
HTTP endpoints and enforced on AMQP, with RabbitMQ's status codes, reply codes and texts.

Every scenario runs against amqplite (AMQP + its management API) and, when
AMQPLITE_RABBITMQ_URL / AMQPLITE_RABBITMQ_API name one, against a real RabbitMQ.  Where
amqplite deliberately goes further than RabbitMQ 3.10 (topic permissions checked on CC/BCC
keys, passive declares refused without permission, the permission named in topic
refusals, as newer RabbitMQ does) the amqplite-only tests are in
tests/server/test_permissions_and_limits_over_amqp.py.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import attrs
import pika
import pika.exceptions
import pytest

from amqplite.app import run_in_thread

RABBITMQ_URL = os.environ.get("AMQPLITE_RABBITMQ_URL")
RABBITMQ_API = os.environ.get("AMQPLITE_RABBITMQ_API")


@attrs.define
class Target:
    """One broker: where its AMQP port and management API are, and what a test created."""

    amqp: str  # host:port
    api: str  # http://user:pass@host:port
    vhosts: list[str] = attrs.Factory(list)
    users: list[str] = attrs.Factory(list)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        parts = urlsplit(self.api)
        token = base64.b64encode(f"{parts.username}:{parts.password}".encode()).decode()
        request = urllib.request.Request(
            f"http://{parts.hostname}:{parts.port}/api{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"content-type": "application/json", "authorization": f"Basic {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                status, raw = reply.status, reply.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        return status, (json.loads(raw) if raw else None)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, reply = self.call(method, path, body)
        assert status in (200, 201, 204), (method, path, status, reply)
        return reply

    def vhost(self, base: str) -> str:
        name = f"perms.{uuid.uuid4().hex[:8]}.{base}"
        assert self.call("PUT", f"/vhosts/{quote(name, safe='')}", {})[0] == 201
        self.vhosts.append(name)
        return name

    def user(self, base: str, vhost: str, perms: tuple[str, str, str] = (".*", ".*", ".*")) -> str:
        name = f"perms.{uuid.uuid4().hex[:8]}.{base}"
        assert self.call("PUT", f"/users/{name}", {"password": "pw", "tags": ""})[0] == 201
        self.users.append(name)
        self.set_permissions(vhost, name, perms)
        return name

    def set_permissions(self, vhost: str, user: str, perms: tuple[str, str, str]) -> int:
        body = dict(zip(("configure", "write", "read"), perms, strict=True))
        status, reply = self.call("PUT", f"/permissions/{quote(vhost, safe='')}/{user}", body)
        assert status in (201, 204), reply
        return status

    def connect(self, user: str, vhost: str) -> pika.BlockingConnection:
        url = f"amqp://{quote(user, safe='')}:pw@{self.amqp}/{quote(vhost, safe='')}"
        return pika.BlockingConnection(pika.URLParameters(url))

    def cleanup(self) -> None:
        for user in self.users:
            self.call("DELETE", f"/users/{user}")
        for vhost in self.vhosts:
            self.call("DELETE", f"/vhosts/{quote(vhost, safe='')}")


@pytest.fixture(
    params=[
        "amqplite",
        pytest.param(
            "rabbitmq",
            marks=[
                pytest.mark.rabbitmq,
                pytest.mark.skipif(
                    not (RABBITMQ_URL and RABBITMQ_API),
                    reason="AMQPLITE_RABBITMQ_URL / AMQPLITE_RABBITMQ_API are not set",
                ),
            ],
        ),
    ]
)
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "rabbitmq":
        assert RABBITMQ_URL and RABBITMQ_API
        parts = urlsplit(RABBITMQ_URL)
        found = Target(f"{parts.hostname}:{parts.port or 5672}", RABBITMQ_API)
        try:
            yield found
        finally:
            found.cleanup()
        return
    with run_in_thread(http_port=0, shutdown_timeout=0.2) as running:
        yield Target(
            f"127.0.0.1:{running.port}", f"http://guest:guest@127.0.0.1:{running.http_port}"
        )


def closed_with(fn: Callable[[], object]) -> tuple[int, str]:
    """The reply code and text the broker closed a channel or connection with."""
    try:
        fn()
    except (
        pika.exceptions.ChannelClosedByBroker,
        pika.exceptions.ConnectionClosedByBroker,
    ) as exc:
        return exc.reply_code, exc.reply_text
    except pika.exceptions.ProbableAccessDeniedError as exc:
        # Refused at connection.open: pika keeps the close only as text.
        inner = str(exc.args[0])
        code = int(inner.split("(", 1)[1].split(")", 1)[0])
        return code, inner.split('"', 1)[1].rsplit('"', 1)[0]
    raise AssertionError("the broker did not refuse")


def wait_for_close(conn: pika.BlockingConnection) -> None:
    """Read until the broker closes ``conn`` (RabbitMQ does it asynchronously); the close
    surfaces as ConnectionClosedByBroker."""
    deadline = time.monotonic() + 15
    while conn.is_open and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.2)
    conn.channel()


def test_vhost_user_and_permission_endpoints(target: Target) -> None:
    vhost = target.vhost("v")
    qv = quote(vhost, safe="")
    assert target.call("PUT", f"/vhosts/{qv}", {})[0] == 204  # exists already
    user = target.user("u", vhost, ("^c", "^w", "^r"))
    assert target.set_permissions(vhost, user, ("^c", "^w", "^r")) == 204
    expected = {"user": user, "vhost": vhost, "configure": "^c", "write": "^w", "read": "^r"}
    assert target.ok("GET", f"/permissions/{qv}/{user}") == expected
    assert expected in target.ok("GET", "/permissions")
    assert [p["user"] for p in target.ok("GET", f"/vhosts/{qv}/permissions")].count(user) == 1
    assert [p["vhost"] for p in target.ok("GET", f"/users/{user}/permissions")] == [vhost]
    got = target.ok("GET", f"/users/{user}")
    assert (got["name"], got["tags"], got["limits"]) == (user, [], {})
    assert "password" not in got
    body = {"configure": ".*", "write": ".*", "read": ".*"}
    assert target.call("PUT", f"/permissions/{qv}/nobody-{uuid.uuid4().hex}", body) == (
        400,
        {"error": "bad_request", "reason": "vhost_or_user_not_found"},
    )
    assert (
        target.call("PUT", f"/permissions/no-such-vhost-{uuid.uuid4().hex}/{user}", body)[0] == 400
    )
    assert target.call("PUT", f"/permissions/{qv}/{user}", {**body, "configure": "("})[0] == 400
    assert target.call("PUT", f"/permissions/{qv}/{user}", {"configure": ".*"})[0] == 400
    assert target.call("DELETE", f"/permissions/{qv}/{user}")[0] == 204
    assert target.call("GET", f"/permissions/{qv}/{user}")[0] == 404
    assert target.call("DELETE", f"/users/{user}")[0] == 204
    assert target.call("DELETE", f"/users/{user}")[0] == 404
    assert target.call("GET", f"/users/{user}")[0] == 404


def test_permissions_are_searched_and_checked_at_the_next_operation(target: Target) -> None:
    vhost = target.vhost("v")
    user = target.user("u", vhost, ("orders", ".*", ".*"))
    conn = target.connect(user, vhost)
    ch = conn.channel()
    ch.queue_declare("new-orders-eu", auto_delete=True)  # a search, not a full match
    code, text = closed_with(lambda: ch.queue_declare("invoices"))
    assert (code, text) == (
        403,
        f"ACCESS_REFUSED - access to queue 'invoices' in vhost '{vhost}' refused for user '{user}'",
    )
    ch = conn.channel()
    target.set_permissions(vhost, user, ("", ".*", ".*"))
    code, _ = closed_with(lambda: ch.queue_declare("new-orders-us"))
    assert code == 403  # same connection, same channel: the new permission applies
    conn.close()


def test_topic_permission_endpoints_and_refusals(target: Target) -> None:
    vhost = target.vhost("v")
    qv = quote(vhost, safe="")
    user = target.user("u", vhost)
    path = f"/topic-permissions/{qv}/{user}"
    assert target.call("PUT", path, {"exchange": "amq.topic", "write": "^ok\\."})[0] == 400
    topic = {"exchange": "amq.topic", "write": "^ok\\.", "read": "^{username}\\."}
    assert target.call("PUT", path, topic)[0] == 201
    listed = [{"user": user, "vhost": vhost, **topic}]
    assert target.ok("GET", path) == listed
    assert target.ok("GET", f"/users/{user}/topic-permissions") == listed
    assert target.ok("GET", f"/vhosts/{qv}/topic-permissions") == listed
    conn = target.connect(user, vhost)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_publish("amq.topic", "ok.key", b"allowed")
    code, text = closed_with(lambda: ch.basic_publish("amq.topic", "no.key", b"refused"))
    assert code == 403
    tail = f"to topic 'no.key' in exchange 'amq.topic' in vhost '{vhost}' refused for user '{user}'"
    assert text.startswith("ACCESS_REFUSED - ") and text.endswith(tail)
    ch = conn.channel()
    queue = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(queue, "amq.topic", f"{user}.orders")  # {username} expanded, dot literal
    code, text = closed_with(lambda: ch.queue_bind(queue, "amq.topic", "other.orders"))
    assert code == 403 and "to topic 'other.orders' in exchange 'amq.topic'" in text
    conn.close()
    assert target.call("DELETE", path)[0] == 204
    assert target.call("GET", path)[0] == 404


def test_vhost_limits(target: Target) -> None:
    vhost = target.vhost("v")
    qv = quote(vhost, safe="")
    user = target.user("u", vhost)
    target.ok("PUT", f"/vhost-limits/{qv}/max-connections", {"value": 1})
    target.ok("PUT", f"/vhost-limits/{qv}/max-queues", {"value": 1})
    assert target.ok("GET", f"/vhost-limits/{qv}") == [
        {"vhost": vhost, "value": {"max-connections": 1, "max-queues": 1}}
    ]
    conn = target.connect(user, vhost)
    assert closed_with(lambda: target.connect(user, vhost)) == (
        530,
        f"NOT_ALLOWED - access to vhost '{vhost}' refused for user '{user}': "
        "connection limit (1) is reached",
    )
    ch = conn.channel()
    ch.queue_declare("first", auto_delete=True)
    assert closed_with(lambda: ch.queue_declare("second")) == (
        406,
        f"PRECONDITION_FAILED - cannot declare queue 'second': queue limit in vhost '{vhost}' "
        "(1) is reached",
    )
    conn.close()
    assert target.call("PUT", f"/vhost-limits/{qv}/max-connections", {"value": "x"})[0] == 400
    assert target.call("PUT", f"/vhost-limits/{qv}/max-bogus", {"value": 3})[0] == 400
    target.ok("PUT", f"/vhost-limits/{qv}/max-connections", {"value": 0})
    code, text = closed_with(lambda: target.connect(user, vhost))
    assert code == 530 and text.endswith("connection limit (0) is reached")
    target.ok("PUT", f"/vhost-limits/{qv}/max-connections", {"value": -1})
    target.connect(user, vhost).close()
    target.ok("DELETE", f"/vhost-limits/{qv}/max-connections")
    target.ok("DELETE", f"/vhost-limits/{qv}/max-queues")
    assert target.ok("GET", f"/vhost-limits/{qv}") == []


def test_user_limits(target: Target) -> None:
    vhost = target.vhost("v")
    user = target.user("u", vhost)
    target.ok("PUT", f"/user-limits/{user}/max-connections", {"value": 1})
    target.ok("PUT", f"/user-limits/{user}/max-channels", {"value": 2})
    assert target.ok("GET", f"/user-limits/{user}") == [
        {"user": user, "value": {"max-connections": 1, "max-channels": 2}}
    ]
    assert target.ok("GET", f"/users/{user}")["limits"] == {"max-connections": 1, "max-channels": 2}
    conn = target.connect(user, vhost)
    assert closed_with(lambda: target.connect(user, vhost)) == (
        530,
        f"NOT_ALLOWED - connection refused for user '{user}': user connection limit (1) is reached",
    )
    conn.channel()
    conn.channel()
    assert closed_with(conn.channel) == (
        530,
        f"NOT_ALLOWED - number of channels opened for user '{user}' has reached the maximum "
        "allowed user limit of (2)",
    )
    target.ok("DELETE", f"/user-limits/{user}/max-connections")
    target.ok("DELETE", f"/user-limits/{user}/max-channels")
    assert target.ok("GET", f"/user-limits/{user}") == []


def test_deleting_a_user_closes_its_connections(target: Target) -> None:
    vhost = target.vhost("v")
    user = target.user("u", vhost)
    other = target.user("other", vhost)
    conn = target.connect(user, vhost)
    bystander = target.connect(other, vhost)
    target.ok("DELETE", f"/users/{user}")

    def use() -> None:
        wait_for_close(conn)

    assert closed_with(use) == (320, f"CONNECTION_FORCED - user '{user}' is deleted")
    bystander.channel().queue_declare("", exclusive=True)  # others are not affected
    bystander.close()


def test_deleting_a_vhost_closes_its_connections(target: Target) -> None:
    vhost = target.vhost("v")
    user = target.user("u", vhost)
    conn = target.connect(user, vhost)
    target.ok("DELETE", f"/vhosts/{quote(vhost, safe='')}")
    target.vhosts.remove(vhost)

    def use() -> None:
        wait_for_close(conn)

    code, text = closed_with(use)
    # RabbitMQ 3.10 races its own vhost teardown: the close says "is deleted" or, when the
    # vhost supervisor stops first, "is down". amqplite always says "is deleted".
    allowed = {f"CONNECTION_FORCED - vhost '{vhost}' is deleted"}
    if target.api == RABBITMQ_API:
        allowed.add(f"CONNECTION_FORCED - vhost '{vhost}' is down")
    assert code == 320
    assert text in allowed
    assert target.call("DELETE", f"/vhosts/{quote(vhost, safe='')}")[0] == 404


def test_definitions_export_topic_permissions_and_limits_as_rabbitmq_does(target: Target) -> None:
    vhost = target.vhost("v")
    qv = quote(vhost, safe="")
    user = target.user("u", vhost)
    topic = {"exchange": "amq.topic", "write": "^a", "read": "^b"}
    target.ok("PUT", f"/topic-permissions/{qv}/{user}", topic)
    target.ok("PUT", f"/vhost-limits/{qv}/max-queues", {"value": 5})
    target.ok("PUT", f"/user-limits/{user}/max-channels", {"value": 7})
    defs = target.ok("GET", "/definitions")
    (exported,) = [u for u in defs["users"] if u["name"] == user]
    assert exported["limits"] == {"max-channels": 7}
    assert [t for t in defs["topic_permissions"] if t["user"] == user] == [
        {"user": user, "vhost": vhost, **topic}
    ]
    params = [p for p in defs["parameters"] if p.get("vhost") == vhost]
    assert params == [
        {"value": {"max-queues": 5}, "vhost": vhost, "component": "vhost-limits", "name": "limits"}
    ]
