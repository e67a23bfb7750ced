"""The load generator's arguments, its run plan, and printing its results.

Layer: ``amqplite/bench`` (stdlib only).  ``add_arguments`` and ``run`` serve both
``python -m amqplite.bench`` (``main(argv)``) and ``amqplite bench``, which
:mod:`amqplite.cli.bench` hangs under the ``amqplite`` command.  The usage text is the
package docstring (``amqplite.bench.__doc__``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
from collections.abc import Sequence
from typing import Any

import amqplite.bench
from amqplite.bench.manyclients import default_workers
from amqplite.bench.report import (
    compare_pairs,
    format_comparisons,
    format_selftest,
    format_table,
    to_json,
)
from amqplite.bench.scenarios import (
    CONFIRMING,
    CONSUMING,
    LATENCY,
    SCENARIOS,
    STREAM_SCENARIOS,
    RunConfig,
    RunResult,
    run_scenario,
)
from amqplite.bench.selftest import SelftestResult, run_selftest

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
# --queues default per scenario: a handful for routing scenarios, many for "queues".
DEFAULT_QUEUES = {"queues": 1000, "manyclients": 100}
# Per-scenario defaults of --producers, --consumers and --rate (else 1, 1 and 1000 msg/s).
DEFAULT_PRODUCERS = {"manyclients": 200}
DEFAULT_CONSUMERS = {"manyclients": 200}
# manyclients: about RabbitMQ 3.10's saturation with 400 connections on a 2-core machine
# (see docs/performance.md).
DEFAULT_RATE = {"manyclients": 30000.0}


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a comma list of integers, got {text!r}"
        ) from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return values


def _rate_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a comma list of numbers, got {text!r}"
        ) from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected rates > 0, got {text!r}")
    return values


def _scenarios(text: str) -> list[str]:
    names: list[str] = []
    for name in (n.strip() for n in text.split(",") if n.strip()):
        if name == "all":
            names.extend(SCENARIOS)
        elif name == "stream":
            names.extend(STREAM_SCENARIOS)
        elif name in SCENARIOS or name in ("selftest", "mgmt", "restart"):
            names.append(name)
        else:
            choices = ", ".join((*SCENARIOS, "stream", "all", "selftest", "mgmt", "restart"))
            raise argparse.ArgumentTypeError(f"unknown scenario {name!r} (choose from {choices})")
    return names


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scenario",
        nargs="?",
        default=["e2e"],
        type=_scenarios,
        help=f"comma list of: {', '.join(SCENARIOS)}, stream, all, selftest (default e2e)",
    )
    parser.add_argument("--url", default=DEFAULT_URL, help=f"broker A (default {DEFAULT_URL})")
    parser.add_argument(
        "--compare", metavar="URL2", help="broker B: run every configuration on A then B"
    )
    parser.add_argument(
        "--broker-pid", type=int, metavar="PID", help="PID of broker A, for CPU and RSS"
    )
    parser.add_argument("--compare-pid", type=int, metavar="PID2", help="PID of broker B")
    parser.add_argument(
        "--producers",
        type=_positive(int),
        help="producer connections (default 1; manyclients 200)",
    )
    parser.add_argument(
        "--consumers",
        type=_positive(int),
        help="consumer connections (default 1; manyclients 200)",
    )
    parser.add_argument(
        "--workers",
        type=_positive(int),
        default=default_workers(),
        help=f"manyclients: load-generator processes (default {default_workers()})",
    )
    parser.add_argument(
        "--size", type=_int_list, default=[16], help="body bytes, comma list (default 16)"
    )
    parser.add_argument(
        "--prefetch",
        type=_int_list,
        default=[100],
        help="consumer prefetch, comma list (default 100)",
    )
    parser.add_argument(
        "--confirm-window",
        "--window",
        dest="window",
        type=_int_list,
        default=[1000],
        help="max unconfirmed publishes per producer, comma list (default 1000)",
    )
    parser.add_argument(
        "--queues",
        type=_positive(int),
        help="queues for fanout/topic/direct-bindings (10) and queues (1000)",
    )
    parser.add_argument(
        "--bindings",
        type=_int_list,
        default=[1000],
        help="topic/direct-bindings bindings, comma list (default 1000)",
    )
    parser.add_argument(
        "--rate",
        type=_rate_list,
        help="total msg/s of the latency (default 1000) and manyclients (default 30000) "
        "scenarios, comma list",
    )
    parser.add_argument(
        "--connections", type=int, default=200, help="manyconn idle connections (default 200)"
    )
    parser.add_argument(
        "--duration",
        type=_positive(float),
        default=5.0,
        help="seconds of publishing per run (default 5)",
    )
    parser.add_argument(
        "--count", type=_positive(int), help="stop after this many messages per run"
    )
    parser.add_argument(
        "--ack-every",
        type=int,
        default=0,
        help="consumer acks: 0 = one multiple-ack per receive buffer (default), 1 = one ack per "
        "message, N = a multiple-ack every N messages",
    )
    parser.add_argument(
        "--inflight",
        type=_positive(int),
        default=5000,
        help="max published-but-undelivered (default 5000, and at most 64 MiB of bodies)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=_positive(float),
        default=30.0,
        help="seconds to wait for stragglers",
    )
    parser.add_argument(
        "--runs", type=_positive(int), default=1, help="repetitions (pairs with --compare)"
    )
    parser.add_argument(
        "--pause", type=float, default=0.5, help="seconds between runs (default 0.5)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document instead of the table"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument(
        "--http-url",
        metavar="URL",
        help="mgmt: broker A's management API (default http://USER:PASS@HOST:15672/ from --url)",
    )
    parser.add_argument(
        "--compare-http-url", metavar="URL2", help="mgmt: broker B's management API"
    )
    parser.add_argument(
        "--pollers", type=int, default=20, help="mgmt: HTTP clients polling (default 20)"
    )
    parser.add_argument(
        "--no-gzip", action="store_true", help="mgmt: pollers do not accept gzip bodies"
    )
    parser.add_argument(
        "--start-cmd",
        metavar="CMD",
        help="restart: shell command that runs broker A in the foreground (the bench starts, "
        "stops and restarts it)",
    )
    parser.add_argument(
        "--restart-mode",
        choices=("clean", "kill", "both"),
        default="both",
        help="restart: SIGTERM, SIGKILL (kill -9) or one of each (default both)",
    )


def plan(args: argparse.Namespace) -> list[RunConfig]:
    """Every configuration the arguments ask for, in order (selftest excluded)."""
    configs: list[RunConfig] = []
    for scenario in args.scenario:
        if scenario in ("selftest", "mgmt", "restart"):
            continue
        prefetches = args.prefetch if scenario in CONSUMING else [args.prefetch[0]]
        windows = args.window if scenario in CONFIRMING else [args.window[0]]
        bindings = args.bindings if scenario in ("topic", "direct-bindings") else [args.bindings[0]]
        queues = args.queues or DEFAULT_QUEUES.get(scenario, 10)
        rates = args.rate if args.rate else [DEFAULT_RATE.get(scenario, 1000.0)]
        if scenario not in LATENCY and scenario != "manyclients":
            rates = rates[:1]
        for size, prefetch, window, nbind, rate in itertools.product(
            args.size, prefetches, windows, bindings, rates
        ):
            configs.append(
                RunConfig(
                    scenario=scenario,
                    size=size,
                    prefetch=prefetch,
                    producers=args.producers or DEFAULT_PRODUCERS.get(scenario, 1),
                    consumers=args.consumers or DEFAULT_CONSUMERS.get(scenario, 1),
                    workers=args.workers,
                    window=max(1, window),
                    queues=queues,
                    bindings=max(1, nbind),
                    rate=rate,
                    connections=args.connections,
                    duration=args.duration,
                    count=args.count,
                    ack_every=args.ack_every,
                    inflight=args.inflight,
                    drain_timeout=args.drain_timeout,
                )
            )
    return configs


async def _run_all(
    args: argparse.Namespace, configs: list[RunConfig]
) -> tuple[list[RunResult], list[dict[str, Any]]]:
    results: list[RunResult] = []
    comparisons: list[dict[str, Any]] = []
    # An overwritten line only makes sense on a terminal; in logs it would be noise.
    progress = not args.quiet and sys.stderr.isatty()
    first = True
    for config in configs:
        pairs: list[tuple[RunResult, RunResult]] = []
        for _ in range(args.runs):
            if not first and args.pause > 0:
                await asyncio.sleep(args.pause)
            first = False
            a = await run_scenario(
                args.url, config, target="A", broker_pid=args.broker_pid, progress=progress
            )
            results.append(a)
            if args.compare:
                await asyncio.sleep(args.pause)
                b = await run_scenario(
                    args.compare, config, target="B", broker_pid=args.compare_pid, progress=progress
                )
                results.append(b)
                pairs.append((a, b))
        if pairs:
            comparisons.append(compare_pairs(pairs))
    return results, comparisons


def mgmt_config(args: argparse.Namespace) -> RunConfig:
    """The e2e run that ``mgmt`` measures with and without pollers."""
    return RunConfig(
        scenario="e2e",
        size=args.size[0],
        prefetch=args.prefetch[0],
        producers=args.producers or 1,
        consumers=args.consumers or 1,
        duration=args.duration,
        inflight=args.inflight,
        drain_timeout=args.drain_timeout,
    )


def _run_mgmt(args: argparse.Namespace) -> tuple[list[str], dict[str, Any], bool]:
    """The mgmt scenario on A (and B with --compare): e2e with and without pollers."""
    from amqplite.bench.mgmt import default_http_url, format_summary, run_mgmt, summarise

    config = mgmt_config(args)
    targets = [("A", args.url, args.http_url, args.broker_pid)]
    if args.compare:
        targets.append(("B", args.compare, args.compare_http_url, args.compare_pid))
    texts: list[str] = []
    out: dict[str, Any] = {}
    failed = False
    for target, url, http_url, pid in targets:
        pairs = asyncio.run(
            run_mgmt(
                url,
                http_url or default_http_url(url),
                config,
                idle_queues=args.queues or 10_000,
                pollers=args.pollers,
                runs=args.runs,
                gzip=not args.no_gzip,
                broker_pid=pid,
                target=target,
            )
        )
        summary = summarise(pairs)
        failed = failed or any(p["errors"] for p in summary["pairs"])
        out[target] = summary
        texts.append(format_summary(target, summary))
    return texts, out, failed


def _run_restart(args: argparse.Namespace) -> int:
    """The restart scenario: fill, stop (clean or kill -9), start again, time recovery."""
    from amqplite.bench.restart import format_results, run_restart
    from amqplite.bench.restart import to_json as restart_json

    if not args.start_cmd:
        print("amqplite bench restart needs --start-cmd CMD", file=sys.stderr)
        return 2
    mode = args.restart_mode
    modes = ["clean", "kill"] if mode == "both" else [mode]
    results = asyncio.run(
        run_restart(
            args.start_cmd,
            args.url,
            queues=args.queues or 100,
            count=args.count or 1_000_000,
            size=args.size[0],
            modes=modes * args.runs,
        )
    )
    if args.json:
        json.dump(restart_json(results), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_results(results))
    return 1 if any(r.error for r in results) else 0


def run(args: argparse.Namespace) -> int:
    if "restart" in args.scenario:
        return _run_restart(args)
    if "mgmt" in args.scenario:
        texts, out, failed = _run_mgmt(args)
        if args.json:
            json.dump({"tool": "amqplite-bench", "scenario": "mgmt", **out}, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            print("\n\n".join(texts))
        return 1 if failed else 0
    selftests: list[SelftestResult] = []
    if "selftest" in args.scenario:
        selftests = [run_selftest(size, ack_every=args.ack_every) for size in args.size]
    configs = plan(args)
    results, comparisons = asyncio.run(_run_all(args, configs)) if configs else ([], [])
    if args.json:
        json.dump(to_json(results, comparisons, selftests), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sections = []
        if selftests:
            sections.append(
                "client self-test (no broker, one core):\n" + format_selftest(selftests)
            )
        if results:
            sections.append(format_table(results))
        if comparisons:
            sections.append(format_comparisons(comparisons))
        print("\n\n".join(sections))
    return 1 if any(r.error for r in results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m amqplite.bench",
        description=(amqplite.bench.__doc__ or "").split("\n\n", 2)[0],
        epilog=(amqplite.bench.__doc__ or "").split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except KeyboardInterrupt:
        return 130
