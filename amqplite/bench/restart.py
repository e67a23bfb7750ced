"""``amqplite bench restart``: how long a broker takes to come back with a full store.

Layer: ``amqplite/bench`` (stdlib only).  The bench starts the broker itself (``--start-cmd``,
a shell command run in its own process group, e.g. ``amqplite serve --data-dir D`` or a
RabbitMQ node's ``rabbitmq-server``), so it can stop and restart it:

1. start the broker, wait until it accepts AMQP connections;
2. fill ``--queues`` durable queues (default 100) with ``--count`` persistent messages
   (default 1,000,000) of ``--size`` bytes (default 16), with confirms;
3. stop it: SIGTERM to its process group and wait (a clean stop), or with ``--kill`` SIGKILL
   (``kill -9``: no shutdown at all);
4. start it again and time, from the moment the command is started: ``ready`` (an AMQP
   connection opens), ``first`` (every queue has delivered its first message to a consumer)
   and ``all`` (every message has been delivered: every body was readable); and the CPU
   seconds the restarted broker (its process group) had used at ``first``, which unlike the
   times does not grow with the machine's load;
5. delete the queues and stop the broker.

``--runs N`` repeats 2-4 (clean and kill alternate with ``--mode both``).  The report prints
the times in seconds and, with ``--json``, one document.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from amqplite.bench.client import BenchConnection, BenchError, connect, pipelined
from amqplite.bench.procstat import group_cpu_seconds
from amqplite.bench.wire import BenchProtocolError, ConfirmTracker, PublishTemplate

PREFIX = "amqplite-bench.restart.q"
_FAILURES = (OSError, BenchError, BenchProtocolError, TimeoutError)


@dataclass(slots=True)
class RestartResult:
    mode: str  # "clean" or "kill"
    messages: int
    queues: int
    fill_s: float
    stop_s: float
    ready_s: float | None = None
    first_s: float | None = None
    all_s: float | None = None
    #: CPU seconds (user + system) of the broker's process group at ``first``, and of
    #: them the system's (the kernel's work for it: page faults, reads)
    first_cpu_s: float | None = None
    first_sys_s: float | None = None
    delivered: int = 0
    error: str | None = None


class Broker:
    """The broker process under test, started from a shell command in its own group."""

    def __init__(self, command: str, url: str) -> None:
        self.command = command
        self.url = url
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float) -> BenchConnection:
        """Start it; return the first connection it accepts (opened as soon as it does)."""
        self.proc = subprocess.Popen(
            self.command,
            shell=True,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"the broker exited with status {self.proc.returncode}")
            try:
                return await connect(self.url, "amqplite-bench.restart", timeout=5)
            except _FAILURES:
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"the broker did not accept a connection in {timeout} s"
                    ) from None
                await asyncio.sleep(0.02)

    def stop(self, kill: bool, timeout: float = 120.0) -> float:
        """SIGTERM (clean) or SIGKILL the process group; seconds until it was gone."""
        proc = self.proc
        if proc is None:
            return 0.0
        t0 = time.monotonic()
        try:
            os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass
        # The command may be a wrapper (rabbitmq-server is a shell script): the broker is
        # gone only when nothing of its process group is left.
        deadline = time.monotonic() + timeout
        while True:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.01)
        self.proc = None
        return time.monotonic() - t0


async def _fill(conn: BenchConnection, queues: list[str], count: int, size: int) -> None:
    await conn.open_channel(1)
    await pipelined(conn.delete_queue(1, q) for q in queues)
    await pipelined(conn.declare_queue(1, q, durable=True) for q in queues)
    tracker: ConfirmTracker = await conn.confirm_select(1)
    template = PublishTemplate(1, "", queues, size, conn.frame_max, persistent=True)
    sent = 0
    while sent < count:
        conn.check()
        room = min(template.batch_max, count - sent, 5000 - (sent - tracker.confirmed))
        if room <= 0:
            await asyncio.sleep(0.001)
            continue
        conn.write(template.batch(room, time.monotonic_ns()))
        tracker.on_publish(room, time.monotonic_ns())
        sent += room
        await asyncio.sleep(0)
    while tracker.confirmed < count:
        conn.check()
        await asyncio.sleep(0.005)
    if tracker.nacked:
        raise BenchError(f"{tracker.nacked} publishes were nacked")


async def _subscribe(conn: BenchConnection, queues: list[str], prefetch: int) -> range:
    """Consume every queue on its own channel (all at once: one by one, the first queues
    would drain while the last are still being subscribed); returns the channel numbers."""
    numbered = list(enumerate(queues, start=2))
    await pipelined(conn.open_channel(i) for i, _ in numbered)
    await pipelined(conn.qos(i, prefetch) for i, _ in numbered)
    await pipelined(conn.consume(i, q, f"restart{i}", ack_every=0) for i, q in numbered)
    return range(2, len(queues) + 2)


async def _probe(
    conn: BenchConnection,
    url: str,
    queues: list[str],
    count: int,
    t0: float,
    timeout: float,
    pgid: int | None,
) -> tuple[float | None, float | None, int, tuple[float, float] | None]:
    """(first from every queue, all delivered) in seconds since ``t0``, how many were
    delivered, and the CPU seconds process group ``pgid`` (the broker) had used at first.

    First: prefetch 1 on ``conn``, so no queue's first delivery waits behind another's
    prefetch; then ``conn`` closes (its few unacked messages go back) and a second
    connection drains everything at prefetch 1000 (a consumer's prefetch is fixed when it
    subscribes, so the first one cannot simply be raised).
    """
    deadline = t0 + timeout
    channels = await _subscribe(conn, queues, 1)
    receiver = conn.receiver
    while not all(receiver.channel(ch).tag > 0 for ch in channels):
        conn.check()
        if time.monotonic() > deadline:
            return None, None, receiver.delivered, None
        await asyncio.sleep(0.001)
    first = time.monotonic() - t0
    cpu = None if pgid is None else group_cpu_seconds(pgid)
    await conn.close()
    drain = await connect(url, "amqplite-bench.restart.drain")
    try:
        await _subscribe(drain, queues, 1000)
        await drain.open_channel(1)  # for the passive declares at the end
        while time.monotonic() < deadline:
            drain.check()
            if receiver.delivered + drain.receiver.delivered >= count:
                # Messages the first connection held unacked came back: done when no
                # queue has any left.
                ready = [(await drain.declare_queue(1, q, passive=True))[1] for q in queues]
                if not any(ready):
                    return first, time.monotonic() - t0, count, cpu
            await asyncio.sleep(0.002)
        return first, None, receiver.delivered + drain.receiver.delivered, cpu
    finally:
        await drain.close()


async def run_restart(
    command: str,
    url: str,
    *,
    queues: int = 100,
    count: int = 1_000_000,
    size: int = 16,
    modes: Sequence[str] = ("clean", "kill"),
    start_timeout: float = 300.0,
    drain_timeout: float = 600.0,
) -> list[RestartResult]:
    names = [f"{PREFIX}{i}" for i in range(queues)]
    broker = Broker(command, url)
    results: list[RestartResult] = []
    try:
        conn = await broker.start(start_timeout)
        for mode in modes:
            t0 = time.monotonic()
            await _fill(conn, names, count, size)
            fill_s = time.monotonic() - t0
            await conn.close()
            result = RestartResult(mode, count, queues, round(fill_s, 2), 0.0)
            result.stop_s = round(broker.stop(kill=mode == "kill"), 2)
            results.append(result)
            t0 = time.monotonic()
            try:
                conn = await broker.start(start_timeout)
                result.ready_s = round(time.monotonic() - t0, 3)
                pgid = broker.proc.pid if broker.proc is not None else None
                first, everything, delivered, cpu = await _probe(
                    conn, url, names, count, t0, drain_timeout, pgid
                )
                result.first_s = None if first is None else round(first, 3)
                if cpu is not None:
                    result.first_cpu_s = round(cpu[0] + cpu[1], 2)
                    result.first_sys_s = round(cpu[1], 2)
                result.all_s = None if everything is None else round(everything, 3)
                result.delivered = delivered
                await conn.close()
                conn = await connect(url, "amqplite-bench.restart")
            except _FAILURES as exc:
                result.error = f"{type(exc).__name__}: {exc}"
                broker.stop(kill=True)
                conn = await broker.start(start_timeout)
        await conn.open_channel(1)
        await pipelined(conn.delete_queue(1, q) for q in names)
        await conn.close()
    finally:
        broker.stop(kill=False)
    return results


def format_results(results: list[RestartResult]) -> str:
    lines = [
        "mode   messages  queues  fill s  stop s  ready s  first s  all s   delivered  "
        "CPU s at first (sys)  error",
    ]
    for r in results:
        lines.append(
            f"{r.mode:<6} {r.messages:>8}  {r.queues:>6}  {r.fill_s:>6}  {r.stop_s:>6}  "
            f"{r.ready_s!s:>7}  {r.first_s!s:>7}  {r.all_s!s:>6}  {r.delivered:>9}  "
            f"{r.first_cpu_s!s:>14} ({r.first_sys_s!s:>4})  {r.error or ''}"
        )
    return "\n".join(lines)


def to_json(results: list[RestartResult]) -> dict[str, Any]:
    return {"tool": "amqplite-bench", "scenario": "restart", "runs": [asdict(r) for r in results]}
