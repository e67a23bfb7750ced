"""A topology with a stream queue applied to a real RabbitMQ over AMQP and planned over its API.

Set ``AMQPLITE_RABBITMQ_URL`` and ``AMQPLITE_RABBITMQ_API``; names are unique per run and
deleted afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ops_support import Cli

from amqplite.client.http import ApiClient, quote

pytestmark = pytest.mark.rabbitmq


def _yaml(prefix: str, age: str = "7D") -> str:
    return f"""
exchanges:
  {prefix}.events: {{type: topic}}
queues:
  {prefix}.history:
    queue_type: stream
    arguments:
      max_age: {age}
      max_length_bytes: 20GB
      stream_max_segment_size_bytes: 100MB
bindings:
  - {{source: {prefix}.events, destination: {prefix}.history, routing_key: "#"}}
"""


def test_stream_topology_applies_to_rabbitmq_and_a_changed_age_is_a_conflict(
    cli: Cli, rabbit: tuple[str, str, str], tmp_path: Path
) -> None:
    url, api, prefix = rabbit
    path = tmp_path / "t.yaml"
    path.write_text(_yaml(prefix), encoding="utf-8")
    r = cli("topology", "apply", str(path), "--url", url)
    assert r.code == 0, r.err
    queue = ApiClient(api).get(f"/api/queues/%2F/{quote(prefix + '.history')}")
    assert queue["type"] == "stream"
    assert queue["arguments"] == {
        "x-queue-type": "stream",
        "x-max-age": "7D",
        "x-max-length-bytes": 20_000_000_000,
        "x-stream-max-segment-size-bytes": 100_000_000,
    }
    for target in (("--url", url), ("--api", api)):
        r = cli("topology", "plan", str(path), *target)
        assert r.code == 0, r.out + r.err
        assert f"= unchanged queue {prefix}.history" in r.out
    path.write_text(_yaml(prefix, age="3D"), encoding="utf-8")
    r = cli("topology", "plan", str(path), "--api", api)
    assert r.code == 1
    assert 'x-max-age: existing "7D", file "3D"' in r.out
    # A broker holding a stream reads back as definitions (route and plan use them).
    r = cli("route", f"{prefix}.events", "order.created", "--api", api, "--json")
    assert r.code == 0, r.err
    assert f'"{prefix}.history"' in r.out
