"""The same YAML and the same CLI against a real RabbitMQ (skipped unless one is configured).

Set ``AMQPLITE_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672/`` and
``AMQPLITE_RABBITMQ_API=http://guest:guest@127.0.0.1:15672``.  Every name is unique per
run and deleted afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ops_support import Cli, Stack

from amqplite.client import ApiError, ChannelClosed, connect
from amqplite.client.http import ApiClient, quote

pytestmark = pytest.mark.rabbitmq


def _yaml(prefix: str, ttl: str = "60s") -> str:
    return f"""
exchanges:
  {prefix}.orders: {{type: topic, alternate_exchange: {prefix}.unrouted}}
  {prefix}.unrouted: {{type: fanout, internal: true}}
queues:
  {prefix}.eu:
    queue_type: quorum
    arguments: {{delivery_limit: 5}}
  {prefix}.all:
    arguments: {{message_ttl: {ttl}}}
  {prefix}.lost: {{}}
bindings:
  - {{source: {prefix}.orders, destination: {prefix}.eu, routing_key: "eu.#"}}
  - {{source: {prefix}.orders, destination: {prefix}.all, routing_key: "#.all"}}
  - {{source: {prefix}.unrouted, destination: {prefix}.lost}}
"""


def test_same_yaml_configures_rabbitmq_with_quorum_queues_over_amqp(
    cli: Cli, rabbit: tuple[str, str, str], tmp_path: Path
) -> None:
    url, api, prefix = rabbit
    path = tmp_path / "t.yaml"
    path.write_text(_yaml(prefix), encoding="utf-8")
    r = cli("topology", "apply", str(path), "--url", url)
    assert r.code == 0, r.err
    assert r.out.splitlines()[-1] == "Applied: 8 created, 0 updated, 1 unchanged"
    queue = ApiClient(api).get(f"/api/queues/%2F/{quote(prefix + '.eu')}")
    assert queue["type"] == "quorum"
    r = cli("topology", "plan", str(path), "--url", url)
    assert r.code == 0
    assert r.out.splitlines()[-1] == (
        "Plan: 0 to create, 0 to update, 6 unchanged, 0 conflicting, 3 to ensure"
    )
    path.write_text(_yaml(prefix, ttl="30s"), encoding="utf-8")
    r = cli("topology", "plan", str(path), "--url", url)
    assert r.code == 1
    assert "inequivalent arg 'x-message-ttl'" in r.out
    with connect(url) as conn, conn.channel() as ch:  # the same client code works on both
        ch.confirm_select()
        ch.publish(f"{prefix}.orders", "us.none", b"x", mandatory=True)
        assert ch.wait_for_confirms(10).ok  # routed via the alternate exchange
        got = ch.basic_get(f"{prefix}.lost", no_ack=True)
        assert got is not None and got.body == b"x"


def test_rabbitmq_export_imports_into_amqplite_and_routes_the_same(
    cli: Cli, rabbit: tuple[str, str, str], stack: Stack, tmp_path: Path
) -> None:
    url, api, prefix = rabbit
    path = tmp_path / "t.yaml"
    path.write_text(_yaml(prefix), encoding="utf-8")
    assert cli("topology", "apply", str(path), "--url", url).code == 0
    defs = tmp_path / "defs.json"
    r = cli("topology", "export", "--format", "definitions", "--api", api, "-o", str(defs))
    assert r.code == 0, r.err
    r = cli("route", f"{prefix}.orders", "eu.x.all", "--api", api, "--json")
    on_rabbit = json.loads(r.out)["queues"]
    r = cli("topology", "import", str(defs), "--api", stack.api)
    assert r.code == 0, r.err
    r = cli("route", f"{prefix}.orders", "eu.x.all", "--api", stack.api, "--json")
    assert json.loads(r.out)["queues"] == on_rabbit == [f"{prefix}.all", f"{prefix}.eu"]


def _classic_with_delivery_limit(prefix: str) -> str:
    return f"""
exchanges:
  {prefix}.x: {{type: direct}}
queues:
  {prefix}.q:
    arguments:
      max_length: 10
      delivery_limit: 5
bindings:
  - {{source: {prefix}.x, destination: {prefix}.q}}
"""


@pytest.mark.parametrize("how", ["--url", "--api"])
def test_plan_predicts_what_rabbitmq_refuses_and_apply_changes_nothing(
    cli: Cli, rabbit: tuple[str, str, str], tmp_path: Path, how: str
) -> None:
    url, api, prefix = rabbit
    path = tmp_path / "t.yaml"
    path.write_text(_classic_with_delivery_limit(prefix), encoding="utf-8")
    target = url if how == "--url" else api
    r = cli("topology", "plan", str(path), how, target)
    assert r.code == 1, r.out
    (line,) = [line for line in r.out.splitlines() if line.startswith("!")]
    assert (
        line.startswith(f"! conflict  queue {prefix}.q in vhost '/': RabbitMQ 3.")
        and "refuses x-delivery-limit on a classic queue" in line
    )
    assert "add 'queue_type: quorum' to the queue" in line
    assert line.endswith(f"[{path}:8]")  # the line of delivery_limit
    r = cli("topology", "apply", str(path), how, target)
    assert r.code == 1
    assert r.err.splitlines()[-1] == "amqplite: error: 1 conflict; nothing applied"
    with connect(url) as conn, pytest.raises(ChannelClosed) as info:
        conn.channel().exchange_declare(f"{prefix}.x", "direct", passive=True)
    assert info.value.reply_code == 404  # nothing was created before the refusal
    path.write_text(
        _classic_with_delivery_limit(prefix).replace(
            "    arguments:", "    queue_type: quorum\n    arguments:"
        ),
        encoding="utf-8",
    )
    r = cli("topology", "apply", str(path), how, target)
    assert r.code == 0, r.out + r.err


def test_rabbitmq_api_errors_read_as_text(rabbit: tuple[str, str, str]) -> None:
    _url, api, prefix = rabbit
    bad = {
        "queues": [
            {"name": f"{prefix}.q", "vhost": "/", "durable": True, "auto_delete": False,
             "arguments": {"x-delivery-limit": 5}}
        ]
    }  # fmt: skip
    with pytest.raises(ApiError) as info:
        ApiClient(api).post("/api/definitions", bad)
    assert "PRECONDITION_FAILED - invalid arg 'x-delivery-limit'" in str(info.value)
    assert "[105, 110" not in str(info.value)


def test_a_rabbitmq_404_names_what_is_missing_and_the_api_asked(
    cli: Cli, rabbit: tuple[str, str, str]
) -> None:
    # RabbitMQ's 404 is generic ("Object Not Found" / "Not Found"): the text is built from
    # what was asked, as amqplite's API words it.
    _url, api, prefix = rabbit
    base = ApiClient(api).base
    with pytest.raises(ApiError) as caught:
        ApiClient(api).get(f"/api/queues/%2F/{quote(prefix + '.none')}")
    assert caught.value.status == 404
    assert str(caught.value) == (
        f"404 not found: no queue '{prefix}.none' in vhost '/' "
        f"(asked {base}/api/queues/%2F/{quote(prefix + '.none')})"
    )
    r = cli("queues", "--api", api, "--vhost", f"{prefix}.nowhere")
    assert r.code == 1
    assert r.err == (
        f"amqplite: error: 404 not found: no vhost '{prefix}.nowhere' "
        f"(asked {base}/api/queues/{prefix}.nowhere)\n"
    )
