"""The one codec between RabbitMQ's definitions JSON and :class:`~.model.Definitions`.

Broker core, pure (dicts in, dicts out).  The format is RabbitMQ's ``GET /api/definitions``:
``rabbit_version``, ``users``, ``vhosts``, ``permissions``, ``exchanges``, ``queues``,
``bindings``, ``topic_permissions``, vhost limits as ``vhost-limits`` parameters (plus
``policies`` and other parameters, which amqplite has nothing for), so a
file exported from RabbitMQ imports here and the other way round.  A per-vhost export
(``GET /api/definitions/{vhost}``) has no ``vhost`` fields and no users.

Reading is strict about shape: a field of the wrong type is a :class:`DefinitionsError`
naming the item (``queues[3]: 'durable' must be true or false``), never a silent default;
booleans accept JSON ``true``/``false`` and the strings ``"true"``/``"false"`` that old
exports wrote, nothing else.  What has no place in the model (policies, runtime
parameters, users without a password) is left out with a warning.

Password hashes: RabbitMQ's salted hashes travel as ``password_hash`` with
``hashing_algorithm`` ``rabbit_password_hashing_sha256`` (also ``_sha512``, ``_md5``);
in the model they are ``rabbitsha256$<base64>`` (the broker verifies them as RabbitMQ
does).  Ours (``scrypt$...``) go out under ``amqplite_scrypt``.  A plain ``password``
field is hashed on the way in.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Literal

from amqplite.broker.definitions.model import (
    PREDECLARED_EXCHANGES,
    BindingSpec,
    Definitions,
    ExchangeSpec,
    PermissionSpec,
    QueueSpec,
    TopicPermissionSpec,
    UserSpec,
    VHostSpec,
)

#: The RabbitMQ version our exports claim to be shaped like.
RABBIT_VERSION = "3.13.0"
OUR_HASH = "amqplite_scrypt"
#: RabbitMQ hashing_algorithm -> the scheme prefix of our password_hash strings.
RABBIT_HASHES: Mapping[str, str] = {
    "rabbit_password_hashing_sha256": "rabbitsha256",
    "rabbit_password_hashing_sha512": "rabbitsha512",
    "rabbit_password_hashing_md5": "rabbitmd5",
}
_SCHEME_TO_ALGORITHM = {v: k for k, v in RABBIT_HASHES.items()}
_IGNORED_GLOBAL_PARAMETERS = frozenset({"internal_cluster_id", "cluster_name"})

Json = dict[str, Any]


class DefinitionsError(ValueError):
    """The definitions document is not shaped like RabbitMQ's (one line saying where)."""


def rabbit_sha256(password: str) -> str:
    """``password`` hashed the way RabbitMQ's default backend does (``rabbitsha256$...``):
    base64 of a 4-byte salt and sha256(salt + password), so RabbitMQ can check it."""
    salt = secrets.token_bytes(4)
    digest = hashlib.sha256(salt + password.encode("utf-8")).digest()
    return "rabbitsha256$" + base64.b64encode(salt + digest).decode()


# -- definitions -> JSON -----------------------------------------------------------------


def exported_hash(stored: str) -> dict[str, str]:
    """A stored hash as definitions fields: RabbitMQ's own hashes go back in RabbitMQ's
    format (so RabbitMQ can import them), ours under our algorithm name."""
    scheme, sep, rest = stored.partition("$")
    if sep and scheme in _SCHEME_TO_ALGORITHM:
        return {"password_hash": rest, "hashing_algorithm": _SCHEME_TO_ALGORITHM[scheme]}
    return {"password_hash": stored, "hashing_algorithm": OUR_HASH}


