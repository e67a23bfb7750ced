"""The ``amqplite`` commands against a TLS broker: ``amqps://`` URLs with RabbitMQ's query
parameters (``cacertfile``, ``certfile``/``keyfile``, ``auth_mechanism=external``) and the
HTTPS API trusted through ``SSL_CERT_FILE``; each mistake is one clear line."""

from __future__ import annotations

import json

import pika
import pytest
from tlskit import Pki

from amqplite.app import RunningBroker
from amqplite.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def _no_targets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AMQPLITE_API", "AMQPLITE_URL", "SSL_CERT_FILE"):
        monkeypatch.delenv(var, raising=False)


def test_publish_with_a_password_and_get_by_certificate_over_amqps(
    tls_broker: RunningBroker, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    with pika.BlockingConnection(pika.URLParameters(tls_broker.url)) as plain:
        plain.channel().queue_declare("alice-jobs")
    port = tls_broker.tls_port
    ca = f"cacertfile={pki.ca_pem}"
    guest = f"amqps://guest:guest@127.0.0.1:{port}/?{ca}"
    code, out, err = run(capsys, "publish", "", "alice-jobs", "over tls", "--url", guest)
    assert code == 0, err
    cert, key = pki.client_files("alice")
    alice = f"amqps://127.0.0.1:{port}/?{ca}&certfile={cert}&keyfile={key}&auth_mechanism=external"
    code, out, err = run(capsys, "get", "alice-jobs", "--url", alice, "--ack", "--json")
    assert code == 0, err
    assert json.loads(out)["payload"] == "over tls"


def test_https_api_with_ssl_cert_file(
    tls_broker: RunningBroker,
    pki: Pki,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert tls_broker.http_port is not None
    api = f"https://guest:guest@127.0.0.1:{tls_broker.http_port}"
    code, out, err = run(capsys, "queues", "--api", api, "--json")
    assert code == 1 and "certificate verify failed" in err  # our CA is not the system's
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_pem))
    code, out, err = run(capsys, "queues", "--api", api, "--json")
    assert code == 0, err
    assert json.loads(out) == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # The TLS port without TLS: it sends the AMQP header back.
        ("amqp://guest:guest@127.0.0.1:{tls}/", "or a TLS port (use amqps://)?"),
        # Without cacertfile the system's CAs are used, and they do not know ours.
        ("amqps://guest:guest@127.0.0.1:{tls}/", "failed: certificate verify failed"),
        # EXTERNAL without a client certificate: not offered.
        (
            "amqps://127.0.0.1:{tls}/?cacertfile={ca}&auth_mechanism=external",
            "does not offer EXTERNAL login",
        ),
        ("amqps://127.0.0.1:{tls}/?cacertfile=/nonexistent.pem", "cannot load the TLS files"),
    ],
)
def test_mistakes_are_one_clear_line(
    url: str, expected: str, tls_broker: RunningBroker, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    target = url.format(tls=tls_broker.tls_port, ca=pki.ca_pem)
    code, _, err = run(capsys, "get", "anything", "--url", target)
    assert code == 1
    assert err.startswith("amqplite: error: ") and expected in err, err
    assert err.count("\n") == 1
