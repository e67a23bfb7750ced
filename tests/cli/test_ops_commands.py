"""``amqplite queues | exchanges | bindings | connections | publish | get | consume``, end to end."""

from __future__ import annotations

import io
import json

import pytest
from ops_support import Cli, Stack

from amqplite.client import connect
from amqplite.client.http import ApiClient


@pytest.fixture
def orders(stack: Stack) -> Stack:
    with connect(stack.url) as conn, conn.channel() as ch:
        ch.exchange_declare("orders", "topic", durable=True)
        ch.queue_declare("orders.eu", durable=True, arguments={"x-max-length": 100})
        ch.queue_bind("orders.eu", "orders", "eu.#")
    return stack


def test_publish_from_argument_is_routed_and_get_requeues_by_default(
    cli: Cli, orders: Stack
) -> None:
    r = cli(
        "publish", "orders", "eu.fr", "hello", "--url", orders.url,
        "--header", "attempt=2", "--property", "content_type=text/plain", "--persistent",
    )  # fmt: skip
    assert r.code == 0, r.err
    assert r.out == "published 5 bytes to exchange 'orders' with routing key 'eu.fr': routed\n"
    for _ in range(2):  # looked at twice: still there
        r = cli("get", "orders.eu", "--url", orders.url, "--json")
        assert r.code == 0, r.err
        message = json.loads(r.out)
        assert message["payload"] == "hello"
        assert message["headers"] == {"attempt": 2}
        assert message["properties"] == {"content_type": "text/plain", "delivery_mode": 2}
    r = cli("get", "orders.eu", "--url", orders.url, "--ack")
    assert (
        r.out.splitlines()[0]
        == "--- message 1: exchange 'orders', routing key 'eu.fr', redelivered"
    )
    assert r.out.splitlines()[-2:] == ["body (5 bytes):", "hello"]
    r = cli("get", "orders.eu", "--url", orders.url)
    assert (r.code, r.out) == (0, "")
    assert r.err == "amqplite: queue 'orders.eu' is empty\n"


def test_publish_reads_the_body_from_stdin(
    cli: Cli, orders: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\xff\xfebinary")))
    r = cli("publish", "", "orders.eu", "--url", orders.url)
    assert r.code == 0, r.err
    r = cli("get", "orders.eu", "--url", orders.url, "--json", "--ack")
    message = json.loads(r.out)
    assert (message["payload_encoding"], message["payload_bytes"]) == ("base64", 8)


def test_unroutable_publish_exits_1_with_one_line(cli: Cli, orders: Stack) -> None:
    r = cli("publish", "orders", "us.ny", "x", "--url", orders.url)
    assert r.code == 1
    assert r.err == (
        "amqplite: error: message not routed: 312 NO_ROUTE "
        "(exchange 'orders' with routing key 'us.ny')\n"
    )
    r = cli("publish", "nope", "k", "x", "--url", orders.url)
    assert r.code == 1
    assert r.err.startswith("amqplite: error: 404 NOT_FOUND - no exchange 'nope'")


def test_consume_count_with_ack_removes_them_and_with_requeue_keeps_them(
    cli: Cli, orders: Stack
) -> None:
    with connect(orders.url) as conn, conn.channel() as ch:
        for i in range(5):
            ch.publish("orders", "eu.x", f"m{i}".encode())
    r = cli("consume", "orders.eu", "--count", "3", "--url", orders.url, "--json")
    assert r.code == 0, r.err
    assert [json.loads(line)["payload"] for line in r.out.splitlines()] == ["m0", "m1", "m2"]
    assert r.err.endswith("3 message(s) requeued\n")
    r = cli("consume", "orders.eu", "--count", "2", "--ack", "--url", orders.url, "--json")
    assert [json.loads(line)["payload"] for line in r.out.splitlines()] == ["m0", "m1"]
    r = cli("consume", "orders.eu", "--ack", "--timeout", "0.3", "--url", orders.url, "--json")
    assert [json.loads(line)["payload"] for line in r.out.splitlines()] == ["m2", "m3", "m4"]
    r = cli("get", "orders.eu", "--url", orders.url)
    assert r.out == ""


def test_get_from_a_missing_queue_is_one_error_line(cli: Cli, stack: Stack) -> None:
    r = cli("get", "nope", "--url", stack.url)
    assert r.code == 1
    assert r.err == "amqplite: error: 404 NOT_FOUND - no queue 'nope' in vhost '/'\n"


def test_bad_property_is_an_error_before_connecting(cli: Cli) -> None:
    r = cli("publish", "x", "k", "b", "--property", "colour=red", "--url", "amqp://h:1/")
    assert r.code == 1
    assert r.err.startswith("amqplite: error: --property must be K=V with K one of content_type")


def test_queues_table_and_json(cli: Cli, orders: Stack) -> None:
    with connect(orders.url) as conn, conn.channel() as ch:
        ch.publish("orders", "eu.x", b"1")
        ch.publish("orders", "eu.y", b"2")
    r = cli("queues", "--api", orders.api)
    assert r.code == 0, r.err
    header, rule, *rows = r.out.splitlines()
    assert header.split() == [
        "VHOST", "NAME", "TYPE", "FLAGS", "MESSAGES", "READY", "UNACKED", "CONSUMERS",
        "IN/S", "OUT/S", "ARGUMENTS",
    ]  # fmt: skip
    assert set(rule) == {"-", " "}
    assert rows[0].split()[:8] == ["/", "orders.eu", "classic", "D", "2", "2", "0", "0"]
    assert rows[0].endswith('{"x-max-length":100}')
    r = cli("queues", "--api", orders.api, "--vhost", "/", "--json")
    (queue,) = json.loads(r.out)
    assert (queue["name"], queue["messages"]) == ("orders.eu", 2)


def test_exchanges_bindings_and_connections(cli: Cli, orders: Stack) -> None:
    r = cli("exchanges", "--api", orders.api, "--json")
    names = {x["name"] for x in json.loads(r.out)}
    assert {"orders", "amq.topic", ""} <= names
    r = cli("bindings", "--api", orders.api, "--vhost", "/")
    rows = [line.split() for line in r.out.splitlines()[2:]]
    assert ["/", "orders", "queue", "orders.eu", "eu.#"] in rows
    with connect(orders.url):
        r = cli("connections", "--api", orders.api, "--json")
        (conn,) = json.loads(r.out)
        assert conn["user"] == "guest"
        r = cli("connections", "--api", orders.api)
        assert "amqplite-client" in r.out.splitlines()[2]


def test_listing_an_unknown_vhost_is_a_404_line(cli: Cli, stack: Stack) -> None:
    r = cli("queues", "--api", stack.api, "--vhost", "nowhere")
    assert r.code == 1
    assert r.err.startswith("amqplite: error: 404 not found")
    assert r.err.endswith(f"(asked {ApiClient(stack.api).base}/api/queues/nowhere)\n")


def test_env_var_supplies_the_default_api(
    cli: Cli, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMQPLITE_API", stack.api)
    r = cli("queues", "--json")
    assert (r.code, json.loads(r.out)) == (0, [])
