"""``amqplite serve``: run the broker from the command line.

CLI layer over the composition root (:mod:`amqplite.app`).  Loads the YAML config
(``--config``, else ``config/amqplite.yaml`` when it exists, else built-in defaults),
applies its users and topology, listens for AMQP and serves the management HTTP API
(unless ``--no-http``), and reports ready only when both are listening: a listener that
cannot bind its port stops the broker with ``cannot listen on HOST:PORT (AMQP|HTTP): ...``
and exit status 2.  On SIGINT/SIGTERM it shuts down gracefully: stop accepting,
close every connection with 320 CONNECTION_FORCED, close the store, exit 0.  If the store
fails (an fsync error) the broker stops on its own and exits 1 without marking the store
cleanly closed.  Durable data goes to the config's ``data_dir`` (``./data`` next to the
config file by default), or to ``./data`` in the working directory when there is no
config file: like RabbitMQ, a broker started with no options still keeps what it
confirmed.  ``--data-dir none`` runs without a store (everything transient).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import trio

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("config/amqplite.yaml")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the broker",
        description="Run the amqplite broker (AMQP 0-9-1).",
    )
    parser.add_argument(
        "--config",
        help=f"YAML config and topology (default: {DEFAULT_CONFIG} if it exists)",
    )
    parser.add_argument("--host", help="AMQP listen address (overrides the config)")
    parser.add_argument("--port", type=int, help="AMQP port; 0 picks a free one")
    parser.add_argument(
        "--data-dir",
        help="directory for durable queues and messages (overrides the config; "
        "default: the config's data_dir, or ./data without a config file); "
        "'none' keeps everything in memory",
    )
    http = parser.add_mutually_exclusive_group()
    http.add_argument(
        "--http-port", type=int, help="management HTTP API port (overrides the config; 0: any)"
    )
    http.add_argument("--no-http", action="store_true", help="run without the management HTTP API")
    _tls_arguments(parser)
    parser.set_defaults(func=run)


def _tls_arguments(parser: argparse.ArgumentParser) -> None:
    """The TLS options; each overrides the config's ``server.<same name>`` (docs/tls.md)."""
    from amqplite.settings import TLS_EXTERNAL_IDENTITY, TLS_VERIFY

    group = parser.add_argument_group("TLS (AMQPS and HTTPS; see docs/tls.md)")
    group.add_argument("--tls-port", type=int, help="AMQPS port beside the plain one (0: any)")
    group.add_argument("--tls-cert", metavar="PEM", help="the server's certificate chain")
    group.add_argument("--tls-key", metavar="PEM", help="the server certificate's private key")
    group.add_argument("--tls-ca", metavar="PEM", help="CA certificates for client certificates")
    group.add_argument(
        "--tls-verify",
        choices=TLS_VERIFY,
        help="ask clients for a certificate and verify it (default: peer with --tls-ca)",
    )
    group.add_argument(
        "--tls-require-client-cert",
        action="store_true",
        default=None,
        help="refuse TLS clients without a verified certificate",
    )
    group.add_argument(
        "--tls-external-identity",
        choices=TLS_EXTERNAL_IDENTITY,
        help="the EXTERNAL login's user: the certificate's common name (default) or "
        "RFC 4514 distinguished name",
    )
    group.add_argument(
        "--http-tls",
        action="store_true",
        default=None,
        help="serve the management API and dashboard over HTTPS (same certificate)",
    )


#: ``serve`` options that override the config's server key of the same name.
TLS_OPTIONS = (
    "tls_port",
    "tls_cert",
    "tls_key",
    "tls_ca",
    "tls_verify",
    "tls_require_client_cert",
    "tls_external_identity",
    "http_tls",
)


def _tls_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for key in TLS_OPTIONS:
        value = getattr(args, key)
        if value is not None:
            is_file = key in ("tls_cert", "tls_key", "tls_ca")
            overrides[key] = Path(value).expanduser() if is_file else value
    return overrides


def run(args: argparse.Namespace) -> int:
    # Imported here so `amqplite --help` stays fast and works whatever state the broker is in.
    from amqplite.app import (
        ListenError,
        TlsConfigError,
        build_broker,
        load,
        serve_until_signalled,
        settings_from,
    )
    from amqplite.settings import DEFAULT_DATA_DIR

    path = args.config
    if path is None and DEFAULT_CONFIG.exists():
        path = DEFAULT_CONFIG
    try:
        config = load(path)
    except Exception as exc:  # TopologyError prints every problem with file:line
        log.error("cannot load config %s:\n%s", path, exc)
        return 2
    overrides: dict[str, Any] = {}
    if args.data_dir is not None:
        transient = args.data_dir.strip().lower() in ("none", "memory")
        overrides["data_dir"] = None if transient else Path(args.data_dir)
    elif config is None:
        overrides["data_dir"] = Path(DEFAULT_DATA_DIR)
    if args.http_port is not None:
        overrides["http_port"] = args.http_port
    if args.no_http:
        overrides["http_port"] = None
    overrides.update(_tls_overrides(args))
    settings = settings_from(config, host=args.host, port=args.port, **overrides)
    tls_problems = settings.tls_errors()
    if tls_problems:
        for key, message in tls_problems:
            log.error("TLS settings: %s: %s", key, message)
        return 2
    if config is None:
        log.info("no config file; using built-in defaults (guest/guest on vhost /)")
    else:
        log.info("loaded config %s", config.source)
    store = None
    if settings.data_dir is not None:
        from amqplite.store import StoreError, open_store

        try:
            store = open_store(str(settings.data_dir))
        except (StoreError, OSError) as exc:
            log.error("cannot open the data directory %s: %s", settings.data_dir, exc)
            return 2
        log.info("data directory %s", settings.data_dir)
    failed = False
    try:
        broker = build_broker(config, store=store)
        try:
            failed = trio.run(serve_until_signalled, broker, settings)
        except (ListenError, TlsConfigError) as exc:
            log.error("%s", exc)
            return 2
    finally:
        # After a failed fsync nothing may be marked clean: leave the store as a crash would.
        if store is not None and not failed:
            store.close()
    return 1 if failed else 0
