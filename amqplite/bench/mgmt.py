"""``amqplite bench mgmt``: end-to-end throughput with and without management pollers.

Layer: ``amqplite/bench`` (stdlib only).  The question (issue 13): does management load slow
messaging?  The broker gets ``--queues`` extra idle queues (default 10,000), then the e2e
scenario runs in alternating pairs: once alone, once while ``--pollers`` HTTP clients
(default 20) each GET ``/api/queues`` and ``/metrics`` every second and one dashboard GETs
``/api/overview`` and ``/api/queues`` every second (its overview and queues tabs) and,
as Chromium does for the dashboard, revalidates them with ``If-None-Match``.  Each
pair gives the ratio with ÷ without; the report is their median, so the machine's load
(which both halves of a pair share) cancels out.

The pollers run in their own process (``python -m amqplite.bench.mgmt --poll ...``), so
they never take the bench client's loop; they send ``Accept-Encoding: gzip`` as browsers,
Prometheus and ``requests`` do (``--no-gzip`` to ask for plain bodies), and read every
body to its end without parsing it (parsing is the client's CPU, not the broker's, and on
a 2-core machine it would compete with the load generator).

Where the CPU went, per half: the broker's (``--broker-pid``), the load generator's (this
process), the pollers' process and the whole machine's (``/proc/stat``: busy, of which
system and softirq -- the kernel's loopback work -- and steal), all in % of one core over
the run, so that a slower half can be told apart from a busier machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from amqplite.bench.client import BenchError, connect, parse_url, pipelined
from amqplite.bench.procstat import cpu_seconds
from amqplite.bench.scenarios import RunConfig, RunResult, run_scenario

POLLED = ("/api/queues", "/metrics")
DASHBOARD = ("/api/overview", "/api/queues")
#: The line the pollers' process prints once every client has made a round.
READY = "ready\n"


@dataclass(slots=True)
class PollStats:
    requests: int = 0
    errors: int = 0
    not_modified: int = 0
    bytes: int = 0
    seconds: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.seconds)

        def at(q: float) -> float | None:
            return (
                round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)
                if ordered
                else None
            )

        return {
            "requests": self.requests,
            "errors": self.errors,
            "not_modified": self.not_modified,
            "bytes": self.bytes,
            "p50_ms": at(0.5),
            "p99_ms": at(0.99),
        }


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, int, dict[str, str]]:
    """(status, body bytes, headers) of one HTTP/1.1 response, read to its end."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)
    }
    if status == 304 or status == 204:
        return status, 0, headers
    if "content-length" in headers:
        length = int(headers["content-length"])
        await reader.readexactly(length)
        return status, length, headers
    total = 0
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            total += size
            if size == 0:
                return status, total, headers
    raise BenchError("response without a length")


async def _poller(
    host: str,
    port: int,
    auth: str,
    paths: Sequence[str],
    gzip: bool,
    stop: asyncio.Event,
    stats: PollStats,
    polled: Callable[[], None],
    revalidate: bool = False,
) -> None:
    """One client: every second, GET each of ``paths`` on one keep-alive connection;
    ``polled()`` once its first round is done.  ``revalidate``: send the last ETag of
    each path as ``If-None-Match``, as a browser does for the dashboard's requests
    (Chromium does: see docs/performance.md)."""
    try:
        await asyncio.wait_for(stop.wait(), random.random())  # spread the clients over a second
        return
    except TimeoutError:
        pass
    reader, writer = await asyncio.open_connection(host, port)
    extra = "Accept-Encoding: gzip\r\n" if gzip else ""
    heads = [
        f"GET {p} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n{extra}" for p in paths
    ]
    tags: dict[int, str] = {}
    try:
        next_at = time.monotonic()
        first = True
        while not stop.is_set():
            for i, head in enumerate(heads):
                t0 = time.monotonic()
                condition = f"If-None-Match: {tags[i]}\r\n" if i in tags else ""
                writer.write(f"{head}{condition}\r\n".encode())
                status, size, headers = await _read_response(reader)
                stats.requests += 1
                stats.bytes += size
                stats.seconds.append(time.monotonic() - t0)
                if revalidate and "etag" in headers:
                    tags[i] = headers["etag"]
                if status == 304:
                    stats.not_modified += 1
                elif status != 200:
                    stats.errors += 1
            if first:
                first = False
                polled()
            next_at += 1.0
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
            except TimeoutError:
                pass
    finally:
        writer.close()