def encode(
    defs: Definitions, *, vhost: str | None = None, jsonable: Callable[[Any], Any] = dict
) -> Json:
    """RabbitMQ definitions JSON; with ``vhost``, a per-vhost export (no users, no vhost fields).

    Exclusive queues (and bindings to them) are left out: they belong to a connection.
    ``jsonable`` turns an argument table into JSON values (bytes, decimals...).
    """
    out: Json = {
        "rabbit_version": RABBIT_VERSION,
        "rabbitmq_version": RABBIT_VERSION,
        "product_name": "amqplite",
        "product_version": RABBIT_VERSION,
    }
    vhosts = [v for v in defs.vhosts if vhost is None or v.name == vhost]
    if vhost is None:
        out["users"] = [
            {
                "name": u.name,
                **exported_hash(u.password_hash),
                "tags": list(u.tags),
                "limits": dict(u.limits or {}),
            }
            for u in defs.users
        ]
        out["vhosts"] = [
            {"name": v.name, "description": "", "tags": [], "metadata": {}} for v in vhosts
        ]
        out["permissions"] = [
            {"user": p.user, "vhost": p.vhost, "configure": p.configure, "write": p.write,
             "read": p.read}
            for p in defs.permissions
        ]  # fmt: skip
        out["topic_permissions"] = [
            {"user": t.user, "vhost": t.vhost, "exchange": t.exchange, "write": t.write,
             "read": t.read}
            for t in defs.topic_permissions
        ]  # fmt: skip
        out["parameters"] = [
            {"vhost": v.name, "component": "vhost-limits", "name": "limits",
             "value": dict(v.limits)}
            for v in vhosts if v.limits
        ]  # fmt: skip
        out["global_parameters"] = []
    out["policies"] = []

    def where(v: VHostSpec) -> Json:  # a per-vhost export names no vhost
        return {"vhost": v.name} if vhost is None else {}

    out["queues"] = [
        {"name": q.name, **where(v), "durable": q.durable, "auto_delete": q.auto_delete,
         "arguments": jsonable(q.arguments)}
        for v in vhosts for q in v.queues if not q.exclusive
    ]  # fmt: skip
    out["exchanges"] = [
        {"name": x.name, **where(v), "type": x.type, "durable": x.durable,
         "auto_delete": x.auto_delete, "internal": x.internal, "arguments": jsonable(x.arguments)}
        for v in vhosts for x in v.exchanges
    ]  # fmt: skip
    out["bindings"] = [
        {"source": b.source, **where(v), "destination": b.destination,
         "destination_type": b.destination_type, "routing_key": b.routing_key,
         "arguments": jsonable(b.arguments)}
        for v in vhosts for b in v.bindings if not _to_exclusive(v, b)
    ]  # fmt: skip
    return out


def _to_exclusive(v: VHostSpec, b: BindingSpec) -> bool:
    return b.destination_type == "queue" and any(
        q.exclusive and q.name == b.destination for q in v.queues
    )


# -- JSON -> definitions -----------------------------------------------------------------


