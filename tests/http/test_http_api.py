"""The management API through real sockets: auth, errors, every endpoint's shape, changes."""

from __future__ import annotations

import json
import re

import pika  # type: ignore[import-untyped]
import trio
from http_support import Channel, Stack, add_user, q

from amqplite.app import start_http
from amqplite.http.jsonout import STREAM_THRESHOLD


def populate(ch: Channel) -> None:
    ch.exchange_declare("orders", "topic", durable=True)
    ch.exchange_declare("audit", "fanout")
    ch.queue_declare(
        "orders.new", durable=True, arguments={"x-dead-letter-exchange": "dlx", "x-max-length": 100}
    )
    ch.queue_bind("orders.new", "orders", "order.*")
    ch.exchange_bind("audit", "orders", "#")
    for i in range(3):
        ch.basic_publish("orders", "order.created", f"o{i}".encode())


# -- auth --------------------------------------------------------------------------------


async def test_request_without_credentials_gets_401_with_basic_challenge(stack: Stack) -> None:
    reply = await stack.request("GET", "/api/overview", auth=None)
    assert reply.status == 401
    assert reply.headers["www-authenticate"].startswith("Basic ")
    assert reply.json()["error"] == "not_authorised"


async def test_scripted_request_gets_401_without_challenge_so_browsers_show_no_dialog(
    stack: Stack,
) -> None:
    reply = await stack.request(
        "GET", "/api/whoami", auth=("guest", "bad"), headers={"X-Requested-With": "XMLHttpRequest"}
    )
    assert reply.status == 401 and "www-authenticate" not in reply.headers


async def test_wrong_password_gets_401(stack: Stack) -> None:
    reply = await stack.request("GET", "/api/queues", auth=("guest", "nope"))
    assert reply.status == 401


async def test_malformed_authorization_header_gets_401(stack: Stack) -> None:
    reply = await stack.request(
        "GET", "/api/queues", auth=None, headers={"Authorization": "Basic %%%"}
    )
    assert reply.status == 401


async def test_user_without_management_tag_gets_401(stack: Stack) -> None:
    add_user(stack.broker, "app", ())
    reply = await stack.request("GET", "/api/overview", auth=("app", "secret"))
    assert reply.status == 401
    assert reply.json()["reason"] == "Not management user"


async def test_management_user_sees_only_its_vhosts_and_cannot_export_definitions(
    stack: Stack,
) -> None:
    stack.broker.add_vhost("private")
    add_user(stack.broker, "ops", ("management",))
    vhosts = await stack.request("GET", "/api/vhosts", auth=("ops", "secret"))
    assert [v["name"] for v in vhosts.json()] == ["/"]
    assert (await stack.request("GET", "/api/queues/private", auth=("ops", "secret"))).status == 401
    assert (await stack.request("GET", "/api/definitions", auth=("ops", "secret"))).status == 401


async def test_management_user_without_configure_permission_cannot_declare(stack: Stack) -> None:
    add_user(stack.broker, "ro", ("management",), vhost=None)
    stack.broker.users.set_permissions("ro", "/", "", "", ".*")
    reply = await stack.request(
        "PUT", f"/api/queues/{q('/')}/x", {"durable": True}, auth=("ro", "secret")
    )
    assert reply.status == 401
    assert "x" not in stack.broker.vhosts["/"].queues


async def test_metrics_need_no_credentials_by_default(stack: Stack) -> None:
    reply = await stack.request("GET", "/metrics", auth=None)
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")


# -- errors ------------------------------------------------------------------------------


async def test_unknown_objects_are_404_in_rabbitmq_shape(stack: Stack) -> None:
    for path in (
        "/api/queues/%2F/nope",
        "/api/exchanges/%2F/nope",
        "/api/queues/novhost",
        "/api/nothing",
    ):
        reply = await stack.request("GET", path)
        assert reply.status == 404, path
        assert reply.json() == {"error": "Object Not Found", "reason": "Not Found"}


async def test_wrong_method_is_405_with_allow(stack: Stack) -> None:
    reply = await stack.request("PATCH", "/api/queues/%2F/x")
    assert reply.status == 405
    assert set(reply.headers["allow"].split(", ")) == {"GET", "PUT", "DELETE"}


