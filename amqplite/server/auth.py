"""Logins: SASL responses (PLAIN, AMQPLAIN), password checks, the loopback-only rule.

Server layer.  Pure helpers used by the session during connection.start-ok: they parse
what the client sent into a user name and password, and tell whether a peer address is a
loopback one (RabbitMQ's ``loopback_users``: ``guest`` may only log in from there).
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import struct
from typing import TYPE_CHECKING

import trio

from amqplite.protocol.fields import decode_table

if TYPE_CHECKING:
    from amqplite.broker.auth import User, UserDB

MECHANISMS = b"PLAIN AMQPLAIN"

_U32 = struct.Struct(">I")


def parse_response(mechanism: str, response: bytes) -> tuple[str, str] | None:
    """User name and password from a start-ok response, or None if it is malformed.

    Raises ValueError for a mechanism we do not offer.
    """
    if mechanism == "PLAIN":
        # authzid NUL authcid NUL password; the authorization identity is ignored, as
        # RabbitMQ does.
        parts = bytes(response).split(b"\x00")
        if len(parts) != 3:
            return None
        try:
            return parts[1].decode("utf-8"), parts[2].decode("utf-8")
        except UnicodeDecodeError:
            return None
    if mechanism == "AMQPLAIN":
        # A field table without its length prefix.
        try:
            table, _ = decode_table(_U32.pack(len(response)) + bytes(response))
        except Exception:
            return None
        login, password = table.get("LOGIN"), table.get("PASSWORD")
        if isinstance(login, bytes):
            login = login.decode("utf-8", "replace")
        if isinstance(password, bytes):
            password = password.decode("utf-8", "replace")
        if not isinstance(login, str) or not isinstance(password, str):
            return None
        return login, password
    raise ValueError(mechanism)


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
