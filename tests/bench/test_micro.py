"""The micro-benchmark suite (``python -m amqplite.bench.micro``) runs and reports every
benchmark.  Timings are never asserted: only that each benchmark ran and produced a number."""

from __future__ import annotations

import json

import pytest

from amqplite.bench import micro


def test_micro_suite_reports_every_benchmark_without_errors() -> None:
    results = micro.run_suite(iterations=50, repeat=1)
    assert [r["name"] for r in results] == [name for name, _, _ in micro.BENCHMARKS]
    for r in results:
        assert r["error"] is None, (r["name"], r["error"])
        assert r["ns_per_op"] > 0
        assert r["ops_per_s"] > 0


def test_micro_json_output_lists_every_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    assert micro.main(["--json", "--iterations", "20", "--repeat", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["tool"] == "amqplite-micro"
    assert {r["name"] for r in doc["results"]} == {name for name, _, _ in micro.BENCHMARKS}


def test_micro_benchmark_failure_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(n: int) -> int:
        raise AttributeError("no such API in this tree")

    monkeypatch.setattr(micro, "bench_ack", broken)
    results = {r["name"]: r for r in micro.run_suite(iterations=20, repeat=1)}
    assert results["ack"]["error"] == "AttributeError: no such API in this tree"
    assert results["ack"]["ns_per_op"] is None
    assert results["route_direct"]["error"] is None


def test_scaling_mode_routes_the_same_matching_keys_at_every_size(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from amqplite.bench.micro import main, run_scaling

    rows = run_scaling(bindings=(10, 2_000), iterations=2_000, repeat=1)
    assert [r["bindings"] for r in rows] == [10, 2_000]
    assert rows[0]["topic_ratio"] == 1.0 and rows[0]["direct_ratio"] == 1.0
    assert all(r["topic_trie_ns"] > 0 and r["direct_ns"] > 0 for r in rows)
    assert main(["--scaling", "--json", "--iterations", "1000", "--repeat", "1"]) == 0
    assert '"scaling"' in capsys.readouterr().out
