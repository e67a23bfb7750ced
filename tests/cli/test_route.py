"""``amqplite route``: which bindings match and where a message would go, without publishing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from ops_support import Cli

from amqplite.broker import Broker
from amqplite.cli.route import trace
from amqplite.message import BasicProperties, Message
from amqplite.topology import apply, load_string

TOPOLOGY = """
exchanges:
  logs: {type: topic, alternate_exchange: unrouted}
  unrouted: {type: fanout, internal: true}
  events: {type: fanout}
  audit: {type: headers}
queues:
  eu-errors: {}
  payments: {}
  all: {}
  lost: {}
  vip: {}
  any-eu: {}
bindings:
  - {source: logs, destination: eu-errors, routing_key: "eu.*.error"}
  - {source: logs, destination: payments, routing_key: "*.payments.#"}
  - {source: logs, destination: all, routing_key: "#.audit"}
  - {source: unrouted, destination: lost}
  - {source: events, destination: logs, destination_type: exchange}
  - {source: events, destination: audit, destination_type: exchange}
  - {source: audit, destination: vip, arguments: {x-match: all, tier: vip, region: eu}}
  - {source: audit, destination: any-eu, arguments: {x-match: any, region: eu, zone: eu}}
"""


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    path = tmp_path / "topology.yaml"
    path.write_text(TOPOLOGY, encoding="utf-8")
    return str(path)


def _broker() -> Broker:
    broker = Broker(clock=time.time)
    apply(load_string(TOPOLOGY), broker)
    return broker


def test_topic_wildcards_list_each_matching_binding(cli: Cli, config_file: str) -> None:
    r = cli("route", "logs", "eu.payments.error", "--config", config_file)
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "publish to exchange 'logs' with routing key 'eu.payments.error'",
        "exchange 'logs' (topic, published):",
        "  matched   key 'eu.*.error' -> queue 'eu-errors'",
        "  matched   key '*.payments.#' -> queue 'payments'",
        "  (1 other binding did not match)",
        "=> delivered to 2 queues: eu-errors, payments",
    ]


def test_no_match_goes_to_the_alternate_exchange(cli: Cli, config_file: str) -> None:
    r = cli("route", "logs", "us.web.info", "--config", config_file)
    assert r.code == 0, r.err
    assert "no binding matched: handed to alternate exchange 'unrouted'" in r.out
    assert "exchange 'unrouted' (fanout, alternate of 'logs'):" in r.out
    assert r.out.rstrip().endswith("=> delivered to 1 queue: lost")


def test_exchange_to_exchange_hops_and_headers_matching(cli: Cli, config_file: str) -> None:
    r = cli(
        "route", "events", "x.audit", "--config", config_file,
        "--header", "tier=vip", "--header", "region=eu", "--json",
    )  # fmt: skip
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["queues"] == ["all", "any-eu", "vip"]
    hops = {h["exchange"]: h for h in data["hops"]}
    assert hops["logs"]["via"] == "binding from 'events'"
    assert hops["audit"]["via"] == "binding from 'events'"
    assert sorted(m["destination"] for m in hops["audit"]["matched"]) == ["any-eu", "vip"]


def test_headers_all_needs_every_header(cli: Cli, config_file: str) -> None:
    r = cli("route", "events", "k", "--config", config_file, "--header", "region=us", "--json")
    data = json.loads(r.out)
    # logs: nothing matched "k" -> its alternate exchange; audit: neither binding matched.
    assert data["queues"] == ["lost"]


def test_default_exchange_routes_by_queue_name(cli: Cli, config_file: str) -> None:
    r = cli("route", "", "payments", "--config", config_file)
    assert "routes by queue name -> queue 'payments'" in r.out
    assert r.out.rstrip().endswith("=> delivered to 1 queue: payments")


def test_unknown_exchange_is_a_one_line_error(cli: Cli, config_file: str) -> None:
    r = cli("route", "nope", "k", "--config", config_file)
    assert r.code == 1
    assert (
        r.err
        == "amqplite: error: no exchange 'nope' in vhost '/' (a publish would fail with 404)\n"
    )


@pytest.mark.parametrize(
    ("exchange", "key", "headers"),
    [
        ("logs", "eu.payments.error", {}),
        ("logs", "x.y.z", {}),
        ("logs", "a.audit", {"CC": ["eu.b.error"]}),
        ("events", "eu.x.error", {"tier": "vip", "region": "eu"}),
        ("events", "nothing", {"zone": "eu"}),
        ("audit", "", {"region": "eu"}),
        ("", "vip", {}),
        ("", "missing", {}),
    ],
)
def test_trace_lands_where_the_broker_routes(
    exchange: str, key: str, headers: dict[str, object]
) -> None:
    vhost = _broker().vhosts["/"]
    message = Message(exchange, key, BasicProperties(headers=headers or None), b"")
    expected = sorted(q.name for q in vhost.route(vhost.exchanges[exchange], message))
    assert list(trace(vhost, exchange, key, headers).queues) == expected
