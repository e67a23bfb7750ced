"""Users, password hashes and per-vhost permissions (broker layer, pure).

Passwords are stored as self-describing strings, ``scrypt$n$r$p$salt_b64$hash_b64``, so
the parameters can be raised later without invalidating stored hashes.  Hashes imported
from RabbitMQ definitions are kept as ``rabbitsha256$<b64>``, ``rabbitsha512$<b64>`` or
``rabbitmd5$<b64>``, where the base64 holds RabbitMQ's 4-byte salt followed by
``digest(salt + password)``; they verify as they would in RabbitMQ.  Permission
patterns and how they match are in :mod:`amqplite.broker.permissions`; limits in
:mod:`amqplite.broker.limits`.  The default exchange ``""`` is checked under the name
``amq.default``, as RabbitMQ does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import Protocol

import attrs

from amqplite.broker.permissions import (
    Permission,
    TopicPermission,
    expand_variables,
    pattern_error,
)

_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_KEY_LEN = 32


def hash_password(
    password: str, *, n: int = _SCRYPT_N, r: int = _SCRYPT_R, p: int = _SCRYPT_P
) -> str:
    """A salted scrypt hash of ``password`` as ``scrypt$n$r$p$salt_b64$hash_b64``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_KEY_LEN)
    return "$".join(
        (
            "scrypt",
            str(n),
            str(r),
            str(p),
            base64.b64encode(salt).decode(),
            base64.b64encode(digest).decode(),
        )
    )


#: RabbitMQ's salted-hash schemes as stored here (prefix -> hashlib name).
RABBIT_SCHEMES = {"rabbitsha256": "sha256", "rabbitsha512": "sha512", "rabbitmd5": "md5"}
_RABBIT_SALT_LEN = 4


def verify_password(password: str, password_hash: str) -> bool:
    """Whether ``password`` matches ``password_hash``; constant-time in the digest comparison."""
    scheme, _, rest = password_hash.partition("$")
    algorithm = RABBIT_SCHEMES.get(scheme)
    if algorithm is not None:
        return _verify_rabbit(password, algorithm, rest)
    try:
        scheme, n_s, r_s, p_s, salt_b64, digest_b64 = password_hash.split("$")
        if scheme != "scrypt":
            return False
        salt = base64.b64decode(salt_b64, validate=True)
        expected = base64.b64decode(digest_b64, validate=True)
        digest = hashlib.scrypt(
            password.encode("utf-8"),
            salt=salt,
            n=int(n_s),
            r=int(r_s),
            p=int(p_s),
            dklen=len(expected),
            maxmem=2**26,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


def _verify_rabbit(password: str, algorithm: str, encoded: str) -> bool:
    try:
        salted = base64.b64decode(encoded, validate=True)
    except ValueError:
        return False
    salt, expected = salted[:_RABBIT_SALT_LEN], salted[_RABBIT_SALT_LEN:]
    if len(salt) != _RABBIT_SALT_LEN or not expected:
        return False
    digest = hashlib.new(algorithm, salt + password.encode("utf-8")).digest()
    return hmac.compare_digest(digest, expected)


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
            verify_password(password, _DUMMY_HASH)
            return None
        return user if verify_password(password, user.password_hash) else None

    def __contains__(self, name: object) -> bool:
        return name in self.users

    def __len__(self) -> int:
        return len(self.users)


_DUMMY_HASH = (
    "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
)
