"""Every bench scenario, run small and bounded against a real broker on loopback.

Against amqplite through the server package's pytest fixture ``amqplite_url`` (skipped while
that plugin does not exist yet), and against RabbitMQ when AMQPLITE_RABBITMQ_URL is set.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os

import pytest

from amqplite.bench.scenarios import CONFIRMING, CONSUMING, RunConfig, run_scenario

SMALL_RUNS = [
    RunConfig("publish", count=3000),
    RunConfig("confirm", count=3000, window=100),
    RunConfig("persistent", count=500, window=50, size=100),
    RunConfig("e2e", count=3000, prefetch=1, size=0),
    RunConfig("e2e", count=5000, prefetch=100, size=1024, producers=2, consumers=2),
    RunConfig("e2e", count=300, size=300_000, prefetch=10),
    RunConfig("fanout", count=1000, queues=3),
    RunConfig("topic", count=2000, queues=3, bindings=50),
    RunConfig("direct-bindings", count=2000, queues=3, bindings=100),
    RunConfig("queues", count=2000, queues=30),
    RunConfig("manyconn", count=1000, connections=5),
    RunConfig("latency", rate=500, duration=0.5),
    RunConfig("manyclients", producers=6, consumers=6, queues=3, rate=600, duration=0.5, workers=2),
]
STREAM_RUNS = [
    RunConfig("stream-publish", count=3000, window=100),
    RunConfig("stream-catchup", count=5000, prefetch=1000, size=100),
    RunConfig("stream-tail", count=5000, prefetch=1000),
    RunConfig("stream-latency", rate=500, duration=0.5),
]


def _check(url: str, config: RunConfig) -> None:
    bounded = dataclasses.replace(config, duration=min(config.duration, 5.0), drain_timeout=10.0)
    result = asyncio.run(run_scenario(url, bounded))
    assert result.error is None, result.error
    assert result.published > 0
    assert result.msg_per_s is not None and result.msg_per_s > 0
    if config.count is not None:
        assert result.published == config.count
    if config.scenario in CONSUMING:
        fan = config.queues if config.scenario == "fanout" else 1
        assert result.delivered == result.published * fan
        if config.size >= 8 and config.scenario != "stream-catchup":
            assert result.latency_ms is not None
            assert (
                0
                <= result.latency_ms["p50"]
                <= result.latency_ms["p99"]
                <= result.latency_ms["max"]
            )
    if config.scenario in CONFIRMING:
        assert result.confirmed == result.published
        assert result.nacked == 0
        if config.scenario == "stream-catchup":
            assert result.confirm_per_s is not None and result.confirm_per_s > 0
            assert result.latency_ms is None  # the stamps are from the fill, not the read
        else:
            assert result.latency_ms is not None


def _ids(config: RunConfig) -> str:
    return "-".join(f"{k}{v}" for k, v in [("", config.scenario), *config.params().items()])


@pytest.fixture
def amqplite_broker_url(request: pytest.FixtureRequest) -> str:
    try:
        return str(request.getfixturevalue("amqplite_url"))
    except pytest.FixtureLookupError:
        pytest.skip(
            "the amqplite_url fixture (amqplite.server's pytest plugin) is not available yet"
        )


@pytest.mark.parametrize("config", SMALL_RUNS + STREAM_RUNS, ids=_ids)
def test_scenario_runs_cleanly_against_amqplite(
    amqplite_broker_url: str, config: RunConfig
) -> None:
    _check(amqplite_broker_url, config)


@pytest.mark.rabbitmq
@pytest.mark.parametrize("config", SMALL_RUNS + STREAM_RUNS, ids=_ids)
def test_scenario_runs_cleanly_against_rabbitmq(config: RunConfig) -> None:
    url = os.environ.get("AMQPLITE_RABBITMQ_URL")
    if not url:
        pytest.skip(
            "set AMQPLITE_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672/ to run against RabbitMQ"
        )
    _check(url, config)
