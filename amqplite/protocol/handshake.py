"""What the server says in connection.start and how to read the client's SASL response (protocol layer, pure).

The capabilities are the ones RabbitMQ advertises and amqplite implements; clients such
as pika and aio-pika switch features (confirms, basic.nack, consumer cancel
notifications, connection.blocked) on only when they see them here.
"""

from __future__ import annotations

import struct
from typing import Any

from amqplite.errors import ConnectionError, ReplyCode
from amqplite.protocol import methods
from amqplite.protocol.fields import DECODE_ERRORS, _decode_table

SERVER_CAPABILITIES: dict[str, bool] = {
    "publisher_confirms": True,
    "exchange_exchange_bindings": True,
    "basic.nack": True,
    "consumer_cancel_notify": True,
    "connection.blocked": True,
    "consumer_priorities": True,
    "authentication_failure_close": True,
    "per_consumer_qos": True,
}

MECHANISMS = ("PLAIN", "AMQPLAIN")


def connection_start(
    product: str = "amqplite",
    version: str = "0.1.0",
    platform: str = "Python",
    capabilities: dict[str, bool] | None = None,
    mechanisms: tuple[str, ...] = MECHANISMS,
) -> methods.ConnectionStart:
    """The connection.start a server sends right after a valid protocol header."""
    properties: dict[str, Any] = {
        "product": product,
        "version": version,
        "platform": platform,
        "information": "https://github.com/amqplite/amqplite",
        "capabilities": dict(SERVER_CAPABILITIES if capabilities is None else capabilities),
    }
    return methods.ConnectionStart(0, 9, properties, " ".join(mechanisms).encode(), b"en_US")


def parse_sasl_response(mechanism: str, response: bytes) -> tuple[str, str] | None:
    """(username, password) from a start-ok response, or None when it is malformed.

    An unknown mechanism is RabbitMQ's 503 "unknown authentication mechanism 'X'"; a
    malformed response is left to the caller, which refuses the login (403) with the
    same text as a wrong password.
    """
    if mechanism == "PLAIN":
        # [authzid] NUL authcid NUL passwd
        parts = response.split(b"\x00")
        if len(parts) != 3:
            return None
        try:
            return parts[1].decode("utf-8"), parts[2].decode("utf-8")
        except UnicodeDecodeError:
            return None
    if mechanism == "AMQPLAIN":
        # A field table without its length prefix, with LOGIN and PASSWORD.
        try:
            table, _ = _decode_table(struct.pack(">I", len(response)) + response, 0)
        except DECODE_ERRORS:
            return None
        login, password = table.get("LOGIN"), table.get("PASSWORD")
        if isinstance(login, str) and isinstance(password, str):
            return login, password
        return None
    raise ConnectionError(
        ReplyCode.COMMAND_INVALID, f"unknown authentication mechanism '{mechanism}'", 10, 11
    )
