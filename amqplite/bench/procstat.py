"""Broker-side cost from Linux /proc: CPU seconds and resident memory of a process by PID.

Layer: ``amqplite/bench`` (stdlib only). The bench runs on the same machine as the broker it
measures, so ``--broker-pid`` lets it report CPU microseconds per message (utime + stime from
``/proc/PID/stat`` over the measured phase) and peak RSS (``VmRSS`` sampled every 100 ms).
Every reader returns ``None`` instead of raising when the process or /proc is not there.
"""

from __future__ import annotations

import asyncio
import os
import time

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds the process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name may contain spaces and parentheses; fields follow the last ')'.
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def group_cpu_seconds(pgid: int) -> tuple[float, float] | None:
    """(user, system) CPU seconds used so far by the live processes of process group
    ``pgid`` (a broker started through a shell or a wrapper script is several processes)."""
    user = system = 0.0
    found = False
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid:
            user += int(fields[11]) / _CLOCK_TICKS
            system += int(fields[12]) / _CLOCK_TICKS
            found = True
    return (user, system) if found else None


def rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class BrokerMonitor:
    """Peak RSS sampled in the background and CPU over a phase, for one broker PID (or none)."""

    __slots__ = ("_cpu0", "_t0", "_task", "cpu_pct", "cpu_s", "peak_rss_kb", "pid")

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.peak_rss_kb: int | None = None
        self.cpu_s: float | None = None
        self.cpu_pct: float | None = None
        self._cpu0: float | None = None
        self._t0 = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._t0 = time.monotonic()
        if not self.pid:
            return
        self._cpu0 = cpu_seconds(self.pid)
        self.peak_rss_kb = rss_kb(self.pid)
        self._task = asyncio.get_running_loop().create_task(self._sample())

    async def _sample(self) -> None:
        assert self.pid
        while True:
            await asyncio.sleep(0.1)
            self._note_rss()

    def _note_rss(self) -> None:
        if self.pid:
            now = rss_kb(self.pid)
            if now is not None and (self.peak_rss_kb is None or now > self.peak_rss_kb):
                self.peak_rss_kb = now

    def stop(self) -> None:
        """End the measured phase: CPU used since ``start`` and the final RSS sample."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if not self.pid:
            return
        self._note_rss()
        cpu1 = cpu_seconds(self.pid)
        elapsed = time.monotonic() - self._t0
        if self._cpu0 is not None and cpu1 is not None:
            self.cpu_s = cpu1 - self._cpu0
            self.cpu_pct = 100.0 * self.cpu_s / elapsed if elapsed > 0 else None
