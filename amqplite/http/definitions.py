"""RabbitMQ "definitions" JSON: export a broker's topology and users, and apply such a file.

Layer: ``amqplite/http`` (pure: reads and changes the broker through ``VHost`` / ``UserDB``
operations, no I/O).  The format is RabbitMQ's (``GET /api/definitions``): ``rabbit_version``,
``users``, ``vhosts``, ``permissions``, ``exchanges``, ``queues``, ``bindings`` (plus the
empty ``policies`` / ``parameters`` lists RabbitMQ always writes), so a file exported from
RabbitMQ imports here and the other way round.

Password hashes: ours are exported as ``password_hash`` with ``hashing_algorithm``
``amqplite_scrypt``.  RabbitMQ's salted SHA-256 / MD5 hashes are imported as
``rabbitsha256$<base64>`` / ``rabbitmd5$<base64>`` (the broker's user database decides
whether it can verify them); a plain ``password`` field is hashed on import.

Apply validates the whole document's shape first (400 on the first problem, nothing
applied), then applies vhosts, users, permissions, exchanges, queues, bindings in that
order.  A semantic conflict (e.g. an inequivalent queue argument) stops the apply where it
happened and is reported, as RabbitMQ does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from amqplite.broker import hash_password
from amqplite.http.jsonout import jsonable
from amqplite.http.request import bad_request

if TYPE_CHECKING:
    from amqplite.broker import Broker, VHost

RABBIT_VERSION = "3.13.0"
OUR_HASH = "amqplite_scrypt"
_RABBIT_HASHES = {
    "rabbit_password_hashing_sha256": "rabbitsha256",
    "rabbit_password_hashing_md5": "rabbitmd5",
    "rabbit_password_hashing_sha512": "rabbitsha512",
}
_PREDECLARED = frozenset({"", "amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match"})


def _exported_hash(stored: str) -> dict[str, str]:
    """A stored hash as definitions fields: RabbitMQ's own hashes go back in RabbitMQ's
    format (so RabbitMQ can import them), ours under our algorithm name."""
    scheme, sep, rest = stored.partition("$")
    for algorithm, prefix in _RABBIT_HASHES.items():
        if sep and scheme == prefix:
            return {"password_hash": rest, "hashing_algorithm": algorithm}
    return {"password_hash": stored, "hashing_algorithm": OUR_HASH}


def export(broker: Broker, *, vhost: str | None = None) -> dict[str, Any]:
    """The broker's definitions; with ``vhost``, only that vhost's objects (no users)."""
    vhosts = [v for v in list(broker.vhosts.values()) if vhost is None or v.name == vhost]
    out: dict[str, Any] = {
        "rabbit_version": RABBIT_VERSION,
        "rabbitmq_version": RABBIT_VERSION,
        "product_name": "amqplite",
        "product_version": RABBIT_VERSION,
    }
    if vhost is None:
        users = sorted(broker.users.users.values(), key=lambda u: u.name)
        out["users"] = [
            {
                "name": u.name,
                **_exported_hash(u.password_hash),
                "tags": list(u.tags),
                "limits": {},
            }
            for u in users
        ]
        out["vhosts"] = [
            {"name": v.name, "description": "", "tags": [], "metadata": {}} for v in vhosts
        ]
        out["permissions"] = [
            {
                "user": u.name,
                "vhost": name,
                "configure": p.configure,
                "write": p.write,
                "read": p.read,
            }
            for u in users
            for name, p in sorted(u.permissions.items())
        ]
        out["topic_permissions"] = []
        out["parameters"] = []
        out["global_parameters"] = []
    out["policies"] = []
    out["queues"] = [
        {
            "name": q.name,
            **({"vhost": v.name} if vhost is None else {}),
            "durable": q.durable,
            "auto_delete": q.auto_delete,
            "arguments": jsonable(q.arguments),
        }
        for v in vhosts
        for q in list(v.queues.values())
        if not q.exclusive
    ]
    out["exchanges"] = [
        {
            "name": x.name,
            **({"vhost": v.name} if vhost is None else {}),
            "type": x.type,
            "durable": x.durable,
            "auto_delete": x.auto_delete,
            "internal": x.internal,
            "arguments": jsonable(x.arguments),
        }
        for v in vhosts
        for x in list(v.exchanges.values())
        if x.name not in _PREDECLARED
    ]
    out["bindings"] = [
        {
            "source": b.source,
            **({"vhost": v.name} if vhost is None else {}),
            "destination": b.destination,
            "destination_type": b.destination_type,
            "routing_key": b.routing_key,
            "arguments": jsonable(b.arguments),
        }
        for v in vhosts
        for b in v.bindings()
        if not _exclusive_destination(v, b.destination_type, b.destination)
    ]
    return out


def _exclusive_destination(vhost: VHost, kind: str, name: str) -> bool:
    queue = vhost.queues.get(name) if kind == "queue" else None
    return queue is not None and queue.exclusive


# -- validation -------------------------------------------------------------------------


def _items(defs: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = defs.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise bad_request(f"'{key}' must be a list of objects")
    return value


def _str(item: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = item.get(key, default)
    if not isinstance(value, str):
        raise bad_request(f"{where}: '{key}' must be a string")
    return value


def _bool(item: dict[str, Any], key: str, where: str, default: bool) -> bool:
    value = item.get(key, default)
    if isinstance(value, str) and value in ("true", "false"):  # some old exports
        return value == "true"
    if not isinstance(value, bool):
        raise bad_request(f"{where}: '{key}' must be true or false")
    return value


def _args(item: dict[str, Any], where: str) -> dict[str, Any]:
    value = item.get("arguments") or {}
    if not isinstance(value, dict):
        raise bad_request(f"{where}: 'arguments' must be an object")
    return value


def _tags(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):  # RabbitMQ < 3.9 wrote "administrator,management"
        return [t for t in (s.strip() for s in value.split(",")) if t]
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return list(value)
    raise bad_request(f"{where}: 'tags' must be a list of strings")


def apply(broker: Broker, defs: dict[str, Any], *, vhost: str | None = None) -> None:
    """Apply definitions ``defs`` to ``broker`` (400 for a malformed document)."""
    steps: list[Callable[[], None]] = []

    def vhost_of(item: dict[str, Any], where: str) -> str:
        if vhost is not None:
            return vhost
        return _str(item, "vhost", where)

    def add_vhost(name: str) -> Callable[[], None]:
        def step() -> None:
            broker.add_vhost(name)

        return step

    if vhost is None:
        for i, item in enumerate(_items(defs, "vhosts")):
            steps.append(add_vhost(_str(item, "name", f"vhosts[{i}]")))
        for i, item in enumerate(_items(defs, "users")):
            steps.append(_user_step(broker, item, f"users[{i}]"))
        for i, item in enumerate(_items(defs, "permissions")):
            where = f"permissions[{i}]"
            user = _str(item, "user", where)
            target = _str(item, "vhost", where)
            patterns = tuple(_str(item, k, where) for k in ("configure", "write", "read"))
            steps.append(_permission_step(broker, user, target, patterns))

    for i, item in enumerate(_items(defs, "exchanges")):
        where = f"exchanges[{i}]"
        name = _str(item, "name", where)
        target = vhost_of(item, where)
        if name in _PREDECLARED:
            continue
        kind = _str(item, "type", where)
        durable = _bool(item, "durable", where, True)
        auto_delete = _bool(item, "auto_delete", where, False)
        internal = _bool(item, "internal", where, False)
        arguments = _args(item, where)

        def declare_exchange(
            t: str = target,
            n: str = name,
            k: str = kind,
            d: bool = durable,
            a: bool = auto_delete,
            i: bool = internal,
            args: dict[str, Any] = arguments,
        ) -> None:
            broker.get_vhost(t).declare_exchange(
                n, k, durable=d, auto_delete=a, internal=i, arguments=args
            )

        steps.append(declare_exchange)

    for i, item in enumerate(_items(defs, "queues")):
        where = f"queues[{i}]"
        name = _str(item, "name", where)
        target = vhost_of(item, where)
        durable = _bool(item, "durable", where, True)
        auto_delete = _bool(item, "auto_delete", where, False)
        arguments = _args(item, where)

        def declare_queue(
            t: str = target,
            n: str = name,
            d: bool = durable,
            a: bool = auto_delete,
            args: dict[str, Any] = arguments,
        ) -> None:
            broker.get_vhost(t).declare_queue(n, durable=d, auto_delete=a, arguments=args)

        steps.append(declare_queue)

    for i, item in enumerate(_items(defs, "bindings")):
        where = f"bindings[{i}]"
        target = vhost_of(item, where)
        source = _str(item, "source", where)
        dest = _str(item, "destination", where)
        dest_type = _str(item, "destination_type", where)
        if dest_type not in ("queue", "exchange"):
            raise bad_request(f"{where}: destination_type must be 'queue' or 'exchange'")
        key = _str(item, "routing_key", where, "")
        arguments = _args(item, where)

        def bind(
            t: str = target,
            s: str = source,
            d: str = dest,
            dt: str = dest_type,
            k: str = key,
            args: dict[str, Any] = arguments,
        ) -> None:
            vh = broker.get_vhost(t)
            if dt == "queue":
                vh.bind_queue(d, s, k, args)
            else:
                vh.bind_exchange(d, s, k, args)

        steps.append(bind)

    for step in steps:
        step()


def _user_step(broker: Broker, item: dict[str, Any], where: str) -> Callable[[], None]:
    name = _str(item, "name", where)
    tags = _tags(item.get("tags"), where)
    password = item.get("password")
    if isinstance(password, str):
        hashed = hash_password(password)
    else:
        stored = _str(item, "password_hash", where, "")
        algorithm = item.get("hashing_algorithm", OUR_HASH)
        if algorithm == OUR_HASH:
            hashed = stored
        elif algorithm in _RABBIT_HASHES:
            hashed = f"{_RABBIT_HASHES[algorithm]}${stored}" if stored else ""
        else:
            raise bad_request(f"{where}: unsupported hashing_algorithm {algorithm!r}")

    def step() -> None:
        broker.users.add_user(name, hashed, tags)

    return step


def _permission_step(
    broker: Broker, user: str, vhost: str, patterns: tuple[str, ...]
) -> Callable[[], None]:
    def step() -> None:
        if user not in broker.users:
            raise bad_request(f"permissions for unknown user '{user}'")
        if vhost not in broker.vhosts:
            broker.add_vhost(vhost)
        broker.users.set_permissions(user, vhost, *patterns)

    return step
