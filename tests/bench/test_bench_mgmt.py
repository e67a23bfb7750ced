"""``amqplite bench mgmt`` against a real amqplite with its HTTP API: both halves of a pair
run, the pollers' process reports what it asked, and the idle queues are deleted after."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from amqplite.app import RunningBroker
from amqplite.bench.mgmt import run_mgmt, summarise
from amqplite.bench.scenarios import RunConfig


def test_one_pair_runs_with_and_without_pollers_and_cleans_up(
    amqplite_broker: RunningBroker, amqplite_http_url: str
) -> None:
    parts = urlsplit(amqplite_http_url)
    http = f"http://guest:guest@{parts.hostname}:{parts.port}/"
    config = RunConfig(scenario="e2e", duration=0.5, count=2000)
    pairs = asyncio.run(
        run_mgmt(amqplite_broker.url, http, config, idle_queues=300, pollers=2, runs=1, warmup=1.5)
    )
    summary = summarise(pairs)
    (pair,) = summary["pairs"]
    assert pair["errors"] == []
    assert pair["with_msg_per_s"] > 0 and pair["without_msg_per_s"] > 0
    assert summary["median_ratio"] is not None
    polls = pair["polls"]
    # Two pollers and the dashboard each made at least one round of two requests.
    assert polls["requests"] >= 6 and polls["errors"] == 0 and polls["failed_clients"] == 0
    # Where the CPU went: the pollers' process (with them only) and the machine, per half.
    assert pair["cpu_pct_with"]["pollers"] is not None
    assert pair["cpu_pct_without"]["pollers"] is None
    assert pair["cpu_pct_with"]["machine_busy"] is not None
    assert pair["cpu_pct_with"]["load_generator"] is not None
    queues = amqplite_broker.call(lambda: list(amqplite_broker.broker.vhosts["/"].queues))
    assert not [q for q in queues if ".idle" in q]
