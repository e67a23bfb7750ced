"""`amqplite serve` as a user runs it: loads a YAML topology, logs connections, and shuts
down gracefully on SIGTERM (clients get 320, the process exits 0)."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pika
import pika.exceptions
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
STARTUP_LOG: dict[int, list[str]] = {}


def _start(*args: str, cwd: Path) -> tuple[subprocess.Popen[str], int]:
    """Start `amqplite serve [--http-port 0] ARGS --host 127.0.0.1 --port 0`; wait until ready.

    The log lines read while waiting are kept in ``STARTUP_LOG[proc.pid]``."""
    # --http-port 0: the test must not depend on 15672 being free (RabbitMQ may hold it).
    http = [] if "--no-http" in args else ["--http-port", "0"]
    command = [sys.executable, "-m", "amqplite", "serve", *http, *args]
    proc = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,  # no config/amqplite.yaml there: only what the test passes applies
    )
    assert proc.stderr is not None
    seen = STARTUP_LOG[proc.pid] = []
    for line in proc.stderr:
        seen.append(line)
        found = re.search(r"amqplite ready: amqp://127\.0\.0\.1:(\d+)/", line)
        if found:
            return proc, int(found.group(1))
    proc.kill()
    raise AssertionError(f"the server never said it was ready (exit {proc.wait()})")


def _stop(proc: subprocess.Popen[str], *, signalled: bool = False) -> str:
    """SIGTERM (unless already sent), expect exit 0, return the log."""
    if not signalled:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert proc.stderr is not None
    return proc.stderr.read()


def _connect(port: int) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(f"amqp://guest:guest@127.0.0.1:{port}/"))


def test_serve_loads_topology_logs_connections_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = str(ROOT / "examples/topic_routing/topology.yaml")
    proc, port = _start(
        "--config", config, "--data-dir", str(tmp_path / "data"), "--http-port", "0", cwd=tmp_path
    )
    try:
        connection = _connect(port)
        channel = connection.channel()
        # The topology from the file is there.
        assert channel.queue_declare("logs.all", passive=True).method.message_count == 0
        proc.send_signal(signal.SIGTERM)
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
            connection.process_data_events(time_limit=10)
        assert closed.value.reply_code == 320
        log = _stop(proc, signalled=True)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert re.search(r"HTTP API on http://127\.0\.0\.1:\d+/", "".join(STARTUP_LOG[proc.pid]))
    assert re.search(r"accepting AMQP connection .* \(user 'guest', vhost '/'\)", log)
    assert re.search(r"closing AMQP connection .* \(user 'guest', vhost '/'\)", log)


def test_persistent_messages_survive_a_restart_with_a_data_dir(tmp_path: Path) -> None:
    proc, port = _start("--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    try:
        connection = _connect(port)
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare("keep", durable=True)
        persistent = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
        for i in range(3):
            channel.basic_publish("", "keep", f"m{i}".encode(), persistent)
        connection.close()
        _stop(proc)
        proc, port = _start("--data-dir", str(tmp_path / "data"), cwd=tmp_path)
        connection = _connect(port)
        channel = connection.channel()
        bodies = []
        for _ in range(3):
            method, _, body = channel.basic_get("keep", auto_ack=True)
            assert method is not None
            bodies.append(body)
        assert bodies == [b"m0", b"m1", b"m2"]
        connection.close()
        _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_reports_a_taken_port_and_exits_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "amqplite", "serve", "--host", "127.0.0.1"]
        result = subprocess.run(
            [*command, "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port} (AMQP)" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_stops_when_the_http_port_is_taken(tmp_path: Path) -> None:
    """A taken management port must not leave a broker that reports ready while every CLI
    default and the dashboard URL reach whatever owns that port."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "amqplite", "serve", "--host", "127.0.0.1"]
        result = subprocess.run(
            [*command, "--port", "0", "--http-port", str(port), "--data-dir", "none"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port} (HTTP): Address already in use" in result.stderr
    assert "amqplite ready" not in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_runs_without_the_http_api_only_when_asked(tmp_path: Path) -> None:
    proc, port = _start("--no-http", "--data-dir", "none", cwd=tmp_path)
    try:
        _connect(port).close()
        log = _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    startup = "".join(STARTUP_LOG[proc.pid]) + log
    assert "HTTP API on" not in startup
    assert "HTTP management listening" not in startup


def test_serve_without_options_keeps_confirmed_messages_in_dot_data(tmp_path: Path) -> None:
    """No config file, no --data-dir: like RabbitMQ, a confirmed persistent message still
    survives kill -9, in ./data under the working directory."""
    proc, port = _start(cwd=tmp_path)
    try:
        connection = _connect(port)
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare("kept", durable=True)
        persistent = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
        channel.basic_publish("", "kept", b"confirmed", persistent)  # returns once confirmed
        proc.kill()
        proc.wait()
        assert (tmp_path / "data").is_dir()
        proc, port = _start(cwd=tmp_path)
        connection = _connect(port)
        method, _, body = connection.channel().basic_get("kept", auto_ack=True)
        assert method is not None and body == b"confirmed"
        connection.close()
        _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
