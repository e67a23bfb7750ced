"""``amqplite topology ...`` sub-commands (CLI layer over amqplite.topology).

``validate FILE...`` loads each file with every check and prints either a one-line
summary per file or every problem, compiler style (``FILE:LINE:COL: path: message``),
one per line.  Exit status: 0 all valid, 1 some file has errors.

``plan``/``apply`` compare a file with a running broker and make it so, over the HTTP API
(``--api``, the default: sees every argument and binding) or over AMQP (``--url``: works
with any AMQP 0-9-1 broker, RabbitMQ included; see :mod:`amqplite.cli.remote`).
``export`` writes a running broker's topology as our YAML or RabbitMQ definitions JSON;
``import`` reads RabbitMQ definitions JSON and writes our YAML or applies it.  The remote
commands live in :mod:`amqplite.topology.remote_commands` (they need the ops package).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from amqplite.topology.loader import load_config
from amqplite.topology.model import Config
from amqplite.topology.problems import TopologyError

UNDECLARED_HINT = (
    "hint: a name the file uses without declaring it is fine if the broker you apply the "
    "file to already has it: 'amqplite topology plan/apply FILE' check it there"
)


def register(subparsers: Any) -> None:
    """Add ``topology`` and its sub-commands to the ``amqplite`` parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "topology", help="check and manage YAML topology/config files"
    )
    sub = parser.add_subparsers(dest="topology_command", metavar="ACTION")
    parser.set_defaults(func=lambda _args: _help(parser))

    validate = sub.add_parser(
        "validate",
        help="check files without applying them",
        description="Check config/topology files; print every problem with file:line:col.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing when a file is valid"
    )
    validate.set_defaults(func=_cmd_validate)

    from amqplite.topology.remote_commands import register_remote

    register_remote(sub)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def summarize(config: Config) -> str:
    """``3 vhosts, 4 exchanges, 6 queues, 7 bindings, 2 users``."""
    counts = (
        (len(config.vhosts), "vhost"),
        (sum(len(v.exchanges) for v in config.vhosts), "exchange"),
        (sum(len(v.queues) for v in config.vhosts), "queue"),
        (sum(len(v.bindings) for v in config.vhosts), "binding"),
        (len(config.users), "user"),
    )
    return ", ".join(f"{n} {word}{'' if n == 1 else 's'}" for n, word in counts)


def _cmd_validate(args: argparse.Namespace) -> int:
    status = 0
    for file in args.files:
        try:
            config = load_config(file)
        except TopologyError as exc:
            status = 1
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            n = len(exc.problems)
            print(f"{file}: {n} error{'' if n == 1 else 's'}", file=sys.stderr)
            if exc.undeclared:
                print(UNDECLARED_HINT, file=sys.stderr)
            continue
        for warning in config.warnings:
            print(warning, file=sys.stderr)
        if not args.quiet:
            print(f"{file}: OK ({summarize(config)})")
    return status
