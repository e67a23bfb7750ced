"""Users, password hashes and per-vhost permissions (broker layer, pure).

Passwords are stored as self-describing strings, ``scrypt$n$r$p$salt_b64$hash_b64``, so
the parameters can be raised later without invalidating stored hashes.  Hashes imported
from RabbitMQ definitions are kept as ``rabbitsha256$<b64>``, ``rabbitsha512$<b64>`` or
``rabbitmd5$<b64>``, where the base64 holds RabbitMQ's 4-byte salt followed by
``digest(salt + password)``; they verify as they would in RabbitMQ.  Permissions
follow RabbitMQ: three regular expressions per (user, vhost), ``configure``, ``write``
and ``read``, searched (not anchored) in the resource name; an empty pattern denies
everything.  The default exchange ``""`` is checked under the name ``amq.default``, as
RabbitMQ does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from typing import Protocol

import attrs

_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_KEY_LEN = 32

PERMISSION_KINDS = ("configure", "write", "read")


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


@attrs.frozen
class Permission:
    """The three permission patterns of one user on one vhost (regex sources)."""

    configure: str
    write: str
    read: str
    _compiled: tuple[re.Pattern[str] | None, ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        compiled = tuple(
            re.compile(p) if p else None for p in (self.configure, self.write, self.read)
        )
        object.__setattr__(self, "_compiled", compiled)

    def allows(self, kind: str, resource: str) -> bool:
        pattern = self._compiled[PERMISSION_KINDS.index(kind)]
        if pattern is None:
            return False
        return pattern.search(resource) is not None


@attrs.define(eq=False)
class User:
    """A broker user: name, password hash, tags (``administrator``...) and permissions by vhost."""

    name: str
    password_hash: str
    tags: tuple[str, ...] = ()
    permissions: dict[str, Permission] = attrs.field(factory=dict)

    def can(self, vhost: str, kind: str, resource: str) -> bool:
        """Whether this user may ``kind`` ("configure"|"write"|"read") ``resource`` in ``vhost``."""
        perm = self.permissions.get(vhost)
        if perm is None:
            return False
        return perm.allows(kind, resource or "amq.default")

    def can_access_vhost(self, vhost: str) -> bool:
        return vhost in self.permissions


class RecordSink(Protocol):
    """Where durable changes are written (the broker, which forwards them to its store)."""

    def put_record(self, kind: str, key: tuple[str, ...], value: object) -> None: ...

    def delete_record(self, kind: str, key: tuple[str, ...]) -> None: ...


class UserDB:
    """All users of a broker, by name.

    With ``records`` set (the broker does), users and permissions are written as
    ``("user", (name,))`` and ``("permission", (user, vhost))`` records, so they survive
    a restart.
    """

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.records: RecordSink | None = None

    def add_user(self, name: str, password_hash: str, tags: Iterable[str] = ()) -> User:
        """Add (or replace the password and tags of) a user; existing permissions are kept."""
        existing = self.users.get(name)
        permissions = existing.permissions if existing is not None else {}
        user = User(name, password_hash, tuple(tags), permissions)
        if self.records is not None:
            self.records.put_record(
                "user", (name,), {"password_hash": password_hash, "tags": list(user.tags)}
            )
        self.users[name] = user
        return user

    def delete_user(self, name: str) -> bool:
        user = self.users.pop(name, None)
        if user is None:
            return False
        if self.records is not None:
            for vhost in user.permissions:
                self.records.delete_record("permission", (name, vhost))
            self.records.delete_record("user", (name,))
        return True

    def get(self, name: str) -> User | None:
        return self.users.get(name)

    def set_permissions(self, user: str, vhost: str, configure: str, write: str, read: str) -> None:
        """Grant ``user`` the three permission patterns on ``vhost`` (KeyError if no such user)."""
        for pattern in (configure, write, read):
            re.compile(pattern)  # fail here, not on the first check
        account = self.users[user]
        if self.records is not None:
            self.records.put_record(
                "permission",
                (user, vhost),
                {"configure": configure, "write": write, "read": read},
            )
        account.permissions[vhost] = Permission(configure, write, read)

    def clear_permissions(self, user: str, vhost: str) -> None:
        if self.users[user].permissions.pop(vhost, None) is not None and self.records is not None:
            self.records.delete_record("permission", (user, vhost))

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
