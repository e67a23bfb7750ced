"""``amqplite bench restart`` against a real amqplite it starts itself: it fills durable
queues, stops the broker cleanly and with kill -9, starts it again and gets every
persistent message back."""

from __future__ import annotations

import asyncio
import shlex
import socket
import sys
from pathlib import Path

from amqplite.bench.restart import run_restart


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_message_comes_back_after_a_clean_stop_and_after_kill_9(tmp_path: Path) -> None:
    port = _free_port()
    command = (
        f"exec {shlex.quote(sys.executable)} -m amqplite serve --port {port} --no-http "
        f"--data-dir {shlex.quote(str(tmp_path / 'data'))}"
    )
    results = asyncio.run(
        run_restart(
            command,
            f"amqp://guest:guest@127.0.0.1:{port}/",
            queues=5,
            count=3000,
            modes=("clean", "kill"),
            start_timeout=60,
            drain_timeout=60,
        )
    )
    assert [r.mode for r in results] == ["clean", "kill"]
    for result in results:
        assert result.error is None
        assert result.delivered == 3000
        assert result.ready_s is not None and result.first_s is not None
        assert result.all_s is not None and result.ready_s <= result.first_s <= result.all_s
        # the restarted broker's CPU (its process group): it started an interpreter at least
        assert result.first_cpu_s is not None and result.first_cpu_s > 0
        assert result.first_sys_s is not None and result.first_sys_s <= result.first_cpu_s
