"""`amqplite bench` argument parsing, the run plan, the self-test and the JSON document."""

from __future__ import annotations

import argparse
import json
import socket

import pytest

from amqplite.bench.commands import add_arguments, main, mgmt_config, plan
from amqplite.bench.scenarios import SCENARIOS, RunConfig
from amqplite.cli.bench import register

RESULT_KEYS = {
    "scenario",
    "target",
    "url",
    "params",
    "published",
    "confirmed",
    "delivered",
    "seconds",
    "msg_per_s",
    "publish_per_s",
    "confirm_per_s",
    "deliver_per_s",
    "latency_ms",
    "broker_cpu_us_per_msg",
    "broker_cpu_pct",
    "broker_rss_mb",
    "client_cpu_pct",
    "idle_conn_kb",
    "queued_msg_bytes",
    "nacked",
    "error",
    "extra",
}


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_bench_registers_as_a_subcommand_with_a_func() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "e2e", "--prefetch", "1,100", "--quiet"])
    assert callable(args.func)
    assert args.prefetch == [1, 100]


def test_plan_expands_comma_lists_only_where_they_apply() -> None:
    args = parse(
        "e2e,publish,confirm",
        "--size",
        "16,1024",
        "--prefetch",
        "1,100,1000",
        "--window",
        "100,1000",
    )
    configs = plan(args)
    e2e = [(c.size, c.prefetch) for c in configs if c.scenario == "e2e"]
    assert e2e == [(s, p) for s in (16, 1024) for p in (1, 100, 1000)]
    assert [c.size for c in configs if c.scenario == "publish"] == [16, 1024]
    assert [(c.size, c.window) for c in configs if c.scenario == "confirm"] == [
        (16, 100),
        (16, 1000),
        (1024, 100),
        (1024, 1000),
    ]


def test_all_means_every_broker_scenario_and_queue_defaults_differ_per_scenario() -> None:
    configs = plan(parse("all", "--bindings", "10,100000"))
    assert [
        c.scenario for c in configs if c.scenario != "direct-bindings" and c.scenario != "topic"
    ] == [s for s in SCENARIOS if s not in ("direct-bindings", "topic")]
    assert [c.bindings for c in configs if c.scenario == "direct-bindings"] == [10, 100000]
    assert {c.queues for c in configs if c.scenario == "queues"} == {1000}
    assert {c.queues for c in configs if c.scenario == "fanout"} == {10}


def test_stream_means_the_four_stream_scenarios_with_confirm_windows_and_prefetches() -> None:
    configs = plan(parse("stream", "--prefetch", "100,1000", "--window", "1000"))
    assert [(c.scenario, c.prefetch) for c in configs] == [
        ("stream-publish", 100),
        ("stream-catchup", 100),
        ("stream-catchup", 1000),
        ("stream-tail", 100),
        ("stream-tail", 1000),
        ("stream-latency", 100),
        ("stream-latency", 1000),
    ]
    assert configs[-1].params()["rate"] == 1000.0
    assert "window" in configs[1].params()  # the catch-up fill publishes with confirms


def test_unknown_scenario_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("nosuch")
    assert "unknown scenario 'nosuch'" in capsys.readouterr().err


def test_selftest_reports_a_positive_rate_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["selftest", "--size", "16,1024", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["tool"] == "amqplite-bench"
    assert doc["results"] == []
    assert [s["size"] for s in doc["selftest"]] == [16, 1024]
    for s in doc["selftest"]:
        assert s["msg_per_s"] > 0
        assert s["parse_per_s"] > 0
        assert s["encode_per_s"] > 0


def test_selftest_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["selftest"]) == 0
    assert "parse+ack msg/s" in capsys.readouterr().out


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_broker_is_reported_as_an_error_with_every_documented_key(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"amqp://guest:secret@127.0.0.1:{closed_port()}/"
    code = main(
        [
            "e2e",
            "--url",
            url,
            "--compare",
            url,
            "--json",
            "--quiet",
            "--pause",
            "0",
            "--duration",
            "1",
        ]
    )
    assert code == 1
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"tool", "format", "results", "comparisons", "selftest"}
    assert [r["target"] for r in doc["results"]] == ["A", "B"]
    for r in doc["results"]:
        assert set(r) == RESULT_KEYS
        assert r["error"]
        assert "secret" not in r["url"]
    assert doc["comparisons"] == [
        {"scenario": "e2e", "params": doc["results"][0]["params"], "ratios": {}}
    ]


def test_manyclients_defaults_to_200_producers_and_consumers_on_100_queues() -> None:
    (config,) = plan(parse("manyclients"))
    assert (config.producers, config.consumers, config.queues) == (200, 200, 100)
    assert config.rate == 30000.0 and config.workers >= 2
    assert config.params()["rate"] == 30000.0
    (custom,) = plan(parse("manyclients", "--producers", "10", "--rate", "500", "--workers", "3"))
    assert (custom.producers, custom.consumers, custom.rate, custom.workers) == (10, 200, 500, 3)
    rates = plan(parse("manyclients,e2e", "--rate", "20000,60000"))
    assert [(c.scenario, c.rate) for c in rates] == [
        ("manyclients", 20000.0),
        ("manyclients", 60000.0),
        ("e2e", 20000.0),
    ]
    (e2e,) = plan(parse("e2e"))
    assert (e2e.producers, e2e.consumers, e2e.rate) == (1, 1, 1000.0)


def test_mgmt_measures_one_producer_and_one_consumer_unless_told() -> None:
    config = mgmt_config(parse("mgmt"))
    assert (config.scenario, config.producers, config.consumers) == ("e2e", 1, 1)
    assert mgmt_config(parse("mgmt", "--producers", "3")).producers == 3


def test_large_bodies_keep_at_most_64_mib_queued() -> None:
    assert RunConfig("e2e", size=16).backlog == 5000
    assert RunConfig("e2e", size=16384).backlog == 4096
    assert RunConfig("e2e", size=1 << 20).backlog == 64
    assert RunConfig("e2e", size=1 << 20, inflight=10).backlog == 10