async def _poll(
    http_url: str, clients: int, dashboard: bool, gzip: bool, stop: asyncio.Event
) -> dict[str, Any]:
    parts = urlsplit(http_url)
    auth = base64.b64encode(
        f"{parts.username or 'guest'}:{parts.password or 'guest'}".encode()
    ).decode()
    host, port = parts.hostname or "127.0.0.1", parts.port or 15672
    stats = PollStats()
    waiting = clients + dashboard

    def polled() -> None:
        # Every client has made its first round: tell the parent (Pollers.start).
        nonlocal waiting
        waiting -= 1
        if not waiting:
            sys.stdout.write(READY)
            sys.stdout.flush()

    tasks = [_poller(host, port, auth, POLLED, gzip, stop, stats, polled) for _ in range(clients)]
    if dashboard:
        # A browser revalidates what it fetched before (the 20 pollers stand for
        # Prometheus and scripts, which do not).
        tasks.append(
            _poller(host, port, auth, DASHBOARD, gzip, stop, stats, polled, revalidate=True)
        )
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    out = stats.summary()
    out["failed_clients"] = len(failures)
    if failures:
        out["failure"] = repr(failures[0])
    return out


def poll_main(argv: Sequence[str]) -> int:
    """The pollers' process: poll until stdin closes, then print a JSON summary."""
    parser = argparse.ArgumentParser(prog="python -m amqplite.bench.mgmt")
    parser.add_argument("--poll", required=True, metavar="HTTP_URL")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--no-dashboard", action="store_true")
    parser.add_argument("--no-gzip", action="store_true")
    args = parser.parse_args(argv)

    async def main() -> dict[str, Any]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        reading = loop.run_in_executor(None, sys.stdin.read)
        reading.add_done_callback(lambda _: stop.set())
        return await _poll(args.poll, args.clients, not args.no_dashboard, not args.no_gzip, stop)

    json.dump(asyncio.run(main()), sys.stdout)
    return 0


class Pollers:
    """The pollers' process, started and stopped around one run."""

    def __init__(self, http_url: str, clients: int, gzip: bool) -> None:
        self.argv = [
            sys.executable,
            "-m",
            "amqplite.bench.mgmt",
            "--poll",
            http_url,
            "--clients",
            str(clients),
        ]
        if not gzip:
            self.argv.append("--no-gzip")
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    async def start(self, warmup: float) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        assert self.proc.stdout is not None
        # Until every client has connected and polled once, and at least ``warmup``.
        await asyncio.gather(self.proc.stdout.readline(), asyncio.sleep(warmup))

    async def stop(self) -> dict[str, Any]:
        proc = self.proc
        assert proc is not None and proc.stdin is not None
        proc.stdin.close()
        out, _ = await proc.communicate()
        self.proc = None
        try:
            summary: dict[str, Any] = json.loads(out or b"{}")
        except ValueError:
            summary = {"failure": f"pollers printed {out[:200]!r}"}
        return summary


def machine_ticks() -> tuple[int, ...] | None:
    """The first line of ``/proc/stat``: user nice system idle iowait irq softirq steal."""
    try:
        with open("/proc/stat") as f:
            return tuple(int(x) for x in f.readline().split()[1:9])
    except (OSError, ValueError):
        return None


