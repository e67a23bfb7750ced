"""SVG line charts from ``amqplite bench --json`` documents (stdlib only, bench package).

Usage::

    python -m amqplite.bench.plot RESULTS.json [MORE.json ...] --x prefetch \\
        --scenario e2e --out docs/perf/e2e-prefetch.svg [--metric msg_per_s] \\
        [--label-a amqplite] [--label-b RabbitMQ] [--title TEXT]

Every result of ``--scenario`` is grouped by target (A / B) and by the value of every
other parameter (one line each, e.g. one line per body size when ``--x prefetch``); a
point is the median of ``--metric`` over the runs of that configuration.  The x axis is
logarithmic (prefetch 1..1000, sizes 16 B..16 KiB).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 80, 190, 40, 60
#: Line colours per target; dashes per series within a target.
COLOURS = {"A": "#1f77b4", "B": "#d62728"}
DASHES = ["", "6,4", "2,3", "10,3,2,3"]


def _series_key(params: dict[str, Any], x: str) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, v) for k, v in params.items() if k != x))


def collect(
    docs: list[dict[str, Any]], scenario: str, x: str, metric: str
) -> dict[tuple[str, tuple[tuple[str, Any], ...]], list[tuple[float, float]]]:
    """{(target, other params): [(x, median metric), ...] sorted by x}."""
    values: dict[tuple[str, tuple[tuple[str, Any], ...]], dict[float, list[float]]] = {}
    for doc in docs:
        for r in doc.get("results", []):
            if r.get("scenario") != scenario or r.get("error"):
                continue
            params = r.get("params", {})
            value = r.get(metric)
            if x not in params or not isinstance(value, int | float):
                continue
            key = (r["target"], _series_key(params, x))
            values.setdefault(key, {}).setdefault(float(params[x]), []).append(float(value))
    return {
        key: sorted((xv, statistics.median(vs)) for xv, vs in points.items())
        for key, points in values.items()
    }


def _fmt(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:g}M"
    if value >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def _size(value: float) -> str:
    n = int(value)
    return f"{n // 1024} KiB" if n >= 1024 and n % 1024 == 0 else f"{n} B"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * exp >= value:
            return step * exp
    return 10.0 * exp


def _label(params: tuple[tuple[str, Any], ...], x: str) -> str:
    keep = [(k, v) for k, v in params if k in ("size", "prefetch", "bindings", "queues")]
    parts = []
    for k, v in keep:
        parts.append(_size(float(v)) if k == "size" else f"{k} {v}")
    return ", ".join(parts)


def render(
    series: dict[tuple[str, tuple[tuple[str, Any], ...]], list[tuple[float, float]]],
    *,
    x: str,
    metric: str,
    title: str,
    labels: dict[str, str],
) -> str:
    """The chart as an SVG document."""
    if not series:
        raise ValueError("no matching results to plot")
    xs = sorted({xv for points in series.values() for xv, _ in points})
    ymax = _nice_max(max(y for points in series.values() for _, y in points) * 1.05)
    lx0, lx1 = math.log10(xs[0]), math.log10(xs[-1])
    span = (lx1 - lx0) or 1.0
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(value: float) -> float:
        return LEFT + (math.log10(value) - lx0) / span * pw

    def py(value: float) -> float:
        return TOP + ph - value / ymax * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>',
    ]
    for i in range(6):  # horizontal grid and y labels
        yv = ymax * i / 5
        y = py(yv)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(yv)}</text>')
    for xv in xs:  # x ticks
        xp = px(xv)
        label = _size(xv) if x == "size" else _fmt(xv)
        out.append(f'<line x1="{xp:.1f}" y1="{TOP}" x2="{xp:.1f}" y2="{TOP + ph}" stroke="#eee"/>')
        out.append(f'<text x="{xp:.1f}" y="{TOP + ph + 18}" text-anchor="middle">{label}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    out.append(
        f'<text x="{LEFT + pw / 2}" y="{HEIGHT - 14}" text-anchor="middle">'
        f"{escape(x)} (log scale)</text>"
    )
    out.append(
        f'<text x="18" y="{TOP + ph / 2}" text-anchor="middle" '
        f'transform="rotate(-90 18 {TOP + ph / 2})">{escape(metric)}</text>'
    )
    legend_y = TOP + 10
    dash_of: dict[tuple[tuple[str, Any], ...], str] = {}
    for (target, params), points in sorted(series.items()):
        dash = dash_of.setdefault(params, DASHES[len(dash_of) % len(DASHES)])
        colour = COLOURS.get(target, "#555")
        path = " ".join(f"{px(xv):.1f},{py(yv):.1f}" for xv, yv in points)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash_attr}/>'
        )
        for xv, yv in points:
            out.append(f'<circle cx="{px(xv):.1f}" cy="{py(yv):.1f}" r="3" fill="{colour}"/>')
        lx = LEFT + pw + 12
        out.append(
            f'<line x1="{lx}" y1="{legend_y}" x2="{lx + 24}" y2="{legend_y}" stroke="{colour}" '
            f'stroke-width="2"{dash_attr}/>'
        )
        name = labels.get(target, target)
        text = f"{name} {_label(params, x)}".strip()
        out.append(f'<text x="{lx + 30}" y="{legend_y + 4}">{escape(text)}</text>')
        legend_y += 20
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m amqplite.bench.plot", description="SVG line chart of bench results."
    )
    parser.add_argument("inputs", nargs="+", type=Path, help="amqplite bench --json output")
    parser.add_argument("--scenario", default="e2e")
    parser.add_argument("--x", default="prefetch", help="parameter on the x axis")
    parser.add_argument("--metric", default="msg_per_s")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--title", default=None)
    parser.add_argument("--label-a", default="amqplite")
    parser.add_argument("--label-b", default="RabbitMQ")
    args = parser.parse_args(argv)
    docs = [json.loads(path.read_text()) for path in args.inputs]
    series = collect(docs, args.scenario, args.x, args.metric)
    title = args.title or f"{args.scenario}: {args.metric} by {args.x}"
    try:
        svg = render(
            series,
            x=args.x,
            metric=args.metric,
            title=title,
            labels={"A": args.label_a, "B": args.label_b},
        )
    except ValueError as exc:
        sys.stderr.write(f"plot: {exc}\n")
        return 1
    args.out.write_text(svg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
