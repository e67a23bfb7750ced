"""Presenting bench results: the text table, the A/B ratio lines, and the JSON document.

Layer: ``amqplite/bench`` (stdlib only). Pure functions over ``RunResult`` values so that the
CLI stays thin and the formats are testable without a broker.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from typing import Any

from amqplite.bench.scenarios import RunResult
from amqplite.bench.selftest import SelftestResult

JSON_FORMAT_VERSION = 1

# Metrics compared between brokers: higher is better for rates, lower for the others.
RATIO_METRICS = (
    "msg_per_s",
    "deliver_per_s",
    "latency_p50_ms",
    "latency_p99_ms",
    "broker_cpu_us_per_msg",
    "broker_rss_mb",
)


def metric(result: RunResult, name: str) -> float | None:
    if name.startswith("latency_"):
        if result.latency_ms is None:
            return None
        return result.latency_ms.get(name.split("_")[1])
    value = getattr(result, name)
    return float(value) if isinstance(value, int | float) else None


def compare_pairs(pairs: list[tuple[RunResult, RunResult]]) -> dict[str, Any]:
    """Per-pair ratios A/B and their median, for one configuration."""
    first = pairs[0][0]
    ratios: dict[str, dict[str, Any]] = {}
    for name in RATIO_METRICS:
        values = []
        for a, b in pairs:
            va, vb = metric(a, name), metric(b, name)
            if va is not None and vb and a.error is None and b.error is None:
                values.append(round(va / vb, 3))
        if values:
            ratios[name] = {"pairs": values, "median": round(statistics.median(values), 3)}
    return {"scenario": first.scenario, "params": first.params, "ratios": ratios}


def to_json(
    results: list[RunResult],
    comparisons: list[dict[str, Any]],
    selftests: list[SelftestResult],
) -> dict[str, Any]:
    return {
        "tool": "amqplite-bench",
        "format": JSON_FORMAT_VERSION,
        "results": [dataclasses.asdict(r) for r in results],
        "comparisons": comparisons,
        "selftest": [dataclasses.asdict(s) for s in selftests],
    }


def _rate(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(results: list[RunResult]) -> str:
    header = (
        "target",
        "scenario",
        "params",
        "msg/s",
        "pub/s",
        "conf/s",
        "deliv/s",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "cpu us/msg",
        "rss MB",
        "note",
    )
    rows = [header]
    for r in results:
        lat = r.latency_ms or {}
        note = r.error or ""
        if r.idle_conn_kb is not None:
            note = f"{r.idle_conn_kb:.1f} KB/idle conn {note}".strip()
        if r.queued_msg_bytes is not None:
            note = f"{r.queued_msg_bytes:.0f} B/queued msg {note}".strip()
        if r.nacked:
            note = f"{r.nacked} nacked {note}".strip()
        rows.append(
            (
                r.target,
                r.scenario,
                " ".join(f"{k}={v}" for k, v in r.params.items()),
                _rate(r.msg_per_s),
                _rate(r.publish_per_s),
                _rate(r.confirm_per_s),
                _rate(r.deliver_per_s),
                _num(lat.get("p50"), 3),
                _num(lat.get("p99"), 3),
                _num(lat.get("p999"), 3),
                _num(r.broker_cpu_us_per_msg, 1),
                _num(r.broker_rss_mb, 0),
                note,
            )
        )
    return _columns(rows)


def format_comparisons(comparisons: list[dict[str, Any]]) -> str:
    lines = []
    for c in comparisons:
        params = " ".join(f"{k}={v}" for k, v in c["params"].items())
        lines.append(f"A/B {c['scenario']} {params}")
        if not c["ratios"]:
            lines.append("    (no comparable pairs: see the errors above)")
        for name, ratio in c["ratios"].items():
            pairs = " ".join(f"{v:.2f}" for v in ratio["pairs"])
            lines.append(f"    {name:<22} median {ratio['median']:.2f}   pairs {pairs}")
    return "\n".join(lines)


def format_selftest(results: list[SelftestResult]) -> str:
    rows: list[tuple[str, ...]] = [
        ("size", "messages", "encode msg/s", "parse+ack msg/s", "both msg/s")
    ]
    for s in results:
        rows.append(
            (
                str(s.size),
                str(s.messages),
                _rate(s.encode_per_s),
                _rate(s.parse_per_s),
                _rate(s.msg_per_s),
            )
        )
    return _columns(rows)


def _columns(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
