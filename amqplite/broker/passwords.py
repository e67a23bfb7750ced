"""Password hashes: the stored formats, hashing and verification (broker layer, pure).

Hashes are self-describing strings, ``scheme$...``:

* ``rabbitsha256$<b64>`` (the default), ``rabbitsha512$<b64>``, ``rabbitmd5$<b64>``:
  RabbitMQ's salted hashes, the base64 of a 4-byte salt followed by
  ``digest(salt + password)``.  They verify as in RabbitMQ, export to RabbitMQ's
  definitions unchanged, and cost microseconds, so checking one never leaves the event
  loop and a flood of wrong passwords costs no memory (RabbitMQ's own default is
  salted SHA-256 for the same reason).
* ``scrypt$n$r$p$salt_b64$hash_b64``: the format amqplite stored before; still verified,
  but memory-hard (``128 * n * r`` bytes each, 16 MiB with the old parameters), so the
  server runs these checks in a small fixed pool (``server/auth.py``) and refuses
  parameters above :data:`SCRYPT_MAX_MEMORY`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

#: RabbitMQ's salted-hash schemes as stored here (prefix -> hashlib name).
RABBIT_SCHEMES = {"rabbitsha256": "sha256", "rabbitsha512": "sha512", "rabbitmd5": "md5"}
DEFAULT_SCHEME = "rabbitsha256"
_RABBIT_SALT_LEN = 4

#: Largest scrypt memory (bytes) a stored hash may ask for; bigger ones never verify.
SCRYPT_MAX_MEMORY = 1 << 25
_SCRYPT_KEY_LEN = 32


def hash_password(password: str, *, scheme: str = DEFAULT_SCHEME) -> str:
    """A freshly salted hash of ``password`` in one of RabbitMQ's formats (SHA-256 by default)."""
    salt = secrets.token_bytes(_RABBIT_SALT_LEN)
    digest = hashlib.new(RABBIT_SCHEMES[scheme], salt + password.encode("utf-8")).digest()
    return f"{scheme}${base64.b64encode(salt + digest).decode()}"


def hash_scrypt(password: str, *, n: int = 2**14, r: int = 8, p: int = 1) -> str:
    """A salted scrypt hash as ``scrypt$n$r$p$salt_b64$hash_b64`` (the legacy format)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_SCRYPT_KEY_LEN
    )
    fields = ("scrypt", str(n), str(r), str(p), _b64(salt), _b64(digest))
    return "$".join(fields)


def is_expensive(password_hash: str) -> bool:
    """Whether verifying against ``password_hash`` is memory-hard (belongs off the loop)."""
    return password_hash.startswith("scrypt$")


def verify_password(password: str, password_hash: str) -> bool:
    """Whether ``password`` matches ``password_hash``; constant-time in the digest comparison."""
    scheme, _, rest = password_hash.partition("$")
    algorithm = RABBIT_SCHEMES.get(scheme)
    if algorithm is not None:
        return _verify_rabbit(password, algorithm, rest)
    if scheme == "scrypt":
        return _verify_scrypt(password, rest)
    return False


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


def _verify_scrypt(password: str, rest: str) -> bool:
    try:
        n_s, r_s, p_s, salt_b64, digest_b64 = rest.split("$")
        n, r, p = int(n_s), int(r_s), int(p_s)
        if 128 * n * r > SCRYPT_MAX_MEMORY // 2:
            return False  # a stored hash must not be able to make a login allocate more
        salt = base64.b64decode(salt_b64, validate=True)
        expected = base64.b64decode(digest_b64, validate=True)
        digest = hashlib.scrypt(
            password.encode("utf-8"),
            salt=salt,
            n=n,
            r=r,
            p=p,
            dklen=len(expected),
            maxmem=SCRYPT_MAX_MEMORY,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


#: What an unknown user's login is checked against, so that it costs what a real one does.
DUMMY_HASH = f"{DEFAULT_SCHEME}$" + _b64(bytes(4 + 32))
