"""Shared CLI plumbing for the commands: targets, one-line errors, progress, tables.

CLI layer.  Every command function is wrapped by :func:`guarded`, which turns the
expected failures (refused connection, 401, 404, a broker's channel close, a topology
file with problems) into one line ``amqplite: error: ...`` on stderr and exit status 1.
Progress of long operations goes to stderr so stdout stays parseable (``--json``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from amqplite.broker.definitions.rabbit_json import DefinitionsError
from amqplite.cli.errors import CommandError
from amqplite.client import AmqpUrl, ClientError, ConnectionClosed, parse_url
from amqplite.client.http import DEFAULT_API, ApiClient
from amqplite.topology.problems import TopologyError

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
Command = Callable[[argparse.Namespace], int]


def error(message: str) -> None:
    print(f"amqplite: error: {message}", file=sys.stderr)


def warn(message: str) -> None:
    print(f"amqplite: warning: {message}", file=sys.stderr)


def guarded(func: Command) -> Command:
    """Run a command; expected failures become one line on stderr and exit status 1."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except TopologyError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            n = len(exc.problems)
            error(f"{n} problem{'' if n == 1 else 's'} in the topology")
        except ConnectionClosed as exc:
            error(exc.reply_text)
        except (CommandError, ClientError, DefinitionsError) as exc:
            error(str(exc))
        except BrokenPipeError:  # `amqplite queues | head`
            return 0
        return 1

    return run


def add_command(sub: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """``sub.add_parser(name, ...)`` with the return type mypy needs."""
    parser: argparse.ArgumentParser = sub.add_parser(name, **kwargs)
    return parser


def add_api(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api",
        metavar="URL",
        default=None,
        help=f"management HTTP API (env AMQPLITE_API; default {DEFAULT_API})",
    )


def add_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        metavar="AMQP_URL",
        default=None,
        help=f"AMQP URL (env AMQPLITE_URL; default {DEFAULT_URL})",
    )


def api_client(args: argparse.Namespace) -> ApiClient:
    return ApiClient(args.api or os.environ.get("AMQPLITE_API") or DEFAULT_API)


def amqp_url(args: argparse.Namespace, vhost: str | None = None) -> AmqpUrl:
    url = parse_url(args.url or os.environ.get("AMQPLITE_URL") or DEFAULT_URL)
    return url if vhost is None else url.with_vhost(vhost)


class Progress:
    """``amqplite: <what> 120/400`` lines on stderr, at most every ``every`` items."""

    def __init__(self, what: str, *, every: int = 100, quiet: bool = False) -> None:
        self.what = what
        self.every = every
        self.quiet = quiet

    def __call__(self, done: int, total: int) -> None:
        if self.quiet or total < self.every:
            return
        if done % self.every == 0 or done == total:
            print(f"amqplite: {self.what} {done}/{total}", file=sys.stderr, flush=True)


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=False, default=str))


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain left-aligned text table (numbers right-aligned)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    numeric = [
        all(isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in rows) and rows
        for i in range(len(headers))
    ]

    def fmt(row: Sequence[str]) -> str:
        parts = [
            c.rjust(widths[i]) if numeric[i] else c.ljust(widths[i]) for i, c in enumerate(row)
        ]
        return "  ".join(parts).rstrip()

    lines = [fmt(list(headers)), fmt(["-" * w for w in widths])]
    lines.extend(fmt(r) for r in cells)
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), default=str) if value else ""
    return str(value)


def key_values(pairs: Sequence[str] | None, what: str) -> dict[str, Any]:
    """``["k=v", "n=5"]`` → ``{"k": "v", "n": 5}`` (integers and true/false are typed)."""
    out: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"{what} must look like key=value, got {pair!r}")
        out[key] = typed(value)
    return out


def typed(value: str) -> Any:
    if value in ("true", "false"):
        return value == "true"
    try:
        return int(value)
    except ValueError:
        return value
