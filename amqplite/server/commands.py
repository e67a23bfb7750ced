"""``amqplite serve``: run the broker from the command line.

Server layer (CLI glue).  Loads the YAML config (``--config``, else
``config/amqplite.yaml`` when it exists, else built-in defaults), applies its users and
topology, listens for AMQP, and on SIGINT/SIGTERM shuts down gracefully: stop accepting,
close every connection with 320 CONNECTION_FORCED, exit 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
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
    parser.add_argument("--data-dir", help="directory for durable data (overrides the config)")
    parser.add_argument("--http-port", type=int, help="management HTTP port (overrides the config)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so `amqplite --help` stays fast and works whatever state the broker is in.
    from amqplite.server.app import build_broker, load, settings_from

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
        overrides["data_dir"] = args.data_dir
    if args.http_port is not None:
        overrides["http_port"] = args.http_port
    settings = settings_from(config, host=args.host, port=args.port, **overrides)
    if config is None:
        log.info("no config file; using built-in defaults (guest/guest on vhost /)")
    else:
        log.info("loaded config %s", config.source)
    broker = build_broker(config)
    trio.run(_serve, broker, settings)
    return 0


async def _serve(broker: Any, settings: Any) -> None:
    from amqplite.server.listener import AmqpServer

    server = AmqpServer(broker, settings)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(server.run)
            log.info("amqplite ready: amqp://%s:%d/", settings.host, port)
            async for signum in signals:
                log.info("received %s; shutting down", signal.Signals(signum).name)
                break
            await server.shutdown()
            nursery.cancel_scope.cancel()
    log.info("stopped")
