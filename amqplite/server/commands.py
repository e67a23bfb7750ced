"""``amqplite serve``: run the broker from the command line.

Server layer (CLI glue).  Loads the YAML config (``--config``, else
``config/amqplite.yaml`` when it exists, else built-in defaults), applies its users and
topology, listens for AMQP, and on SIGINT/SIGTERM shuts down gracefully: stop accepting,
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
import signal
from pathlib import Path
from typing import Any

import trio

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("config/amqplite.yaml")
#: Where durable data goes when no config file says otherwise (relative to the working directory).
DEFAULT_DATA_DIR = "data"


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
        transient = args.data_dir.strip().lower() in ("none", "memory")
        overrides["data_dir"] = None if transient else args.data_dir
    elif config is None:
        overrides["data_dir"] = DEFAULT_DATA_DIR
    if args.http_port is not None:
        overrides["http_port"] = args.http_port
    settings = settings_from(config, host=args.host, port=args.port, **overrides)
    if config is None:
        log.info("no config file; using built-in defaults (guest/guest on vhost /)")
    else:
        log.info("loaded config %s", config.source)
    store = None
    if settings.data_dir is not None:
        from amqplite.store import StoreError, open_store

        try:
            store = open_store(settings.data_dir)
        except (StoreError, OSError) as exc:
            log.error("cannot open the data directory %s: %s", settings.data_dir, exc)
            return 2
        log.info("data directory %s", settings.data_dir)
    failed = False
    try:
        broker = build_broker(config, store=store)
        try:
            failed = trio.run(_serve, broker, settings)
        except Exception as exc:
            bind_error = _os_error(exc)
            if bind_error is None:
                raise
            log.error("cannot listen on %s:%s: %s", settings.host, settings.port, bind_error)
            return 2
    finally:
        # After a failed fsync nothing may be marked clean: leave the store as a crash would.
        if store is not None and not failed:
            store.close()
    return 1 if failed else 0


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc`` (possibly inside trio's exception groups), if any."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, OSError) else None


async def _serve(broker: Any, settings: Any) -> bool:
    """Serve until a signal (False) or until the server stops itself on a store failure (True)."""
    from amqplite.server.listener import AmqpServer

    server = AmqpServer(broker, settings)

    async def run_server(*, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        await server.run(task_status=task_status)
        nursery.cancel_scope.cancel()  # stopped on its own (store failure): stop waiting

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(run_server)
            if settings.http_port is not None:
                from amqplite.server.app import start_http

                try:
                    await start_http(nursery, server, settings.http_host, settings.http_port)
                except OSError as exc:  # the port is taken: AMQP still works
                    log.error(
                        "cannot start the HTTP API on %s:%d: %s",
                        settings.http_host,
                        settings.http_port,
                        exc,
                    )
            log.info("amqplite ready: amqp://%s:%d/", settings.host, port)
            async for signum in signals:
                log.info("received %s; shutting down", signal.Signals(signum).name)
                break
            await server.shutdown()
            nursery.cancel_scope.cancel()
    failed = server.guard is not None and server.guard.failure is not None
    log.log(
        logging.CRITICAL if failed else logging.INFO,
        "stopped%s",
        " (store failure)" if failed else "",
    )
    return failed
