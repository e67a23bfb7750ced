"""Logins shared by AMQP and HTTP: password checks off the event loop, the loopback-only rule.

Server layer.  :func:`authenticate` checks a user name and password (cheap hashes inline,
legacy scrypt ones in a small bounded pool); :func:`is_loopback` tells whether a peer address is a
loopback one (RabbitMQ's ``loopback_users``: ``guest`` may only log in from there).  The
AMQP SASL responses these come from are parsed in :mod:`amqplite.server.session.sasl`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from typing import TYPE_CHECKING

import trio

from amqplite.broker.passwords import is_expensive

if TYPE_CHECKING:
    from amqplite.broker.auth import User, UserDB


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback addresses."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


# -- password checks: cheap ones inline, memory-hard ones in a small fixed pool ----------
#
# The default stored hash (RabbitMQ's salted SHA-256) costs microseconds and is checked
# inline.  A legacy scrypt hash costs 16 MiB and tens of milliseconds: checked inline it
# would stall every connection, and checked in an unbounded pool a flood of wrong-password
# logins is a pre-authentication memory bomb (200 at once took a broker from 55 MB to
# 878 MB).  So scrypt checks share HASH_WORKERS threads: memory is bounded by
# HASH_WORKERS x 16 MiB whatever the flood, and logins of users with cheap hashes never
# queue behind them.  Successful scrypt checks are remembered (keyed by the stored hash and
# a keyed digest of the password, never the password itself) so reconnecting clients do
# not pay scrypt each time.

#: Threads that may run a memory-hard password check at the same time.
HASH_WORKERS = 2
_hash_limiter: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("hash_limiter")
_CACHE_KEY = secrets.token_bytes(32)
_CACHE_LIMIT = 1024
_verified: dict[tuple[str, bytes], None] = {}


def hash_limiter() -> trio.CapacityLimiter:
    """The pool limit for memory-hard checks, one per trio run (created on first use)."""
    try:
        return _hash_limiter.get()
    except LookupError:
        limiter = trio.CapacityLimiter(HASH_WORKERS)
        _hash_limiter.set(limiter)
        return limiter


def _cache_key(password_hash: str, password: str) -> tuple[str, bytes]:
    digest = hashlib.blake2b(password.encode("utf-8"), key=_CACHE_KEY, digest_size=32).digest()
    return password_hash, digest


async def authenticate(users: UserDB, name: str, password: str) -> User | None:
    """The user if the password is right, else None; memory-hard checks run in the pool."""
    user = users.get(name)
    if user is None or not is_expensive(user.password_hash):
        return users.authenticate(name, password)
    key = _cache_key(user.password_hash, password)
    if key in _verified:
        return user
    found = await trio.to_thread.run_sync(
        users.authenticate, name, password, limiter=hash_limiter()
    )
    if found is not None:
        if len(_verified) >= _CACHE_LIMIT:
            _verified.clear()
        _verified[_cache_key(found.password_hash, password)] = None
    return found


async def login(
    users: UserDB, name: str, password: str, peer: str, loopback_users: frozenset[str]
) -> User | None:
    """The user if the password is right and RabbitMQ's ``loopback_users`` rule allows
    ``peer`` (an address; "" when unknown); else None.  The management API's login."""
    if name in loopback_users and peer and not is_loopback(peer):
        return None
    return await authenticate(users, name, password)
