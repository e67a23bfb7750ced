"""Users, password hashes and per-vhost permissions (broker layer, pure).

Password hashes and their formats live in :mod:`amqplite.broker.passwords`.  Permission
patterns and how they match are in :mod:`amqplite.broker.permissions`; limits in
:mod:`amqplite.broker.limits`.  The default exchange ``""`` is checked under the name
``amq.default``, as RabbitMQ does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import attrs

from amqplite.broker.passwords import DUMMY_HASH, verify_password
from amqplite.broker.permissions import (
    Permission,
    TopicPermission,
    expand_variables,
    pattern_error,
)


@attrs.define(eq=False)
class User:
    """A broker user: name, password hash, tags (``administrator``...), permissions by
    vhost, topic permissions by vhost and exchange, and limits.

    One object per user for its whole life: changes are made in place, so connections
    holding it see new permissions at their next operation.
    """

    name: str
    password_hash: str
    tags: tuple[str, ...] = ()
    permissions: dict[str, Permission] = attrs.field(factory=dict)
    #: vhost -> exchange -> topic permission.
    topic_permissions: dict[str, dict[str, TopicPermission]] = attrs.field(factory=dict)
    #: ``max-connections`` / ``max-channels`` (see :mod:`amqplite.broker.limits`).
    limits: dict[str, int] = attrs.field(factory=dict)
    #: Bumped on every permission change: channels drop their cached checks when it moves.
    epoch: int = 0

    def can(self, vhost: str, kind: str, resource: str) -> bool:
        """Whether this user may ``kind`` ("configure"|"write"|"read") ``resource`` in ``vhost``."""
        perm = self.permissions.get(vhost)
        if perm is None:
            return False
        return perm.allows(kind, resource or "amq.default")

    def can_see(self, vhost: str, resource: str) -> bool:
        """Whether any permission covers ``resource`` (what a passive declare needs)."""
        perm = self.permissions.get(vhost)
        return perm is not None and perm.allows_any(resource or "amq.default")

    def can_topic(self, vhost: str, exchange: str, kind: str, routing_key: str) -> bool:
        """Topic permission ``kind`` ("write"|"read") for ``routing_key`` on ``exchange``;
        an exchange without topic permissions for this user is unrestricted."""
        by_exchange = self.topic_permissions.get(vhost)
        if not by_exchange:
            return True
        perm = by_exchange.get(exchange)
        return perm is None or perm.allows(kind, routing_key)

    def can_access_vhost(self, vhost: str) -> bool:
        return vhost in self.permissions


class RecordSink(Protocol):
    """Where durable changes are written (the broker, which forwards them to its store)."""

    def put_record(self, kind: str, key: tuple[str, ...], value: object) -> None: ...

    def delete_record(self, kind: str, key: tuple[str, ...]) -> None: ...


def check_patterns(*patterns: str) -> None:
    """ValueError naming the first pattern that is not a valid regular expression."""
    for pattern in patterns:
        error = pattern_error(pattern)
        if error is not None:
            raise ValueError(error)


class UserDB:
    """All users of a broker, by name.

    With ``records`` set (the broker does), users, permissions and topic permissions are
    written as ``("user", (name,))``, ``("permission", (user, vhost))`` and
    ``("topic_permission", (user, vhost, exchange))`` records, so they survive a restart.
    """

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.records: RecordSink | None = None

    def add_user(
        self,
        name: str,
        password_hash: str,
        tags: Iterable[str] = (),
        limits: dict[str, int] | None = None,
    ) -> User:
        """Add a user, or change the password, tags (and limits, if given) of an existing
        one in place; permissions are kept."""
        user = self.users.get(name)
        tags = tuple(tags)
        new_limits = dict(limits) if limits is not None else (user.limits if user else {})
        if self.records is not None:
            value: dict[str, object] = {"password_hash": password_hash, "tags": list(tags)}
            if new_limits:
                value["limits"] = new_limits
            self.records.put_record("user", (name,), value)
        if user is None:
            user = self.users[name] = User(name, password_hash, tags, limits=new_limits)
        else:
            user.password_hash = password_hash
            user.tags = tags
            user.limits = new_limits
        return user

    def set_limits(self, name: str, limits: dict[str, int]) -> None:
        """Replace the limits of user ``name`` (KeyError if no such user)."""
        user = self.users[name]
        self.add_user(name, user.password_hash, user.tags, limits)

    def delete_user(self, name: str) -> bool:
        user = self.users.pop(name, None)
        if user is None:
            return False
        if self.records is not None:
            for vhost in user.permissions:
                self.records.delete_record("permission", (name, vhost))
            for vhost, by_exchange in user.topic_permissions.items():
                for exchange in by_exchange:
                    self.records.delete_record("topic_permission", (name, vhost, exchange))
            self.records.delete_record("user", (name,))
        user.permissions.clear()
        user.topic_permissions.clear()
        user.epoch += 1
        return True

    def get(self, name: str) -> User | None:
        return self.users.get(name)

    def set_permissions(self, user: str, vhost: str, configure: str, write: str, read: str) -> None:
        """Grant ``user`` the three permission patterns on ``vhost`` (KeyError if no such
        user, ValueError if a pattern is not a valid regular expression)."""
        check_patterns(configure, write, read)
        account = self.users[user]
        if self.records is not None:
            self.records.put_record(
                "permission",
                (user, vhost),
                {"configure": configure, "write": write, "read": read},
            )
        account.permissions[vhost] = Permission(configure, write, read)
        account.epoch += 1

    def clear_permissions(self, user: str, vhost: str) -> None:
        account = self.users[user]
        if account.permissions.pop(vhost, None) is not None and self.records is not None:
            self.records.delete_record("permission", (user, vhost))
        account.epoch += 1

    def set_topic_permissions(
        self, user: str, vhost: str, exchange: str, write: str, read: str
    ) -> None:
        """Restrict ``user``'s routing keys on ``exchange`` in ``vhost`` (KeyError if no such
        user, ValueError if a pattern is not a valid regular expression)."""
        account = self.users[user]
        perm = TopicPermission(exchange, write, read, user=user, vhost=vhost)
        check_patterns(*(expand_variables(p, user, vhost) for p in (write, read)))
        if self.records is not None:
            self.records.put_record(
                "topic_permission", (user, vhost, exchange), {"write": write, "read": read}
            )
        account.topic_permissions.setdefault(vhost, {})[exchange] = perm
        account.epoch += 1

    def clear_topic_permissions(self, user: str, vhost: str, exchange: str | None = None) -> None:
        """Drop ``user``'s topic permissions on ``exchange`` (None: every exchange) in ``vhost``."""
        account = self.users[user]
        by_exchange = account.topic_permissions.get(vhost, {})
        names = list(by_exchange) if exchange is None else [exchange]
        for name in names:
            if by_exchange.pop(name, None) is not None and self.records is not None:
                self.records.delete_record("topic_permission", (user, vhost, name))
        if not by_exchange:
            account.topic_permissions.pop(vhost, None)
        account.epoch += 1

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if ``password`` is right, else None (never says which part was wrong)."""
        user = self.users.get(name)
        if user is None:
            # Spend the same time as a real check so user names cannot be probed by timing.
            verify_password(password, DUMMY_HASH)
            return None
        return user if verify_password(password, user.password_hash) else None

    def __contains__(self, name: object) -> bool:
        return name in self.users

    def __len__(self) -> int:
        return len(self.users)