async def test_bad_bodies_are_400_with_a_reason(stack: Stack) -> None:
    cases = [
        ("PUT", "/api/exchanges/%2F/x", b"{not json"),
        ("PUT", "/api/exchanges/%2F/x", b"[1, 2]"),
        ("PUT", "/api/exchanges/%2F/x", b'{"durable": true}'),  # no type
        ("PUT", "/api/exchanges/%2F/x", b'{"type": "nosuchtype"}'),
        ("PUT", "/api/queues/%2F/x", b'{"durable": "yes"}'),
        ("POST", "/api/queues/%2F/x/get", b'{"count": 1, "ackmode": "eat_it"}'),
        ("POST", "/api/exchanges/%2F/amq.default/publish", b'{"routing_key": "x"}'),
        (
            "POST",
            "/api/exchanges/%2F/amq.default/publish",
            b'{"payload": "%%", "payload_encoding": "base64"}',
        ),
        ("GET", "/api/queues/%2F/x/messages?limit=abc", None),
    ]
    await stack.request("PUT", "/api/queues/%2F/x", {"durable": True})
    for method, path, raw in cases:
        reply = await stack.request(method, path, raw=raw)
        assert reply.status == 400, (method, path, raw, reply)
        assert reply.json()["error"] == "bad_request" and reply.json()["reason"]


async def test_inequivalent_redeclare_is_400_with_amqp_text(stack: Stack) -> None:
    assert (await stack.request("PUT", "/api/queues/%2F/q", {"durable": True})).status == 201
    reply = await stack.request("PUT", "/api/queues/%2F/q", {"durable": False})
    assert reply.status == 400
    assert "inequivalent arg 'durable'" in reply.json()["reason"]


async def test_oversized_body_is_413(stack: Stack) -> None:
    with trio.fail_after(10):
        s = await trio.open_tcp_stream("127.0.0.1", stack.http_port)
        async with s:
            await s.send_all(
                b"PUT /api/queues/%2F/big HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\n"
                b"Content-Length: 17000000\r\n\r\n{"
            )
            reply = await s.receive_some(65536)
    assert reply.startswith(b"HTTP/1.1 413 ")


