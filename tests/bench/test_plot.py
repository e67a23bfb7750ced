"""``python -m amqplite.bench.plot`` turns bench JSON into an SVG line chart."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from amqplite.bench import plot

SVG = "{http://www.w3.org/2000/svg}"


def _result(target: str, size: int, prefetch: int, rate: float) -> dict[str, object]:
    return {
        "scenario": "e2e",
        "target": target,
        "params": {"size": size, "prefetch": prefetch, "producers": 1, "consumers": 1},
        "msg_per_s": rate,
        "error": None,
    }


def test_plot_draws_one_line_per_broker_and_size_with_median_points(tmp_path: Path) -> None:
    results = [
        _result(t, size, p, rate)
        for t in ("A", "B")
        for size in (16, 1024)
        for p in (1, 10, 100, 1000)
        for rate in (1000.0 * p, 3000.0 * p, 2000.0 * p)  # median: 2000 * p
    ]
    results.append({**_result("A", 16, 100, 5.0), "error": "timed out"})  # ignored
    src = tmp_path / "e2e.json"
    src.write_text(json.dumps({"results": results}))
    out = tmp_path / "e2e.svg"
    assert plot.main([str(src), "--x", "prefetch", "--out", str(out)]) == 0
    root = ET.fromstring(out.read_text())
    lines = root.findall(f"{SVG}polyline")
    assert len(lines) == 4  # 2 brokers x 2 sizes
    legend = [t.text for t in root.iter(f"{SVG}text")]
    assert "amqplite 16 B" in legend
    assert "RabbitMQ 1 KiB" in legend
    series = plot.collect([{"results": results}], "e2e", "prefetch", "msg_per_s")
    key = ("A", (("consumers", 1), ("producers", 1), ("size", 16)))
    assert series[key] == [(1.0, 2000.0), (10.0, 20000.0), (100.0, 200000.0), (1000.0, 2e6)]


def test_plot_without_matching_results_fails_cleanly(tmp_path: Path) -> None:
    src = tmp_path / "none.json"
    src.write_text(json.dumps({"results": []}))
    assert plot.main([str(src), "--out", str(tmp_path / "x.svg")]) == 1
    assert not (tmp_path / "x.svg").exists()
