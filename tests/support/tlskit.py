"""Helpers for the TLS tests (tests/tls): certificates made by ``trustme`` in the test,
a YAML config naming them, pika parameters for the AMQPS port, and a log watcher that
waits for the broker thread's log lines without sleeping."""

from __future__ import annotations

import logging
import re
import ssl
import threading
from pathlib import Path
from typing import Any, Protocol

import attrs
import pika
import trustme

USERS = """
users:
  guest:
    password: guest
    tags: [administrator]
    permissions:
      "/": {configure: ".*", write: ".*", read: ".*"}
  alice:
    password: alice-password
    permissions:
      "/": {configure: ".*", write: ".*", read: ".*"}
"""


@attrs.define
class Pki:
    """A CA, the server's certificate from it, and client certificates on demand."""

    dir: Path
    ca: trustme.CA = attrs.field(factory=trustme.CA)

    def __attrs_post_init__(self) -> None:
        self.ca.cert_pem.write_to_path(str(self.dir / "ca.pem"))
        server = self.ca.issue_cert("127.0.0.1", "localhost")
        server.private_key_pem.write_to_path(str(self.dir / "server.key"))
        server.cert_chain_pems[0].write_to_path(str(self.dir / "server.pem"))
        for extra in server.cert_chain_pems[1:]:
            extra.write_to_path(str(self.dir / "server.pem"), append=True)

    @property
    def ca_pem(self) -> Path:
        return self.dir / "ca.pem"

    def client_cert(self, common_name: str, *, ca: trustme.CA | None = None, **kw: Any) -> Any:
        """A client certificate (a trustme LeafCert) with this common name."""
        return (ca or self.ca).issue_cert(f"{common_name}.example", common_name=common_name, **kw)

    def client_files(self, common_name: str) -> tuple[Path, Path]:
        """A client certificate and its key as PEM files (for amqps:// URLs)."""
        leaf = self.client_cert(common_name)
        cert, key = self.dir / f"{common_name}.pem", self.dir / f"{common_name}.key"
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        return cert, key

    def context(self, client: Any = None) -> ssl.SSLContext:
        """A client context trusting our CA, presenting ``client`` if given."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(context)
        if client is not None:
            client.configure_cert(context)
        return context


def write_config(pki: Pki, extra_users: str = "", **server: Any) -> Path:
    """A YAML config with the TLS keys (relative file names: the loader resolves them)."""
    lines = [
        "server:",
        "  tls_port: 0",
        "  tls_cert: server.pem",
        "  tls_key: server.key",
        "  tls_ca: ca.pem",
    ]
    for key, value in server.items():
        lines.append(f"  {key}: {value}")
    path = pki.dir / "amqplite.yaml"
    path.write_text("\n".join(lines) + "\n" + USERS + extra_users)
    return path


class HasTlsPort(Protocol):
    """A running broker (:class:`~amqplite.app.RunningBroker`, or a process's ports)."""

    @property
    def tls_port(self) -> int | None: ...


def tls_params(
    running: HasTlsPort, context: ssl.SSLContext, credentials: Any = None
) -> pika.ConnectionParameters:
    assert running.tls_port is not None
    return pika.ConnectionParameters(
        host="127.0.0.1",
        port=running.tls_port,
        credentials=credentials or pika.PlainCredentials("guest", "guest"),
        ssl_options=pika.SSLOptions(context, "127.0.0.1"),
        connection_attempts=1,
        socket_timeout=10,
        blocked_connection_timeout=10,
    )


class LogWatch(logging.Handler):
    """Collects the broker's log lines (from its thread) and waits for one to appear."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.lines.append(record.getMessage())
            self._changed.notify_all()

    def matching(self, pattern: str) -> list[str]:
        with self._changed:
            return [line for line in self.lines if re.search(pattern, line)]

    def wait_for(self, pattern: str, timeout: float = 15.0) -> str:
        with self._changed:
            found = self._changed.wait_for(lambda: self._first(pattern), timeout)
        assert found, f"no log line matching {pattern!r} in {self.lines}"
        return found

    def _first(self, pattern: str) -> str | None:
        for line in self.lines:
            if re.search(pattern, line):
                return line
        return None


def round_trip(connection: pika.BlockingConnection, queue: str, body: bytes) -> None:
    """Publish ``body`` to ``queue`` and get it back on ``connection`` (one channel: the
    broker handles the publish before the get)."""
    channel = connection.channel()
    channel.queue_declare(queue)
    channel.basic_publish("", queue, body)
    _, _, got = channel.basic_get(queue, auto_ack=True)
    assert got == body
    channel.close()
