"""The ``amqplite`` command: every sub-command, and the argparse front door (CLI layer).

One package holds all command-line code; the packages below it offer functions and know
nothing of argparse.  Each module here adds its sub-commands with
``register(subparsers) -> None`` and sets ``func`` on each parser to a callable taking the
parsed ``argparse.Namespace`` and returning an exit code:

- :mod:`~amqplite.cli.serve` -- ``serve`` (runs the broker through :mod:`amqplite.app`);
- :mod:`~amqplite.cli.topology` -- ``topology validate | plan | apply | export | import``;
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
import difflib
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from amqplite.version import __version__

# Modules contributing sub-commands, in the order they appear in --help.
COMMAND_MODULES = (
    "amqplite.cli.serve",
    "amqplite.cli.topology",
    "amqplite.cli.bench",
    "amqplite.cli.listings",
    "amqplite.cli.messaging",
    "amqplite.cli.dlq",
    "amqplite.cli.access",
    "amqplite.cli.stream",
)


#: Commands whose INFO log lines are their output (the others log warnings and errors only,
#: so `route --config` or `topology plan` print what was asked and nothing else).
LOGGING_COMMANDS = frozenset({"serve"})


class CliParser(argparse.ArgumentParser):
    """An ArgumentParser whose sub-commands report unknown options themselves.

    argparse reports an unknown option with the *top-level* usage; a user who typed
    ``amqplite queues --jsn`` wants the usage of ``queues`` and a did-you-mean."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        # The innermost parser runs first: it names itself, the outer ones keep that.
        if not hasattr(parsed, "_cli_parser"):
            parsed._cli_parser = self
        return parsed, extras

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            owner: CliParser = getattr(parsed, "_cli_parser", self)
            owner.unknown(extras)
        return parsed

    def unknown(self, extras: Sequence[str]) -> NoReturn:
        options = [s for action in self._actions for s in action.option_strings]
        words = []
        for extra in extras:
            flag = extra.split("=", 1)[0]
            close = difflib.get_close_matches(flag, options, n=1) if flag.startswith("-") else []
            words.append(f"{extra} (did you mean {close[0]}?)" if close else extra)
        self.error(f"unrecognized arguments: {' '.join(words)}")

    def error(self, message: str) -> NoReturn:
        # argparse's "invalid choice: 'queue' (choose from ...)": name the closest choice.
        if "invalid choice: '" in message and "did you mean" not in message:
            wrong = message.split("invalid choice: '", 1)[1].split("'", 1)[0]
            choices = [c for a in self._actions if a.choices for c in a.choices]
            close = difflib.get_close_matches(wrong, [str(c) for c in choices], n=1)
            if close:
                message = f"invalid choice: '{wrong}' (did you mean '{close[0]}'?)"
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(prog="amqplite", description="An AMQP 0-9-1 broker with RabbitMQ semantics.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"amqplite {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet = logging.INFO if args.command in LOGGING_COMMANDS else logging.WARNING
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else quiet,
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
