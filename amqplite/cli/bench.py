"""``amqplite bench``: the load generator under the ``amqplite`` command (CLI layer).

The bench keeps its own argument table and runner (:mod:`amqplite.bench.commands`) so that
``python -m amqplite.bench`` works with the standard library alone; this module only hangs
them under ``amqplite``.
"""

from __future__ import annotations

import argparse
from typing import Any

import amqplite.bench
from amqplite.bench.commands import add_arguments, run


def register(subparsers: Any) -> None:
    usage = (amqplite.bench.__doc__ or "").split("\n\n", 2)
    parser = subparsers.add_parser(
        "bench",
        help="benchmark an AMQP 0-9-1 broker (amqplite or RabbitMQ)",
        description=usage[0],
        epilog=usage[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
