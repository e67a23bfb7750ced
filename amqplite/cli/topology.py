"""``amqplite topology validate | plan | apply | export | import`` (CLI layer).

``validate FILE...`` loads each file with every check and prints either a one-line
summary per file or every problem, compiler style (``FILE:LINE:COL: path: message``),
one per line.  Exit status: 0 all valid, 1 some file has errors.

``plan``/``apply`` compare a file with a running broker and make it so, over the HTTP API
(``--api``, the default: sees every argument and binding) or over AMQP (``--url``: works
with any AMQP 0-9-1 broker, RabbitMQ included); the work is in :mod:`amqplite.cli.remote`
and the definitions model with its RabbitMQ-JSON codec (:mod:`amqplite.broker.definitions`).
``plan`` prints one line per item, terraform style, and exits 1 when something conflicts
(an existing queue or exchange whose flags or arguments differ: it cannot change without
being deleted; a name neither the file nor the broker declares; something the broker
would refuse; a change that removes your own management access), else 0.  ``apply``
refuses the whole file on any conflict; ``--force`` lets it remove your own access.
A file given to ``plan``/``apply`` may use exchanges and queues the broker already has.
``export`` writes a running broker's topology as our YAML or RabbitMQ definitions JSON;
``import`` reads RabbitMQ definitions JSON and writes our YAML
(:mod:`amqplite.topology.yaml_writer`) or applies it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from amqplite.broker.definitions import Definitions, Plan, PlanItem
from amqplite.cli.errors import CommandError
from amqplite.cli.remote import (
    ApplyRefused,
    apply_over_amqp,
    apply_over_api,
    fetch_definitions,
    plan_over_amqp,
    plan_over_api,
)
from amqplite.cli.support import (
    Progress,
    add_api,
    amqp_url,
    api_client,
    guarded,
    print_json,
    warn,
)
from amqplite.topology.loader import load_config
from amqplite.topology.model import Config
from amqplite.topology.problems import TopologyError
from amqplite.topology.yaml_writer import definitions_to_config, definitions_to_yaml

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

    _register_remote(sub)


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


# -- against a running broker ---------------------------------------------------------

_MARK = {"create": "+", "update": "~", "unchanged": "=", "conflict": "!", "ensure": "~"}


def _register_remote(sub: Any) -> None:
    plan = sub.add_parser(
        "plan",
        help="show what applying a file to a running broker would do",
        description="Compare FILE with a running broker: create / unchanged / conflict "
        "(cannot change without deleting).  --api (default) reads the broker's definitions; "
        "--url probes over AMQP and works with any AMQP 0-9-1 broker (RabbitMQ too).",
    )
    _target_args(plan)
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    plan.set_defaults(func=guarded(_cmd_plan))

    apply = sub.add_parser(
        "apply",
        help="make a running broker hold what a file declares",
        description="Apply FILE to a running broker (refused as a whole on any conflict).",
    )
    _target_args(apply)
    apply.add_argument("--json", action="store_true", help="machine-readable output")
    apply.set_defaults(func=guarded(_cmd_apply))

    export = sub.add_parser(
        "export",
        help="write a running broker's topology as YAML or definitions JSON",
        description="Read GET /api/definitions (amqplite or RabbitMQ) and write our YAML "
        "(default) or RabbitMQ definitions JSON.",
    )
    export.add_argument("--format", choices=("yaml", "definitions"), default="yaml")
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    add_api(export)
    export.set_defaults(func=guarded(_cmd_export))

    imp = sub.add_parser(
        "import",
        help="read RabbitMQ definitions JSON: convert to YAML, or apply it",
        description="Convert a RabbitMQ definitions export to our YAML (stdout or -o), or "
        "apply it to a running broker with --api or --url.",
    )
    imp.add_argument("file", metavar="DEFINITIONS.json")
    imp.add_argument("-o", "--output", metavar="FILE", help="write the YAML here")
    target = imp.add_mutually_exclusive_group()
    target.add_argument("--api", metavar="URL", help="apply through this management API")
    target.add_argument("--url", metavar="AMQP_URL", help="apply over AMQP to this broker")
    imp.add_argument("--json", action="store_true", help="machine-readable output when applying")
    imp.add_argument("--force", action="store_true", help=argparse.SUPPRESS)
    imp.set_defaults(func=guarded(_cmd_import))


def _target_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE")
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--api",
        metavar="URL",
        help="management HTTP API (env AMQPLITE_API; the default target)",
    )
    group.add_argument(
        "--url", metavar="AMQP_URL", help="go over AMQP instead (any AMQP 0-9-1 broker)"
    )
    parser.add_argument(
        "--vhost",
        metavar="VHOST",
        help="apply the file's default-vhost topology to VHOST instead (e.g. a staging vhost)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="apply even a change that removes your own management access",
    )


def _item_json(item: PlanItem) -> dict[str, Any]:
    return {
        "action": item.action,
        "kind": item.kind,
        "vhost": item.vhost,
        "name": item.name,
        "detail": item.detail,
        "file": item.position.file,
        "line": item.position.line,
    }


def _print_plan(remote: Plan, as_json: bool, *, verb: str = "Plan") -> None:
    items = remote.items
    if as_json:
        print_json({"items": [_item_json(i) for i in items], "notes": list(remote.notes)})
        return
    for item in items:
        line = f"{_MARK[item.action]} {item}"
        if item.action == "conflict":
            p = item.position
            line += f"  [{p.file}:{p.line}]"
        print(line)
    counts = {a: sum(1 for i in items if i.action == a) for a in _MARK}
    print(
        f"{verb}: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['unchanged']} unchanged, {counts['conflict']} conflicting"
        + (f", {counts['ensure']} to ensure" if counts["ensure"] else "")
    )
    for note in remote.notes:
        warn(note)


def _wanted(config: Config, args: argparse.Namespace) -> Definitions:
    defs = config.definitions
    vhost = getattr(args, "vhost", None)
    return defs if not vhost else defs.moved(config.server.default_vhost, vhost)


def _cmd_plan(args: argparse.Namespace) -> int:
    config = load_config(args.file, broker_refs=True)
    wanted = _wanted(config, args)
    if args.url:
        remote = plan_over_amqp(wanted, amqp_url(args), Progress("checked"))
    else:
        remote = plan_over_api(wanted, api_client(args), force=args.force)
    _print_plan(remote, args.json)
    return 1 if remote.conflicts else 0


def _cmd_apply(args: argparse.Namespace) -> int:
    config = load_config(args.file, broker_refs=True)
    return _apply(config, args)


def _apply(config: Config, args: argparse.Namespace) -> int:
    try:
        wanted = _wanted(config, args)
        if args.url:
            remote, _sent = apply_over_amqp(wanted, amqp_url(args), Progress("applied"))
        else:
            remote = apply_over_api(wanted, api_client(args), force=args.force)
    except ApplyRefused as exc:
        _print_plan(exc.plan, args.json)
        raise
    items = remote.items
    if args.json:
        print_json({"items": [_item_json(i) for i in items], "notes": list(remote.notes)})
        return 0
    for item in items:
        if item.action in ("create", "update", "ensure"):
            print(f"{_MARK[item.action]} {item}")
    created = sum(1 for i in items if i.action == "create")
    updated = sum(1 for i in items if i.action == "update")
    unchanged = sum(1 for i in items if i.action == "unchanged")
    print(f"Applied: {created} created, {updated} updated, {unchanged} unchanged")
    for note in remote.notes:
        warn(note)
    return 0


def _write(text: str, output: str | None) -> None:
    if output is None or output == "-":
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write {output}: {exc.strerror or exc}") from None


def _count(defs: dict[str, Any]) -> str:
    return ", ".join(
        f"{len(defs.get(k) or [])} {k}"
        for k in ("vhosts", "exchanges", "queues", "bindings", "users")
    )


def _cmd_export(args: argparse.Namespace) -> int:
    api = api_client(args)
    print(f"amqplite: reading definitions from {api}", file=sys.stderr)
    defs = fetch_definitions(api)
    if args.format == "definitions":
        text = json.dumps(defs, indent=2) + "\n"
    else:
        text, warnings = definitions_to_yaml(defs, source=f"{api}/api/definitions")
        for w in warnings:
            warn(w)
    _write(text, args.output)
    print(f"amqplite: exported {_count(defs)}", file=sys.stderr)
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    try:
        defs = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CommandError(f"{args.file} is not JSON: {exc}") from None
    if not isinstance(defs, dict):
        raise CommandError(f"{args.file}: expected a JSON object (RabbitMQ definitions)")
    print(f"amqplite: importing {_count(defs)} from {args.file}", file=sys.stderr)
    if args.api is None and args.url is None:
        text, warnings = definitions_to_yaml(defs, source=Path(args.file).name)
        for w in warnings:
            warn(w)
        definitions_to_config(defs, source=args.file)  # validate before writing anything
        _write(text, args.output)
        return 0
    config, warnings = definitions_to_config(defs, source=args.file)
    for w in warnings:
        warn(w)
    if args.output:
        _write(definitions_to_yaml(defs, source=Path(args.file).name)[0], args.output)
    return _apply(config, args)
