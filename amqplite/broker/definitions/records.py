"""The store's topology records read back as :class:`~.model.Definitions` (broker core, pure).

The broker writes one record per durable vhost, exchange, queue, binding, user and
permission (``("queue", (vhost, name)) -> {"auto_delete": ..., "arguments": ...}``).
:func:`from_records` turns them into definitions for recovery to plan and apply, and
lists the records that cannot be restored (malformed, or hanging off a vhost or user
that has no record), which recovery forgets.  Everything recovered is durable: only
durable things are written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from amqplite.broker.definitions.model import (
    BindingSpec,
    Definitions,
    ExchangeSpec,
    PermissionSpec,
    QueueSpec,
    TopicPermissionSpec,
    UserSpec,
    VHostSpec,
)

RecordKey = tuple[str, tuple[str, ...]]


@attrs.frozen
class FromRecords:
    definitions: Definitions
    #: ``(kind, vhost, plan item name) -> record key``, to forget a record the broker refuses.
    keys: Mapping[tuple[str, str, str], RecordKey]
    #: Records that cannot be restored, with the reason.
    unusable: tuple[tuple[RecordKey, str], ...]


def from_records(records: Iterable[tuple[RecordKey, Any]]) -> FromRecords:
    """Definitions for the store's ``((kind, key), value)`` records (in key order)."""
    by_kind: dict[str, list[tuple[tuple[str, ...], Any]]] = {}
    for (kind, key), value in records:
        by_kind.setdefault(kind, []).append((key, value))
    for kind_items in by_kind.values():
        kind_items.sort(key=lambda kv: kv[0])
    keys: dict[tuple[str, str, str], RecordKey] = {}
    unusable: list[tuple[RecordKey, str]] = []
    sections: dict[str, dict[str, list[Any]]] = {}
    limits: dict[str, Any] = {}
    for (name,), value in by_kind.get("vhost", []):
        sections[name] = {"exchange": [], "queue": [], "binding": []}
        limits[name] = (value or {}).get("limits") or None
        keys[("vhost", name, name)] = ("vhost", (name,))
    for kind in ("exchange", "queue", "binding"):
        for key, value in by_kind.get(kind, []):
            section = sections.get(key[0])
            if section is None:
                unusable.append(((kind, key), "its vhost is gone"))
                continue
            try:
                spec = _SPEC[kind](key, value or {})
            except (KeyError, TypeError, ValueError) as exc:
                unusable.append(((kind, key), f"malformed record: {exc!r}"))
                continue
            section[kind].append(spec)
            name = spec.describe() if isinstance(spec, BindingSpec) else spec.name
            keys[(kind, key[0], name)] = (kind, key)
    users: list[UserSpec] = []
    for (name,), value in by_kind.get("user", []):
        users.append(
            UserSpec(
                name,
                value["password_hash"],
                tuple(value.get("tags") or ()),
                limits=value.get("limits") or None,
            )
        )
        keys[("user", "", name)] = ("user", (name,))
    known_users = {u.name for u in users}
    permissions: list[PermissionSpec] = []
    for key, value in by_kind.get("permission", []):
        user, vhost = key
        if user not in known_users:
            unusable.append((("permission", key), "its user is gone"))
            continue
        permissions.append(
            PermissionSpec(user, vhost, value["configure"], value["write"], value["read"])
        )
        keys[("permission", vhost, f"{user}@{vhost}")] = ("permission", key)
    topic: list[TopicPermissionSpec] = []
    for key, value in by_kind.get("topic_permission", []):
        user, vhost, exchange = key
        if user not in known_users:
            unusable.append((("topic_permission", key), "its user is gone"))
            continue
        topic.append(TopicPermissionSpec(user, vhost, exchange, value["write"], value["read"]))
        keys[("topic_permission", vhost, f"{user}@{vhost} on {exchange}")] = (
            "topic_permission",
            key,
        )
    vhosts = tuple(
        VHostSpec(name, tuple(s["exchange"]), tuple(s["queue"]), tuple(s["binding"]), limits[name])
        for name, s in sections.items()
    )
    defs = Definitions(vhosts, tuple(users), tuple(permissions), tuple(topic))
    return FromRecords(defs, keys, tuple(unusable))


def _exchange(key: tuple[str, ...], value: Mapping[str, Any]) -> ExchangeSpec:
    _vhost, name = key
    return ExchangeSpec(
        name, value["type"], durable=True, auto_delete=bool(value.get("auto_delete")),
        internal=bool(value.get("internal")), arguments=dict(value.get("arguments") or {}),
    )  # fmt: skip


def _queue(key: tuple[str, ...], value: Mapping[str, Any]) -> QueueSpec:
    _vhost, name = key
    return QueueSpec(
        name, durable=True, auto_delete=bool(value.get("auto_delete")),
        arguments=dict(value.get("arguments") or {}),
    )  # fmt: skip


def _binding(key: tuple[str, ...], value: Mapping[str, Any]) -> BindingSpec:
    _vhost, source, dest_type, dest, routing_key, _digest = key
    kind: Literal["queue", "exchange"] = "queue" if dest_type == "queue" else "exchange"
    return BindingSpec(source, dest, kind, routing_key, dict(value.get("arguments") or {}))


_SPEC: Mapping[str, Any] = {"exchange": _exchange, "queue": _queue, "binding": _binding}