def items(doc: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = doc.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise DefinitionsError(f"'{key}' must be a list of objects")
    return value


def string(item: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = item.get(key, default)
    if not isinstance(value, str):
        raise DefinitionsError(f"{where}: '{key}' must be a string")
    return value


def boolean(item: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    """The one boolean reader: true/false, or the strings "true"/"false" of old exports."""
    value = item.get(key, default)
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    if not isinstance(value, bool):
        raise DefinitionsError(f"{where}: '{key}' must be true or false, got {value!r}")
    return value


def _table(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    value = item.get("arguments") or {}
    if not isinstance(value, dict):
        raise DefinitionsError(f"{where}: 'arguments' must be an object")
    return dict(value)


def _tags(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):  # RabbitMQ < 3.9 wrote "administrator,management"
        return tuple(t for t in (s.strip() for s in value.split(",")) if t)
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return tuple(value)
    raise DefinitionsError(f"{where}: 'tags' must be a list of strings")


def _limits(item: Mapping[str, Any], where: str) -> dict[str, int] | None:
    value = item.get("limits")
    if value is None:
        return None
    if value == []:  # RabbitMQ writes cleared limits as an empty Erlang list
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value.values()
    ):
        raise DefinitionsError(f"{where}: 'limits' must be an object of integers")
    return dict(value)


class _Reader:
    """Collects the items of one document by vhost, in document order."""

    def __init__(self, doc: Mapping[str, Any], only_vhost: str | None) -> None:
        if not isinstance(doc, Mapping):
            raise DefinitionsError("definitions must be a JSON object")
        self.doc = doc
        self.only_vhost = only_vhost
        self.warnings: list[str] = []
        self.sections: dict[str, dict[str, list[Any]]] = {}
        self.limits: dict[str, dict[str, int] | None] = {}

    def section(self, name: str) -> dict[str, list[Any]]:
        return self.sections.setdefault(name, {"exchanges": [], "queues": [], "bindings": []})

    def vhost_of(self, item: Mapping[str, Any], where: str) -> str:
        if self.only_vhost is not None:
            return self.only_vhost
        return string(item, "vhost", where)

    def read(self) -> Definitions:
        if self.only_vhost is None:
            for i, item in enumerate(items(self.doc, "vhosts")):
                self.section(string(item, "name", f"vhosts[{i}]"))
        else:
            self.section(self.only_vhost)
        self._ignored()
        self._exchanges()
        self._queues()
        self._bindings()
        users, permissions = self._users() if self.only_vhost is None else ((), ())
        topic = self._topic_permissions() if self.only_vhost is None else ()
        for vhost in [p.vhost for p in permissions] + [t.vhost for t in topic]:
            self.section(vhost)  # a permission on a vhost implies the vhost, as in RabbitMQ
        vhosts = tuple(
            VHostSpec(name, tuple(s["exchanges"]), tuple(s["queues"]), tuple(s["bindings"]),
                      limits=self.limits.get(name), path=f"vhosts.{name}")
            for name, s in self.sections.items()
        )  # fmt: skip
        return Definitions(vhosts, users, permissions, topic)

    def _topic_permissions(self) -> tuple[TopicPermissionSpec, ...]:
        out = []
        for i, item in enumerate(items(self.doc, "topic_permissions")):
            where = f"topic_permissions[{i}]"
            user, vhost, exchange, write, read = (
                string(item, k, where) for k in ("user", "vhost", "exchange", "write", "read")
            )
            out.append(TopicPermissionSpec(user, vhost, exchange, write, read, path=where))
        return tuple(out)

    def _ignored(self) -> None:
        limits = [p for p in items(self.doc, "parameters") if p.get("component") == "vhost-limits"]
        for i, p in enumerate(limits):
            where = f"parameters (vhost-limits)[{i}]"
            self.limits[self.vhost_of(p, where)] = _limits({"limits": p.get("value")}, where)
        for what in ("policies", "parameters"):
            n = len(items(self.doc, what)) - (len(limits) if what == "parameters" else 0)
            if n:
                self.warnings.append(
                    f"{n} {what.replace('_', ' ')} not imported (amqplite has no {what})"
                )
        extra = [
            p.get("name")
            for p in items(self.doc, "global_parameters")
            if p.get("name") not in _IGNORED_GLOBAL_PARAMETERS
        ]
        if extra:
            self.warnings.append(f"global parameters not imported: {', '.join(map(str, extra))}")

    def _exchanges(self) -> None:
        for i, item in enumerate(items(self.doc, "exchanges")):
            where = f"exchanges[{i}]"
            name, vh, kind = (
                string(item, "name", where),
                self.vhost_of(item, where),
                string(item, "type", where),
            )
            spec = ExchangeSpec(
                name, kind, durable=boolean(item, "durable", where, True),
                auto_delete=boolean(item, "auto_delete", where, False),
                internal=boolean(item, "internal", where, False),
                arguments=_table(item, where), path=where,
            )  # fmt: skip
            if name not in PREDECLARED_EXCHANGES and not name.startswith("amq."):
                self.section(vh)["exchanges"].append(spec)

    def _queues(self) -> None:
        for i, item in enumerate(items(self.doc, "queues")):
            where = f"queues[{i}]"
            name, vh = string(item, "name", where), self.vhost_of(item, where)
            spec = QueueSpec(
                name, durable=boolean(item, "durable", where, True),
                auto_delete=boolean(item, "auto_delete", where, False),
                arguments=_table(item, where), path=where,
            )  # fmt: skip
            if name.startswith("amq."):
                self.warnings.append(f"queue '{name}' in vhost '{vh}': server-named queue skipped")
            elif boolean(item, "exclusive", where, False):
                self.warnings.append(f"queue '{name}' in vhost '{vh}': exclusive queue skipped")
            else:
                self.section(vh)["queues"].append(spec)

    def _bindings(self) -> None:
        for i, item in enumerate(items(self.doc, "bindings")):
            where = f"bindings[{i}]"
            vh = self.vhost_of(item, where)
            source, dest = string(item, "source", where), string(item, "destination", where)
            dtype = string(item, "destination_type", where)
            if dtype not in ("queue", "exchange"):
                raise DefinitionsError(f"{where}: destination_type must be 'queue' or 'exchange'")
            kind: Literal["queue", "exchange"] = "queue" if dtype == "queue" else "exchange"
            spec = BindingSpec(
                source, dest, kind, string(item, "routing_key", where, ""), _table(item, where),
                path=where,
            )  # fmt: skip
            if source != "":  # the default exchange's implicit bindings
                self.section(vh)["bindings"].append(spec)

    def _users(self) -> tuple[tuple[UserSpec, ...], tuple[PermissionSpec, ...]]:
        users: list[UserSpec] = []
        for i, item in enumerate(items(self.doc, "users")):
            user = self._user(item, f"users[{i}]")
            if user is not None:
                users.append(user)
        permissions: list[PermissionSpec] = []
        for i, item in enumerate(items(self.doc, "permissions")):
            where = f"permissions[{i}]"
            configure, write, read = (
                string(item, k, where) for k in ("configure", "write", "read")
            )
            permissions.append(
                PermissionSpec(
                    string(item, "user", where),
                    string(item, "vhost", where),
                    configure,
                    write,
                    read,
                    path=where,
                )
            )
        return tuple(users), tuple(permissions)

    def _user(self, item: Mapping[str, Any], where: str) -> UserSpec | None:
        name = string(item, "name", where)
        tags = _tags(item.get("tags"), where)
        password = item.get("password")
        if isinstance(password, str):
            from amqplite.broker.passwords import hash_password

            hashed = hash_password(password)
            return UserSpec(name, hashed, tags, limits=_limits(item, where), path=where)
        stored = string(item, "password_hash", where, "")
        algorithm = item.get("hashing_algorithm", OUR_HASH)
        if algorithm != OUR_HASH and algorithm not in RABBIT_HASHES:
            raise DefinitionsError(f"{where}: unsupported hashing_algorithm {algorithm!r}")
        if not stored:
            self.warnings.append(f"user '{name}' has no password (certificate login?); skipped")
            return None
        hashed = stored if algorithm == OUR_HASH else f"{RABBIT_HASHES[algorithm]}${stored}"
        return UserSpec(name, hashed, tags, limits=_limits(item, where), path=where)


def decode(doc: Mapping[str, Any], *, vhost: str | None = None) -> tuple[Definitions, list[str]]:
    """Definitions for a RabbitMQ definitions document, and warnings about what was left out.

    ``vhost`` reads a per-vhost export (items without ``vhost`` fields) into that vhost.
    Raises :class:`DefinitionsError` for a malformed document.
    """
    reader = _Reader(doc, vhost)
    defs = reader.read()
    return defs, reader.warnings