async def test_malformed_request_gets_400_and_amqp_clients_carry_on(stack: Stack) -> None:
    def start(ch: Channel) -> None:
        ch.queue_declare("steady")

    await stack.amqp(start)
    with trio.fail_after(10):
        s = await trio.open_tcp_stream("127.0.0.1", stack.http_port)
        async with s:
            await s.send_all(b"GET /api/overview HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
            reply = await s.receive_some(65536)
    assert reply.startswith(b"HTTP/1.1 400 ")

    def roundtrip(ch: Channel) -> bytes:
        ch.basic_publish("", "steady", b"still here")
        _, _, body = ch.basic_get("steady", auto_ack=True)
        return bytes(body)

    assert await stack.amqp(roundtrip) == b"still here"
    assert (await stack.request("GET", "/api/queues/%2F/steady")).status == 200


async def test_keep_alive_and_pipelined_requests_through_the_api(stack: Stack) -> None:
    auth = b"Authorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\n"
    data = (
        b"GET /api/whoami HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
        b"GET /api/queues/%2F/none HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
        b"GET /api/vhosts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + auth + b"\r\n"
    )
    with trio.fail_after(10):
        s = await trio.open_tcp_stream("127.0.0.1", stack.http_port)
        async with s:
            await s.send_all(data)
            chunks = []
            while chunk := await s.receive_some(65536):
                chunks.append(chunk)
    reply = b"".join(chunks)
    statuses = re.findall(rb"HTTP/1.1 (\d+)", reply)
    assert statuses == [b"200", b"404", b"200"]
    assert (
        reply.index(b'"administrator"')
        < reply.index(b"Object Not Found")
        < reply.index(b'"tracing"')
    )


# -- shapes ------------------------------------------------------------------------------


async def test_queue_listing_has_rabbitmq_fields_and_counts(stack: Stack) -> None:
    await stack.amqp(populate)
    queues = await stack.get_json("/api/queues")
    (queue,) = [x for x in queues if x["name"] == "orders.new"]
    assert queue["vhost"] == "/"
    assert (
        queue["durable"] is True and queue["auto_delete"] is False and queue["exclusive"] is False
    )
    assert queue["arguments"] == {"x-dead-letter-exchange": "dlx", "x-max-length": 100}
    assert (queue["messages"], queue["messages_ready"], queue["messages_unacknowledged"]) == (
        3,
        3,
        0,
    )
    assert queue["consumers"] == 0
    stats = queue["message_stats"]
    assert stats["publish"] == 3
    for key in ("publish", "deliver_get", "ack", "redeliver"):
        assert isinstance(stats[key + "_details"]["rate"], float)
    assert await stack.get_json("/api/queues/%2F") == queues
    one = await stack.get_json("/api/queues/%2F/orders.new")
    assert one["messages_ready"] == 3 and one["consumer_details"] == []


async def test_unacked_and_consumers_show_while_a_client_holds_messages(stack: Stack) -> None:
    await stack.amqp(populate)
    ready = trio.Event()
    done = trio.Event()
    token = trio.lowlevel.current_trio_token()

    def hold() -> None:
        conn = pika.BlockingConnection(pika.URLParameters(stack.amqp_url))
        ch = conn.channel()
        ch.basic_qos(prefetch_count=2)
        ch.basic_consume("orders.new", lambda *a: None, consumer_tag="holder")
        conn.process_data_events(time_limit=0.3)
        trio.from_thread.run_sync(ready.set, trio_token=token)
        while not trio.from_thread.run_sync(done.is_set, trio_token=token):
            conn.process_data_events(time_limit=0.05)
        conn.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, hold)
        with trio.fail_after(10):
            await ready.wait()
        queue = await stack.get_json("/api/queues/%2F/orders.new")
        assert (queue["messages_ready"], queue["messages_unacknowledged"], queue["consumers"]) == (
            1,
            2,
            1,
        )
        consumers = await stack.get_json("/api/consumers")
        assert [(c["consumer_tag"], c["queue"]["name"], c["ack_required"]) for c in consumers] == [
            ("holder", "orders.new", True)
        ]
        (conn,) = await stack.get_json("/api/connections")
        assert conn["user"] == "guest" and conn["vhost"] == "/" and conn["channels"] == 1
        (chan,) = await stack.get_json("/api/channels")
        assert chan["messages_unacknowledged"] == 2 and chan["consumer_count"] == 1
        overview = await stack.get_json("/api/overview")
        assert overview["object_totals"]["connections"] == 1
        assert overview["queue_totals"] == {
            "messages": 3,
            "messages_ready": 1,
            "messages_unacknowledged": 2,
        }
        done.set()


async def test_exchange_and_binding_listings(stack: Stack) -> None:
    await stack.amqp(populate)
    orders = await stack.get_json("/api/exchanges/%2F/orders")
    assert {
        k: orders[k]
        for k in ("name", "vhost", "type", "durable", "auto_delete", "internal", "arguments")
    } == {
        "name": "orders",
        "vhost": "/",
        "type": "topic",
        "durable": True,
        "auto_delete": False,
        "internal": False,
        "arguments": {},
    }
    assert orders["message_stats"]["publish_in"] == 3
    names = {x["name"] for x in await stack.get_json("/api/exchanges")}
    assert {"", "amq.direct", "amq.topic", "orders", "audit"} <= names
    default = await stack.get_json("/api/exchanges/%2F/amq.default")
    assert default["name"] == "" and default["type"] == "direct"

    source = await stack.get_json("/api/exchanges/%2F/orders/bindings/source")
    assert sorted((b["destination_type"], b["destination"], b["routing_key"]) for b in source) == [
        ("exchange", "audit", "#"),
        ("queue", "orders.new", "order.*"),
    ]
    bindings = await stack.get_json("/api/bindings")
    assert {
        "source": "",
        "vhost": "/",
        "destination": "orders.new",
        "destination_type": "queue",
        "routing_key": "orders.new",
        "arguments": {},
        "properties_key": "orders.new",
    } in bindings
    queue_bindings = await stack.get_json("/api/queues/%2F/orders.new/bindings")
    assert [(b["source"], b["routing_key"]) for b in queue_bindings] == [
        ("", "orders.new"),
        ("orders", "order.*"),
    ]
    assert await stack.get_json("/api/bindings/%2F") == bindings
    vhosts = await stack.get_json("/api/vhosts")
    assert vhosts[0]["name"] == "/" and vhosts[0]["messages"] == 3