@dataclass(slots=True)
class CpuShare:
    """What used the CPU during one half, in % of one core (None where unknown)."""

    load_generator: float | None = None
    pollers: float | None = None
    machine_busy: float | None = None  # all processes, user + system + irq + steal
    machine_system: float | None = None  # system + irq + softirq: the kernel
    machine_steal: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {
            "load_generator": self.load_generator,
            "pollers": self.pollers,
            "machine_busy": self.machine_busy,
            "machine_system": self.machine_system,
            "machine_steal": self.machine_steal,
        }


class _Watch:
    """CPU used by the pollers' process and the machine between start and stop."""

    def __init__(self, pollers_pid: int | None) -> None:
        self.pid = pollers_pid
        self.t0 = time.monotonic()
        self.ticks0 = machine_ticks()
        self.pollers0 = cpu_seconds(pollers_pid) if pollers_pid else None

    def stop(self, result: RunResult) -> CpuShare:
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        share = CpuShare(load_generator=result.client_cpu_pct)
        if self.pid and self.pollers0 is not None:
            now = cpu_seconds(self.pid)
            if now is not None:
                share.pollers = round(100 * (now - self.pollers0) / elapsed, 1)
        ticks = machine_ticks()
        if self.ticks0 is not None and ticks is not None:
            d = [b - a for a, b in zip(self.ticks0, ticks, strict=True)]
            cores = os.cpu_count() or 1
            total = sum(d) or 1
            _user, _nice, system, idle, iowait, irq, softirq, steal = d

            def pct(n: int) -> float:
                return round(100 * cores * n / total, 1)

            share.machine_busy = pct(total - idle - iowait)
            share.machine_system = pct(system + irq + softirq)
            share.machine_steal = pct(steal)
        return share


async def _declare_idle(url: str, count: int, prefix: str) -> list[str]:
    admin = await connect(url, f"{prefix}.idle-admin")
    await admin.open_channel(1)
    names = [f"{prefix}.idle{i}" for i in range(count)]
    for start in range(0, count, 2000):
        await pipelined(admin.declare_queue(1, q) for q in names[start : start + 2000])
    await admin.close()
    return names


async def _delete_idle(url: str, names: list[str], prefix: str) -> None:
    admin = await connect(url, f"{prefix}.idle-cleanup")
    await admin.open_channel(1)
    for start in range(0, len(names), 2000):
        await pipelined(admin.delete_queue(1, q) for q in names[start : start + 2000])
    await admin.close()


@dataclass(slots=True)
class MgmtPair:
    without: RunResult
    with_pollers: RunResult
    polls: dict[str, Any]
    cpu_without: CpuShare = field(default_factory=CpuShare)
    cpu_with: CpuShare = field(default_factory=CpuShare)

    @property
    def ratio(self) -> float | None:
        a, b = self.with_pollers.msg_per_s, self.without.msg_per_s
        return round(a / b, 3) if a and b else None


async def run_mgmt(
    url: str,
    http_url: str,
    config: RunConfig,
    *,
    idle_queues: int,
    pollers: int,
    runs: int,
    gzip: bool = True,
    broker_pid: int | None = None,
    target: str = "A",
    warmup: float = 2.0,
) -> list[MgmtPair]:
    """``runs`` pairs of e2e (``config``) without and with the pollers, alternating which
    half goes first, against a broker holding ``idle_queues`` more queues."""
    prefix = f"amqplite-bench.{id(config)}.mgmt"
    names = await _declare_idle(url, idle_queues, prefix)
    pairs: list[MgmtPair] = []
    try:
        for i in range(runs):
            halves: dict[bool, RunResult] = {}
            shares: dict[bool, CpuShare] = {}
            polls: dict[str, Any] = {}
            for polled in (False, True) if i % 2 == 0 else (True, False):
                if polled:
                    poll = Pollers(http_url, pollers, gzip)
                    await poll.start(warmup)
                    try:
                        watch = _Watch(poll.pid)
                        halves[True] = await run_scenario(
                            url, config, target=target, broker_pid=broker_pid
                        )
                        shares[True] = watch.stop(halves[True])
                    finally:
                        polls = await poll.stop()
                else:
                    watch = _Watch(None)
                    halves[False] = await run_scenario(
                        url, config, target=target, broker_pid=broker_pid
                    )
                    shares[False] = watch.stop(halves[False])
                await asyncio.sleep(0.5)
            pairs.append(MgmtPair(halves[False], halves[True], polls, shares[False], shares[True]))
    finally:
        await _delete_idle(url, names, prefix)
    return pairs


