"""`amqplite serve` as a user runs it: loads a YAML topology, logs connections, and shuts
down gracefully on SIGTERM (clients get 320, the process exits 0)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pika
import pika.exceptions
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def test_serve_loads_topology_logs_connections_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amqplite",
            "serve",
            "--config",
            str(ROOT / "examples/topic_routing/topology.yaml"),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        port = None
        for line in proc.stderr:
            found = re.search(r"amqplite ready: amqp://127\.0\.0\.1:(\d+)/", line)
            if found:
                port = int(found.group(1))
                break
        assert port is not None, "the server never said it was ready"
        connection = pika.BlockingConnection(
            pika.URLParameters(f"amqp://guest:guest@127.0.0.1:{port}/")
        )
        channel = connection.channel()
        # The topology from the file is there.
        assert channel.queue_declare("logs.all", passive=True).method.message_count == 0
        proc.send_signal(signal.SIGTERM)
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
            connection.process_data_events(time_limit=10)
        assert closed.value.reply_code == 320
        assert proc.wait(timeout=10) == 0
        log = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert re.search(r"accepting AMQP connection .* \(user 'guest', vhost '/'\)", log)
    assert re.search(r"closing AMQP connection .* \(user 'guest', vhost '/'\)", log)
