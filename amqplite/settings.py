"""The one settings value both listeners read: addresses, limits, timeouts, where data lives.

Pure value shared by the layers (like :mod:`amqplite.errors`).  The YAML loader builds it
from the ``server:`` section (:mod:`amqplite.topology.loader`); ``amqplite serve`` and
the embedding API (:mod:`amqplite.app`) apply their explicit overrides to it; the AMQP
listener (:mod:`amqplite.server`) and the management API (:mod:`amqplite.http`) are
given it.  The protocol and broker layers never see it.  The defaults are the ones
``config/amqplite.yaml`` documents.
"""

from __future__ import annotations

from pathlib import Path

import attrs

#: Bytes a connection may have waiting to be written before its consumers are paused and
#: its reader stops reading (TCP backpressure reaches the publisher).
DEFAULT_HIGH_WATER = 1 << 20
#: Output must drain below this before paused consumers are resumed.
DEFAULT_LOW_WATER = 256 << 10

#: RabbitMQ's default ``loopback_users``: these may log in only from a loopback address.
DEFAULT_LOOPBACK_USERS = frozenset({"guest"})

#: Where durable data goes when nothing says otherwise: ``data`` beside the config file,
#: or in the working directory without one (a bare ``amqplite serve`` keeps what it
#: confirmed, as RabbitMQ does).
DEFAULT_DATA_DIR = "data"


@attrs.frozen
class ServerSettings:
    """The ``server:`` section of the config, and every knob the listeners need."""

    #: AMQP listener address and port (0: pick a free one).
    host: str = "0.0.0.0"
    port: int = 5672
    #: The management HTTP API's address and port (None: no HTTP listener; ``--no-http``).
    http_host: str = "127.0.0.1"
    http_port: int | None = 15672
    #: Where durable data lives (None: nothing is persisted).  The loader makes it
    #: absolute (relative paths are relative to the config file).
    data_dir: Path | None = None
    #: Proposed in connection.tune; the client may lower them.
    heartbeat: int = 60
    frame_max: int = 131072
    channel_max: int = 2047
    #: Bodies larger than this close the channel with 406 (RabbitMQ's max_message_size).
    max_message_size: int = 134_217_728
    #: Publishers are blocked (connection.blocked) while the store's disk has less free
    #: space than this many bytes (RabbitMQ's disk_free_limit; see server/store_guard.py).
    disk_free_limit: int = 50_000_000
    #: The vhost the config's top-level exchanges/queues/bindings belong to.
    default_vhost: str = "/"
    #: Largest single receive; everything in one receive is handled as one batch.
    receive_size: int = 256 << 10
    high_water: int = DEFAULT_HIGH_WATER
    low_water: int = DEFAULT_LOW_WATER
    #: A client that has not finished the handshake within this many seconds is dropped.
    handshake_timeout: float = 10.0
    #: After we send connection.close, wait this long for close-ok before dropping.
    close_timeout: float = 3.0
    #: Node-wide cap on client connections (RabbitMQ's ``connection_max``; None: none).
    connection_max: int | None = None
    #: Users allowed to log in only from a loopback address (RabbitMQ's loopback_users).
    loopback_users: frozenset[str] = DEFAULT_LOOPBACK_USERS
    #: AMQPS listener port beside the plain one (None: no TLS listener; 0: any free port).
    tls_port: int | None = None
    #: The server's certificate chain and private key (PEM), for AMQPS and ``http_tls``.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: CA certificates (PEM) that client certificates are verified against.
    tls_ca: Path | None = None
    #: "peer" asks clients for a certificate and verifies it, "none" does not ask; None:
    #: "peer" when ``tls_ca`` is set, else "none".
    tls_verify: str | None = None
    #: Refuse clients without a verified certificate (implies verifying peers).
    tls_require_client_cert: bool = False
    #: Which name in a client certificate is the EXTERNAL login's user: "cn" (its common
    #: name) or "dn" (its RFC 4514 distinguished name).
    tls_external_identity: str = "cn"
    #: Serve the management API and dashboard over HTTPS with ``tls_cert``/``tls_key``.
    http_tls: bool = False
    #: A TLS handshake not finished within this many seconds closes the socket.
    tls_handshake_timeout: float = 5.0

    @property
    def tls_verify_peer(self) -> bool:
        """Whether clients are asked for a certificate (and it is verified)."""
        if self.tls_require_client_cert:
            return True
        if self.tls_verify is None:
            return self.tls_ca is not None
        return self.tls_verify == "peer"

    def tls_errors(self) -> list[tuple[str, str]]:
        """What is wrong with the TLS settings taken together, as (key, message) pairs:
        the YAML loader reports each at its key, ``amqplite serve`` prints them."""
        errors: list[tuple[str, str]] = []
        wanted = self.tls_port is not None or self.http_tls
        for key in ("tls_cert", "tls_key"):
            if wanted and getattr(self, key) is None:
                user = "tls_port" if self.tls_port is not None else "http_tls"
                errors.append((key, f"{user} needs tls_cert and tls_key (PEM files)"))
        if self.tls_verify not in (None, *TLS_VERIFY):
            errors.append(("tls_verify", f"expected one of {', '.join(TLS_VERIFY)}"))
        elif self.tls_require_client_cert and self.tls_verify == "none":
            errors.append(
                (
                    "tls_require_client_cert",
                    "cannot require a client certificate with tls_verify: none",
                )
            )
        elif self.tls_verify_peer and self.tls_ca is None:
            errors.append(
                (
                    "tls_ca",
                    "verifying client certificates needs tls_ca (the CA "
                    "certificates that sign them)",
                )
            )
        if self.tls_external_identity not in TLS_EXTERNAL_IDENTITY:
            errors.append(
                ("tls_external_identity", f"expected one of {', '.join(TLS_EXTERNAL_IDENTITY)}")
            )
        return errors


#: ``tls_verify`` values (RabbitMQ's ``ssl_options.verify``: verify_peer / verify_none).
TLS_VERIFY = ("peer", "none")
#: ``tls_external_identity`` values (RabbitMQ's ``ssl_cert_login_from``).
TLS_EXTERNAL_IDENTITY = ("cn", "dn")


#: The keys a config file's ``server:`` section may set (the rest are embedding knobs).
CONFIG_KEYS = (
    "host",
    "port",
    "http_host",
    "http_port",
    "data_dir",
    "heartbeat",
    "frame_max",
    "channel_max",
    "max_message_size",
    "disk_free_limit",
    "connection_max",
    "default_vhost",
    "tls_port",
    "tls_cert",
    "tls_key",
    "tls_ca",
    "tls_verify",
    "tls_require_client_cert",
    "tls_external_identity",
    "http_tls",
    "handshake_timeout",
)