def summarise(pairs: list[MgmtPair]) -> dict[str, Any]:
    ratios = [p.ratio for p in pairs if p.ratio is not None]
    cpu = [
        (p.with_pollers.broker_cpu_us_per_msg, p.without.broker_cpu_us_per_msg)
        for p in pairs
        if p.with_pollers.broker_cpu_us_per_msg and p.without.broker_cpu_us_per_msg
    ]
    return {
        "ratios": ratios,
        "median_ratio": statistics.median(ratios) if ratios else None,
        "cpu_per_msg_ratio": statistics.median(a / b for a, b in cpu) if cpu else None,
        "pairs": [
            {
                "without_msg_per_s": p.without.msg_per_s,
                "with_msg_per_s": p.with_pollers.msg_per_s,
                "without_cpu_us": p.without.broker_cpu_us_per_msg,
                "with_cpu_us": p.with_pollers.broker_cpu_us_per_msg,
                "without_cpu_pct": p.without.broker_cpu_pct,
                "with_cpu_pct": p.with_pollers.broker_cpu_pct,
                "errors": [e for e in (p.without.error, p.with_pollers.error) if e],
                "polls": p.polls,
                "cpu_pct_without": p.cpu_without.as_dict(),
                "cpu_pct_with": p.cpu_with.as_dict(),
            }
            for p in pairs
        ],
    }


def format_summary(target: str, summary: dict[str, Any]) -> str:
    lines = [f"[{target}] e2e with management pollers / without (per pair):"]
    for i, p in enumerate(summary["pairs"]):
        polls = p["polls"]
        lines.append(
            f"  pair {i + 1}: {p['with_msg_per_s']} / {p['without_msg_per_s']} msg/s"
            f"  broker CPU {p['with_cpu_us']} / {p['without_cpu_us']} us/msg"
            f"  polls {polls.get('requests')} (errors {polls.get('errors')},"
            f" 304 {polls.get('not_modified')}, p50 {polls.get('p50_ms')} ms,"
            f" p99 {polls.get('p99_ms')} ms, {polls.get('bytes', 0) // 1024} KiB)"
            + (f"  errors: {p['errors']}" if p["errors"] else "")
        )
        w, wo = p["cpu_pct_with"], p["cpu_pct_without"]
        lines.append(
            f"          CPU % of a core, with / without: broker {p['with_cpu_pct']} /"
            f" {p['without_cpu_pct']}, load generator {w['load_generator']} /"
            f" {wo['load_generator']}, pollers {w['pollers']}; machine busy"
            f" {w['machine_busy']} / {wo['machine_busy']} (kernel {w['machine_system']} /"
            f" {wo['machine_system']}, steal {w['machine_steal']} / {wo['machine_steal']})"
        )
    lines.append(
        f"  median ratio {summary['median_ratio']}  (broker CPU per message ratio {summary['cpu_per_msg_ratio']})"
    )
    return "\n".join(lines)


def default_http_url(amqp_url: str) -> str:
    """http://user:password@host:15672/ for an AMQP URL (RabbitMQ's and amqplite's default port)."""
    host, _, user, password, _ = parse_url(amqp_url)
    return f"http://{user}:{password}@{host}:15672/"


if __name__ == "__main__":
    sys.exit(poll_main(sys.argv[1:]))