async def test_long_listings_are_valid_json_queues_in_one_body_others_streamed(
    stack: Stack,
) -> None:
    vhost = stack.broker.vhosts["/"]
    for i in range(STREAM_THRESHOLD + 50):
        vhost.declare_queue(f"bulk-{i:04d}")
    # Queues come from the shared snapshot: one body, made once, with its length.
    reply = await stack.request("GET", "/api/queues")
    assert reply.status == 200 and int(reply.headers["content-length"]) == len(reply.body)
    assert [x["name"] for x in reply.json()] == [
        f"bulk-{i:04d}" for i in range(STREAM_THRESHOLD + 50)
    ]
    # Other long listings are rendered as they are written (every queue has a default binding).
    reply = await stack.request("GET", "/api/bindings")
    assert reply.status == 200 and reply.headers.get("transfer-encoding") == "chunked"
    assert len(reply.json()) == STREAM_THRESHOLD + 50


# -- changes -----------------------------------------------------------------------------


async def test_put_and_delete_exchange_and_queue(stack: Stack) -> None:
    body = {
        "type": "direct",
        "durable": True,
        "auto_delete": False,
        "internal": False,
        "arguments": {},
    }
    assert (await stack.request("PUT", "/api/exchanges/%2F/ex", body)).status == 201
    assert (await stack.request("PUT", "/api/exchanges/%2F/ex", body)).status == 204
    assert (
        await stack.request(
            "PUT", "/api/queues/%2F/qq", {"durable": False, "arguments": {"x-max-length": 5}}
        )
    ).status == 201
    queue = stack.broker.vhosts["/"].queues["qq"]
    assert queue.durable is False and queue.arguments == {"x-max-length": 5}
    assert (await stack.request("DELETE", "/api/queues/%2F/qq")).status == 204
    assert (await stack.request("GET", "/api/queues/%2F/qq")).status == 404
    assert (await stack.request("DELETE", "/api/exchanges/%2F/ex")).status == 204
    assert (await stack.request("GET", "/api/exchanges/%2F/ex")).status == 404
    assert (await stack.request("DELETE", "/api/exchanges/%2F/ex")).status == 404


async def test_create_and_delete_bindings_by_properties_key(stack: Stack) -> None:
    await stack.request("PUT", "/api/exchanges/%2F/src", {"type": "direct"})
    await stack.request("PUT", "/api/exchanges/%2F/dst", {"type": "fanout"})
    await stack.request("PUT", "/api/queues/%2F/dq", {})
    made = await stack.request(
        "POST", "/api/bindings/%2F/e/src/q/dq", {"routing_key": "a b/c", "arguments": {}}
    )
    assert made.status == 201 and made.headers["location"] == "a%20b%2Fc"
    empty = await stack.request("POST", "/api/bindings/%2F/e/src/e/dst", {"routing_key": ""})
    assert empty.headers["location"] == "~"
    listed = await stack.get_json("/api/bindings/%2F/e/src/q/dq")
    assert [(b["routing_key"], b["properties_key"]) for b in listed] == [("a b/c", "a%20b%2Fc")]
    assert (
        await stack.request("GET", f"/api/bindings/%2F/e/src/q/dq/{q('a%20b%2Fc')}")
    ).status == 200
    assert (
        await stack.request("DELETE", f"/api/bindings/%2F/e/src/q/dq/{q('a%20b%2Fc')}")
    ).status == 204
    assert (await stack.request("DELETE", "/api/bindings/%2F/e/src/e/dst/~")).status == 204
    assert stack.broker.vhosts["/"].bindings() == []
    assert (await stack.request("DELETE", "/api/bindings/%2F/e/src/e/dst/~")).status == 404
    assert (await stack.request("POST", "/api/bindings/%2F/e/src/q/missing", {})).status == 404


