"""SASL responses of connection.start-ok: PLAIN and AMQPLAIN (server layer, session package).

Turns what the client sent into a user name and password; the password check itself is
:func:`amqplite.server.auth.authenticate`, shared with the HTTP API.
"""

from __future__ import annotations

import struct

from amqplite.protocol.fields import decode_table

#: What connection.start offers, in RabbitMQ's order.
MECHANISMS = b"PLAIN AMQPLAIN"
#: SASL EXTERNAL: the user is the verified TLS client certificate's name.  Offered (after
#: the others) only on TLS connections whose client sent a verified certificate.
EXTERNAL = "EXTERNAL"
MECHANISMS_WITH_EXTERNAL = MECHANISMS + b" " + EXTERNAL.encode()

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
        return _amqplain(response)
    raise ValueError(mechanism)


def _amqplain(response: bytes) -> tuple[str, str] | None:
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
