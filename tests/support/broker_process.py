"""`amqplite serve` in a subprocess, for tests that measure the broker process itself
(its resident memory, its file-descriptor limit) or need a limit set before it starts."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

_READY = re.compile(r"amqplite ready: amqp://127\.0\.0\.1:(\d+)/")


@attrs.define(eq=False)
class BrokerProcess:
    """A running `amqplite serve`: its process, AMQP port and everything it logged."""

    proc: subprocess.Popen[str]
    port: int
    lines: list[str]

    def rss_kib(self, field: str = "VmRSS") -> int:
        """``VmRSS`` (now) or ``VmHWM`` (peak) of the broker process, in KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} for pid {self.proc.pid}")

    def log(self) -> str:
        return "".join(self.lines)


@contextmanager
def broker_process(
    *args: str, cwd: Path, preexec_fn: Callable[[], None] | None = None
) -> Iterator[BrokerProcess]:
    """Start `amqplite serve ARGS --host 127.0.0.1 --port 0 --data-dir none --no-http`
    (without the HTTP API unless ARGS ask for it); kill it after."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "amqplite", "serve", "--host", "127.0.0.1", "--port", "0"]
        + (["--data-dir", "none"] if "--data-dir" not in args else [])
        + (["--no-http"] if "--http-port" not in args else [])
        + list(args),
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        preexec_fn=preexec_fn,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    port = None
    for line in proc.stderr:
        lines.append(line)
        found = _READY.search(line)
        if found:
            port = int(found.group(1))
            break
    if port is None:
        proc.kill()
        raise AssertionError(f"the broker never became ready:\n{''.join(lines)}")
    # Keep draining its log so that a chatty broker never blocks on a full pipe.
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr or ()), daemon=True)
    reader.start()
    try:
        yield BrokerProcess(proc, port, lines)
    finally:
        proc.kill()
        proc.wait()
        reader.join(5)
