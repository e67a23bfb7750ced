"""HTTPS for the management API and dashboard, and `amqplite serve` with the TLS options
as a user runs it (a real process, real clients)."""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import attrs
import pika
import pytest
from tlskit import LogWatch, Pki, round_trip, tls_params

from amqplite.app import RunningBroker

GUEST = "Basic Z3Vlc3Q6Z3Vlc3Q="  # guest:guest


def get(url: str, context: Any) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers={"authorization": GUEST})
    with urllib.request.urlopen(request, context=context, timeout=10) as reply:
        return reply.status, reply.headers.get("content-type", ""), reply.read()


def test_https_api_and_dashboard_with_the_ca(
    tls_broker: RunningBroker, pki: Pki, broker_log: LogWatch
) -> None:
    base = tls_broker.http_url
    assert base is not None and base.startswith("https://")
    status, kind, body = get(f"{base}api/overview", pki.context())
    assert status == 200 and json.loads(body)["product_name"]
    status, kind, body = get(base, pki.context())
    assert status == 200 and kind.startswith("text/html")
    # Plain HTTP to the HTTPS port: closed, one log line, the API keeps answering.
    assert tls_broker.http_port is not None
    plain = http.client.HTTPConnection("127.0.0.1", tls_broker.http_port, timeout=10)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        plain.request("GET", "/api/overview")
        plain.getresponse()
    plain.close()
    broker_log.wait_for(r"HTTPS: 127\.0\.0\.1:\d+ sent plain text to the TLS port")
    assert get(f"{base}api/overview", pki.context())[0] == 200


def _serve(*args: str, cwd: Path) -> tuple[subprocess.Popen[str], list[str]]:
    """`amqplite serve ARGS` until it says it is ready; its log lines so far."""
    command = [sys.executable, "-m", "amqplite", "serve", "--host", "127.0.0.1", "--port", "0"]
    proc = subprocess.Popen([*command, *args], stderr=subprocess.PIPE, text=True, cwd=cwd)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "amqplite ready" in line:
            return proc, seen
    proc.wait()
    return proc, seen


def test_serve_with_tls_options(pki: Pki, tmp_path: Path) -> None:
    proc, log = _serve(
        *("--data-dir", "none", "--http-port", "0", "--http-tls", "--tls-port", "0"),
        *("--tls-cert", str(pki.dir / "server.pem"), "--tls-key", str(pki.dir / "server.key")),
        *("--tls-ca", str(pki.ca_pem)),
        cwd=tmp_path,
    )
    try:
        text = "".join(log)
        ready = re.search(
            r"amqplite ready: amqp://127\.0\.0\.1:(\d+)/ amqps://127\.0\.0\.1:(\d+)/", text
        )
        api = re.search(r"HTTP API on (https://127\.0\.0\.1:\d+/)", text)
        assert ready and api, text
        running = _Ports(int(ready.group(1)), int(ready.group(2)))
        # No config: the default guest user, here by its client certificate (EXTERNAL).
        context = pki.context(pki.client_cert("guest"))
        params = tls_params(running, context, pika.credentials.ExternalCredentials())
        with pika.BlockingConnection(params) as connection:
            round_trip(connection, "q", b"over amqps")
        assert get(f"{api.group(1)}api/overview", pki.context())[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@attrs.frozen
class _Ports:
    """The two ports of a broker process (what tls_params needs of a RunningBroker)."""

    port: int
    tls_port: int


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--tls-port", "0"], "TLS settings: tls_cert: tls_port needs tls_cert and tls_key"),
        (
            ["--tls-port", "0", "--tls-cert", "missing.pem", "--tls-key", "missing.key"],
            "cannot load the TLS certificate missing.pem with the key missing.key",
        ),
        (
            ["--tls-port", "0", "--tls-cert", "c", "--tls-key", "k", "--tls-verify", "peer"],
            "TLS settings: tls_ca: verifying client certificates needs tls_ca",
        ),
    ],
)
def test_serve_refuses_bad_tls_settings(args: list[str], expected: str, tmp_path: Path) -> None:
    proc, log = _serve("--no-http", "--data-dir", "none", *args, cwd=tmp_path)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
        raise AssertionError(f"serve started with {args}")
    assert proc.returncode == 2
    assert expected in "".join(log)