async def test_publish_reports_routed_and_purge_empties(stack: Stack) -> None:
    await stack.request("PUT", "/api/queues/%2F/target", {})
    ok = await stack.request(
        "POST",
        "/api/exchanges/%2F/amq.default/publish",
        {
            "properties": {"content_type": "text/plain", "headers": {"k": "v"}},
            "routing_key": "target",
            "payload": "aGVsbG8=",
            "payload_encoding": "base64",
        },
    )
    assert ok.json() == {"routed": True}
    lost = await stack.request(
        "POST",
        "/api/exchanges/%2F/amq.default/publish",
        {"routing_key": "nobody", "payload": "x", "payload_encoding": "string"},
    )
    assert lost.json() == {"routed": False}
    (got,) = (
        await stack.request(
            "POST",
            "/api/queues/%2F/target/get",
            {"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto"},
        )
    ).json()
    assert got["payload"] == "hello" and got["payload_encoding"] == "string"
    assert got["properties"] == {"content_type": "text/plain", "headers": {"k": "v"}}
    assert (await stack.request("DELETE", "/api/queues/%2F/target/contents")).status == 204
    assert stack.broker.vhosts["/"].queues["target"].message_count == 0


async def test_get_ackmodes_requeue_ack_and_dead_letter(stack: Stack) -> None:
    vhost = stack.broker.vhosts["/"]
    vhost.declare_queue("dead")
    vhost.declare_queue(
        "src", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"}
    )
    for i in range(3):
        await stack.request(
            "POST",
            "/api/exchanges/%2F/amq.default/publish",
            {"routing_key": "src", "payload": f"m{i}", "payload_encoding": "string"},
        )

    async def get(count: int, ackmode: str, **extra: object) -> list[dict[str, object]]:
        reply = await stack.request(
            "POST",
            "/api/queues/%2F/src/get",
            {"count": count, "ackmode": ackmode, "encoding": "auto", **extra},
        )
        assert reply.status == 200
        result: list[dict[str, object]] = reply.json()
        return result

    first = await get(2, "ack_requeue_true")
    assert [(m["payload"], m["redelivered"]) for m in first] == [("m0", False), ("m1", False)]
    again = await get(1, "ack_requeue_false", truncate=1)
    assert (again[0]["payload"], again[0]["redelivered"], again[0]["truncated"]) == (
        "m",
        True,
        True,
    )
    assert vhost.queues["src"].message_count == 2
    await get(1, "reject_requeue_false")
    assert vhost.queues["dead"].message_count == 1
    await get(1, "reject_requeue_true")
    assert vhost.queues["src"].message_count == 1


async def test_definitions_export_import_round_trip(stack: Stack) -> None:
    await stack.amqp(populate)
    stack.broker.add_vhost("other")
    add_user(stack.broker, "ops", ("management",), vhost="other")
    stack.broker.vhosts["other"].declare_queue(
        "q2", durable=True, arguments={"x-queue-type": "quorum"}
    )
    exported = await stack.get_json("/api/definitions")
    assert (
        exported["rabbit_version"]
        and {"users", "vhosts", "permissions", "exchanges", "queues", "bindings"} <= exported.keys()
    )
    assert {
        "name": "orders.new",
        "vhost": "/",
        "durable": True,
        "auto_delete": False,
        "arguments": {"x-dead-letter-exchange": "dlx", "x-max-length": 100},
    } in exported["queues"]
    assert not any(x["name"].startswith("amq.") or x["name"] == "" for x in exported["exchanges"])

    # Wipe the topology and the extra user, then restore from the export.
    for name in ("/", "other"):
        stack.broker.delete_vhost(name)
    stack.broker.users.delete_user("ops")
    stack.broker.add_vhost("/")
    stack.broker.users.set_permissions("guest", "/", ".*", ".*", ".*")
    assert (await stack.request("POST", "/api/definitions", exported)).status == 204
    again = await stack.get_json("/api/definitions")
    for key in ("users", "vhosts", "permissions", "exchanges", "queues", "bindings"):
        assert sorted(map(json.dumps, again[key])) == sorted(map(json.dumps, exported[key])), key
    assert (await stack.request("GET", "/api/whoami", auth=("ops", "secret"))).status == 200


