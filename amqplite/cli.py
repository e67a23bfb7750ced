"""The ``amqplite`` command: a thin argparse front door over the packages.

Each package that offers commands has a ``commands`` module with
``register(subparsers) -> None``; it adds its sub-commands and sets ``func`` on each
parser to a callable taking the parsed ``argparse.Namespace`` and returning an exit code.
Keeping the commands next to the code they drive keeps this file small.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

# Modules contributing sub-commands, in the order they appear in --help.
COMMAND_MODULES = (
    "amqplite.server.commands",
    "amqplite.topology.commands",
    "amqplite.bench.commands",
    "amqplite.ops.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amqplite", description="An AMQP 0-9-1 broker with RabbitMQ semantics."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that package has no commands yet
                continue
            raise
        module.register(sub)
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
