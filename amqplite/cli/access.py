"""``amqplite users | vhosts | permissions | topic-permissions | limits``: who may do what.

CLI layer.  Every command is one call to the management HTTP API (amqplite's or
RabbitMQ's, the same endpoints), so the broker validates, persists and enforces; this
module only parses arguments and prints tables.  Passwords are never taken from the
command line (other users can read it in ``ps``): ``users add`` prompts, or reads one
line from standard input with ``--password-stdin``.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from amqplite.cli.errors import CommandError
from amqplite.cli.support import add_api, add_command, api_client, guarded, print_json, table
from amqplite.client.http import quote


def register(sub: Any) -> None:
    _users(sub)
    _vhosts(sub)
    _permissions(sub)
    _topic_permissions(sub)
    _limits(sub)


def _group(sub: Any, name: str, text: str) -> Any:
    parser = add_command(sub, name, help=text, description=f"{text} (via the HTTP API)")
    return parser.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)


def _action(group: Any, name: str, text: str, func: Any, *, listing: bool = False) -> Any:
    parser = add_command(group, name, help=text, description=text)
    add_api(parser)
    if listing:
        parser.add_argument("--json", action="store_true", help="the API's JSON, unchanged")
    parser.set_defaults(func=guarded(func))
    return parser


# -- users -----------------------------------------------------------------------------


def _users(sub: Any) -> None:
    group = _group(sub, "users", "manage users")
    _action(group, "list", "list users and their tags", _list_users, listing=True)
    add = _action(group, "add", "add a user, or change a user's password and tags", _add_user)
    add.add_argument("name", metavar="USER")
    add.add_argument("--tags", default="", help="comma-separated, e.g. administrator")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    delete = _action(group, "delete", "delete a user (its connections are closed)", _delete_user)
    delete.add_argument("name", metavar="USER")
    tags = _action(group, "tags", "set a user's tags (none: clear them)", _set_tags)
    tags.add_argument("name", metavar="USER")
    tags.add_argument("tags", nargs="*", metavar="TAG")


def _list_users(args: argparse.Namespace) -> int:
    users = api_client(args).get("/api/users")
    if args.json:
        print_json(users)
    else:
        print(table([(u["name"], ",".join(u["tags"])) for u in users], ("name", "tags")))
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise CommandError("no terminal to ask for the password: use --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise CommandError("the passwords differ")
    return first


def _add_user(args: argparse.Namespace) -> int:
    password = _read_password(args)
    api_client(args).put(
        f"/api/users/{quote(args.name)}", {"password": password, "tags": args.tags}
    )
    print(f"user '{args.name}' saved")
    return 0


def _delete_user(args: argparse.Namespace) -> int:
    api_client(args).delete(f"/api/users/{quote(args.name)}")
    print(f"user '{args.name}' deleted")
    return 0


def _set_tags(args: argparse.Namespace) -> int:
    client = api_client(args)
    path = f"/api/users/{quote(args.name)}"
    user = client.get(path)
    body = {k: user[k] for k in ("password_hash", "hashing_algorithm") if k in user}
    client.put(path, {**body, "tags": ",".join(args.tags)})
    print(f"user '{args.name}' tagged {', '.join(args.tags) or '(none)'}")
    return 0


# -- vhosts ----------------------------------------------------------------------------


def _vhosts(sub: Any) -> None:
    group = _group(sub, "vhosts", "manage virtual hosts")
    _action(group, "list", "list vhosts", _list_vhosts, listing=True)
    for name, text, func in (
        ("add", "add a vhost", _add_vhost),
        ("delete", "delete a vhost and everything in it", _delete_vhost),
    ):
        _action(group, name, text, func).add_argument("name", metavar="VHOST")


def _list_vhosts(args: argparse.Namespace) -> int:
    vhosts = api_client(args).get("/api/vhosts")
    if args.json:
        print_json(vhosts)
    else:
        print(table([(v["name"], v.get("messages", 0)) for v in vhosts], ("name", "messages")))
    return 0


def _add_vhost(args: argparse.Namespace) -> int:
    api_client(args).put(f"/api/vhosts/{quote(args.name)}", {})
    print(f"vhost '{args.name}' added")
    return 0


def _delete_vhost(args: argparse.Namespace) -> int:
    api_client(args).delete(f"/api/vhosts/{quote(args.name)}")
    print(f"vhost '{args.name}' deleted")
    return 0


# -- permissions -----------------------------------------------------------------------


def _permissions(sub: Any) -> None:
    group = _group(sub, "permissions", "manage permissions (regexes searched in names)")
    listing = _action(group, "list", "list permissions", _list_permissions, listing=True)
    listing.add_argument("--vhost", "-p", default=None, metavar="V", help="only this vhost")
    put = _action(group, "set", "set a user's configure, write and read patterns", _set_perms)
    put.add_argument("user", metavar="USER")
    for kind in ("configure", "write", "read"):
        put.add_argument(kind, metavar=kind.upper(), help="regex ('' allows nothing)")
    put.add_argument("--vhost", "-p", default="/", metavar="V", help="vhost (default /)")
    clear = _action(group, "clear", "remove a user's permissions on a vhost", _clear_perms)
    clear.add_argument("user", metavar="USER")
    clear.add_argument("--vhost", "-p", default="/", metavar="V", help="vhost (default /)")


def _list_permissions(args: argparse.Namespace) -> int:
    path = (
        "/api/permissions" if args.vhost is None else f"/api/vhosts/{quote(args.vhost)}/permissions"
    )
    found = api_client(args).get(path)
    if args.json:
        print_json(found)
        return 0
    rows = [(p["vhost"], p["user"], p["configure"], p["write"], p["read"]) for p in found]
    print(table(rows, ("vhost", "user", "configure", "write", "read")))
    return 0


def _set_perms(args: argparse.Namespace) -> int:
    body = {"configure": args.configure, "write": args.write, "read": args.read}
    api_client(args).put(f"/api/permissions/{quote(args.vhost)}/{quote(args.user)}", body)
    print(f"permissions of '{args.user}' on vhost '{args.vhost}' set")
    return 0


def _clear_perms(args: argparse.Namespace) -> int:
    api_client(args).delete(f"/api/permissions/{quote(args.vhost)}/{quote(args.user)}")
    print(f"permissions of '{args.user}' on vhost '{args.vhost}' cleared")
    return 0


# -- topic permissions -----------------------------------------------------------------


def _topic_permissions(sub: Any) -> None:
    group = _group(sub, "topic-permissions", "manage topic permissions (routing-key regexes)")
    listing = _action(group, "list", "list topic permissions", _list_topic, listing=True)
    listing.add_argument("--vhost", "-p", default=None, metavar="V", help="only this vhost")
    put = _action(group, "set", "restrict a user's routing keys on an exchange", _set_topic)
    put.add_argument("user", metavar="USER")
    put.add_argument("exchange", metavar="EXCHANGE")
    put.add_argument("write", metavar="WRITE", help="regex for published routing keys")
    put.add_argument("read", metavar="READ", help="regex for binding keys")
    put.add_argument("--vhost", "-p", default="/", metavar="V", help="vhost (default /)")
    clear = _action(group, "clear", "remove a user's topic permissions", _clear_topic)
    clear.add_argument("user", metavar="USER")
    clear.add_argument("--exchange", default=None, help="only this exchange's")
    clear.add_argument("--vhost", "-p", default="/", metavar="V", help="vhost (default /)")


def _list_topic(args: argparse.Namespace) -> int:
    path = (
        "/api/topic-permissions"
        if args.vhost is None
        else f"/api/vhosts/{quote(args.vhost)}/topic-permissions"
    )
    found = api_client(args).get(path)
    if args.json:
        print_json(found)
        return 0
    rows = [(p["vhost"], p["user"], p["exchange"], p["write"], p["read"]) for p in found]
    print(table(rows, ("vhost", "user", "exchange", "write", "read")))
    return 0


def _set_topic(args: argparse.Namespace) -> int:
    body = {"exchange": args.exchange, "write": args.write, "read": args.read}
    api_client(args).put(f"/api/topic-permissions/{quote(args.vhost)}/{quote(args.user)}", body)
    print(f"topic permissions of '{args.user}' on '{args.exchange}' in vhost '{args.vhost}' set")
    return 0


def _clear_topic(args: argparse.Namespace) -> int:
    path = f"/api/topic-permissions/{quote(args.vhost)}/{quote(args.user)}"
    if args.exchange is not None:
        path += f"?exchange={quote(args.exchange)}"
    api_client(args).delete(path)
    print(f"topic permissions of '{args.user}' in vhost '{args.vhost}' cleared")
    return 0


# -- limits ----------------------------------------------------------------------------


def _limits(sub: Any) -> None:
    group = _group(sub, "limits", "manage vhost and user limits (0 blocks, negative: none)")
    listing = _action(group, "list", "list vhost and user limits", _list_limits, listing=True)
    _owner(listing, required=False)
    put = _action(group, "set", "set limits, e.g. max-connections=10", _set_limits)
    _owner(put, required=True)
    put.add_argument("limits", nargs="+", metavar="NAME=VALUE")
    clear = _action(group, "clear", "remove limits (none named: all of them)", _clear_limits)
    _owner(clear, required=True)
    clear.add_argument("names", nargs="*", metavar="NAME")


def _owner(parser: argparse.ArgumentParser, *, required: bool) -> None:
    who = parser.add_mutually_exclusive_group(required=required)
    who.add_argument("--vhost", "-p", default=None, metavar="V", help="a vhost's limits")
    who.add_argument("--user", "-u", default=None, metavar="U", help="a user's limits")


def _limits_path(args: argparse.Namespace) -> tuple[str, str]:
    if args.user is not None:
        return "user", f"/api/user-limits/{quote(args.user)}"
    return "vhost", f"/api/vhost-limits/{quote(args.vhost)}"


def _list_limits(args: argparse.Namespace) -> int:
    client = api_client(args)
    if args.user is None and args.vhost is None:
        found = [("vhost", x) for x in client.get("/api/vhost-limits")]
        found += [("user", x) for x in client.get("/api/user-limits")]
    else:
        kind, path = _limits_path(args)
        found = [(kind, x) for x in client.get(path)]
    if args.json:
        print_json([x for _, x in found])
        return 0
    rows = [
        (kind, item[kind], name, value)
        for kind, item in found
        for name, value in sorted(item["value"].items())
    ]
    print(table(rows, ("of", "name", "limit", "value")))
    return 0


def _set_limits(args: argparse.Namespace) -> int:
    client = api_client(args)
    _, path = _limits_path(args)
    for pair in args.limits:
        name, sep, value = pair.partition("=")
        if not sep:
            raise CommandError(f"{pair!r}: expected NAME=VALUE, e.g. max-connections=10")
        try:
            number = int(value)
        except ValueError:
            raise CommandError(f"{pair!r}: the value must be a whole number") from None
        client.put(f"{path}/{quote(name)}", {"value": number})
    print("limits set")
    return 0


def _clear_limits(args: argparse.Namespace) -> int:
    client = api_client(args)
    _, path = _limits_path(args)
    names = args.names
    if not names:
        names = [n for item in client.get(path) for n in item["value"]]
    for name in names:
        client.delete(f"{path}/{quote(name)}")
    print("limits cleared")
    return 0