async def test_definitions_from_rabbitmq_import(stack: Stack) -> None:
    rabbit = {
        "rabbit_version": "3.12.4",
        "users": [
            {
                "name": "svc",
                "password_hash": "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR",
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": "administrator,management",
            }
        ],
        "vhosts": [{"name": "prod"}],
        "permissions": [
            {"user": "svc", "vhost": "prod", "configure": ".*", "write": ".*", "read": ".*"}
        ],
        "exchanges": [
            {
                "name": "events",
                "vhost": "prod",
                "type": "topic",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
        ],
        "queues": [
            {
                "name": "events.all",
                "vhost": "prod",
                "durable": True,
                "auto_delete": False,
                "arguments": {"x-queue-type": "quorum"},
            }
        ],
        "bindings": [
            {
                "source": "events",
                "vhost": "prod",
                "destination": "events.all",
                "destination_type": "queue",
                "routing_key": "#",
                "arguments": {},
            }
        ],
        "policies": [],
        "parameters": [],
        "global_parameters": [],
        "topic_permissions": [],
    }
    assert (await stack.request("POST", "/api/definitions", rabbit)).status == 204
    prod = stack.broker.vhosts["prod"]
    assert prod.queues["events.all"].durable and [b.routing_key for b in prod.bindings()] == ["#"]
    assert stack.broker.users.get("svc") is not None
    bad = await stack.request("POST", "/api/definitions", {"queues": [{"name": 5, "vhost": "/"}]})
    assert bad.status == 400


async def test_definitions_import_is_all_or_nothing_and_flags_must_be_booleans(
    stack: Stack,
) -> None:
    yes = {"queues": [{"name": "q", "vhost": "/", "durable": "yes"}]}
    reply = await stack.request("POST", "/api/definitions", yes)
    assert reply.status == 400
    assert "queues[0]: 'durable' must be true or false" in reply.body.decode()
    stack.broker.vhosts["/"].declare_queue("taken", durable=True, arguments={"x-max-length": 1})
    mixed = {
        "exchanges": [{"name": "new.x", "vhost": "/", "type": "fanout"}],
        "queues": [{"name": "taken", "vhost": "/", "arguments": {"x-max-length": 2}}],
    }
    reply = await stack.request("POST", "/api/definitions", mixed)
    assert reply.status == 400 and "x-max-length" in reply.body.decode()
    assert "new.x" not in stack.broker.vhosts["/"].exchanges  # nothing applied
    assert "q" not in stack.broker.vhosts["/"].queues


async def test_metrics_text_parses_and_counts_queues(stack: Stack) -> None:
    await stack.amqp(populate)
    text = (await stack.request("GET", "/metrics", auth=None)).body.decode()
    samples: dict[str, float] = {}
    types: dict[str, str] = {}
    line_re = re.compile(
        r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$'
    )
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        match = line_re.match(line)
        assert match, line
        samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    assert samples['amqplite_queue_messages_ready{vhost="/",queue="orders.new"}'] == 3
    assert samples['amqplite_queue_messages_published_total{vhost="/",queue="orders.new"}'] == 3
    assert samples["amqplite_connections"] == 0
    assert samples["process_resident_memory_bytes"] > 1_000_000
    assert types["amqplite_queue_messages_ready"] == "gauge"
    assert types["amqplite_queue_messages_acked_total"] == "counter"


async def test_dashboard_files_are_served_without_external_resources(stack: Stack) -> None:
    page = await stack.request("GET", "/", auth=None)
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        reply = await stack.request("GET", f"/static/{name}", auth=None)
        assert reply.status == 200 and reply.headers["content-type"].startswith(kind)
        assert b"http://" not in reply.body and b"https://" not in reply.body
    assert b"https://" not in page.body and b"http://" not in page.body
    assert (await stack.request("GET", "/static/..%2Fapi.py", auth=None)).status == 404
    assert (await stack.request("GET", "/static/nothing.js", auth=None)).status == 404


async def test_metrics_can_require_credentials(stack: Stack) -> None:
    async with trio.open_nursery() as nursery:
        port = await start_http(
            nursery, stack.server, "127.0.0.1", 0, require_auth_for_metrics=True
        )
        locked = Stack(stack.broker, stack.amqp_url, port, stack.server)
        assert (await locked.request("GET", "/metrics", auth=None)).status == 401
        assert (await locked.request("GET", "/metrics")).status == 200
        nursery.cancel_scope.cancel()
