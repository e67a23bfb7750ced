"""The ``amqplite`` command: every sub-command, and the argparse front door (CLI layer).

One package holds all command-line code; the packages below it offer functions and know
nothing of argparse.  Each module here adds its sub-commands with
``register(subparsers) -> None`` and sets ``func`` on each parser to a callable taking the
parsed ``argparse.Namespace`` and returning an exit code:

- :mod:`~amqplite.cli.serve` -- ``serve`` (runs the broker through :mod:`amqplite.app`);
- ``topology`` -- validate / plan / apply / export / import;
- :mod:`~amqplite.cli.bench` -- ``bench`` (the load generator's own argument table);
- :mod:`~amqplite.cli.listings` -- ``queues | exchanges | bindings | connections | route``;
- :mod:`~amqplite.cli.access` -- ``users | vhosts | permissions | topic-permissions | limits``;
- :mod:`~amqplite.cli.messaging` -- ``publish | get | consume`` over AMQP;
- :mod:`~amqplite.cli.dlq` -- ``dlq list | show | replay | purge``;
- :mod:`~amqplite.cli.stream` -- ``stream info | tail | replay``;
- :mod:`~amqplite.cli.support` -- what they share: targets, one-line errors, tables.

Command modules are imported when the parser is built, and import the heavy parts (trio,
the broker) only when a command runs, so ``amqplite --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from amqplite.version import __version__

# Modules contributing sub-commands, in the order they appear in --help.
COMMAND_MODULES = (
    "amqplite.cli.serve",
    "amqplite.topology.commands",
    "amqplite.cli.bench",
    "amqplite.cli.listings",
    "amqplite.cli.messaging",
    "amqplite.cli.dlq",
    "amqplite.cli.access",
    "amqplite.cli.stream",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amqplite", description="An AMQP 0-9-1 broker with RabbitMQ semantics."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130


__all__ = ["__version__", "build_parser", "main"]
