"""Logins shared by AMQP and HTTP: password checks off the event loop, the loopback-only rule.

Server layer.  :func:`authenticate` checks a user name and password (scrypt in a worker
thread, successful checks cached); :func:`is_loopback` tells whether a peer address is a
loopback one (RabbitMQ's ``loopback_users``: ``guest`` may only log in from there).  The
AMQP SASL responses these come from are parsed in :mod:`amqplite.server.session.sasl`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from typing import TYPE_CHECKING

import trio

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


# -- password checks off the event loop, with a cache ------------------------------------
#
# Password hashes are scrypt (tens of milliseconds of CPU each): checking them inline would
# stall every other connection during a login, so they run in a worker thread.  Successful
# checks are remembered (keyed by the stored hash and a keyed digest of the password, never
# the password itself) so reconnecting clients and test suites do not pay scrypt each time.

_CACHE_KEY = secrets.token_bytes(32)
_CACHE_LIMIT = 1024
_verified: dict[tuple[str, bytes], None] = {}


def _cache_key(password_hash: str, password: str) -> tuple[str, bytes]:
    digest = hashlib.blake2b(password.encode("utf-8"), key=_CACHE_KEY, digest_size=32).digest()
    return password_hash, digest


async def authenticate(users: UserDB, name: str, password: str) -> User | None:
    """The user if the password is right, else None; scrypt runs in a worker thread."""
    user = users.get(name)
    if user is not None and _cache_key(user.password_hash, password) in _verified:
        return user
    found = await trio.to_thread.run_sync(users.authenticate, name, password)
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
