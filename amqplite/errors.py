"""AMQP reply codes and the two kinds of AMQP error, shared by every layer.

AMQP 0-9-1 splits errors into *soft* ones, which close only the channel they happened
on, and *hard* ones, which close the whole connection.  Both carry the reply code and
text that go into the Close method, plus the class and method id of the method that
caused them (0, 0 when no method is to blame).  The protocol layer raises hard errors
for malformed input; the broker core raises both kinds for semantic problems; the
session turns them into ``channel.close`` / ``connection.close``.

This module is pure: no I/O, no imports beyond the standard library.
"""

from __future__ import annotations

import enum


class ReplyCode(enum.IntEnum):
    """Reply codes from the AMQP 0-9-1 spec (``<constant>`` elements)."""

    REPLY_SUCCESS = 200
    CONTENT_TOO_LARGE = 311
    NO_ROUTE = 312
    NO_CONSUMERS = 313
    CONNECTION_FORCED = 320
    INVALID_PATH = 402
    ACCESS_REFUSED = 403
    NOT_FOUND = 404
    RESOURCE_LOCKED = 405
    PRECONDITION_FAILED = 406
    FRAME_ERROR = 501
    SYNTAX_ERROR = 502
    COMMAND_INVALID = 503
    CHANNEL_ERROR = 504
    UNEXPECTED_FRAME = 505
    RESOURCE_ERROR = 506
    NOT_ALLOWED = 530
    NOT_IMPLEMENTED = 540
    INTERNAL_ERROR = 541


#: Codes that close the connection rather than the channel.
HARD_CODES = frozenset(
    {
        ReplyCode.CONNECTION_FORCED,
        ReplyCode.INVALID_PATH,
        ReplyCode.FRAME_ERROR,
        ReplyCode.SYNTAX_ERROR,
        ReplyCode.COMMAND_INVALID,
        ReplyCode.CHANNEL_ERROR,
        ReplyCode.UNEXPECTED_FRAME,
        ReplyCode.RESOURCE_ERROR,
        ReplyCode.NOT_ALLOWED,
        ReplyCode.NOT_IMPLEMENTED,
        ReplyCode.INTERNAL_ERROR,
    }
)


class AMQPError(Exception):
    """An error that ends in a Close method with ``reply_code`` and ``reply_text``.

    ``reply_text`` follows RabbitMQ's wording, prefixed with the code's name the way
    RabbitMQ does (``"NOT_FOUND - no queue 'q' in vhost '/'"``), because some clients
    parse it.  ``class_id``/``method_id`` name the offending method; the session fills
    them in when the raiser could not know them.
    """

    hard: bool = False

    def __init__(self, reply_code: int, text: str, class_id: int = 0, method_id: int = 0) -> None:
        self.reply_code = int(reply_code)
        try:
            name = ReplyCode(self.reply_code).name
        except ValueError:
            name = "ERROR"
        self.text = text
        self.reply_text = truncate_shortstr(f"{name} - {text}")
        self.class_id = class_id
        self.method_id = method_id
        super().__init__(self.reply_text)


def truncate_shortstr(text: str, limit: int = 255) -> str:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes without splitting a character.

    Reply texts travel as shortstr (max 255 bytes); a text naming a long queue or
    exchange would otherwise make the Close method itself unencodable.
    """
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", errors="ignore")


class ChannelError(AMQPError):
    """A soft error: closes the channel (403, 404, 405, 406 and the like)."""

    hard = False


class AMQPConnectionError(AMQPError):
    """A hard error: closes the whole connection (5xx, 320, 402, 530...)."""

    hard = True


def access_refused(text: str) -> ChannelError:
    return ChannelError(ReplyCode.ACCESS_REFUSED, text)


def not_found(text: str) -> ChannelError:
    return ChannelError(ReplyCode.NOT_FOUND, text)


def resource_locked(text: str) -> ChannelError:
    return ChannelError(ReplyCode.RESOURCE_LOCKED, text)


def precondition_failed(text: str) -> ChannelError:
    return ChannelError(ReplyCode.PRECONDITION_FAILED, text)


def not_allowed(text: str) -> AMQPConnectionError:
    return AMQPConnectionError(ReplyCode.NOT_ALLOWED, text)


def command_invalid(text: str) -> AMQPConnectionError:
    return AMQPConnectionError(ReplyCode.COMMAND_INVALID, text)


def frame_error(text: str) -> AMQPConnectionError:
    return AMQPConnectionError(ReplyCode.FRAME_ERROR, text)


def syntax_error(text: str) -> AMQPConnectionError:
    return AMQPConnectionError(ReplyCode.SYNTAX_ERROR, text)


def channel_error(text: str) -> AMQPConnectionError:
    return AMQPConnectionError(ReplyCode.CHANNEL_ERROR, text)


def unexpected_frame(text: str) -> AMQPConnectionError:
    return AMQPConnectionError(ReplyCode.UNEXPECTED_FRAME, text)


def not_implemented(text: str) -> AMQPConnectionError:
    return AMQPConnectionError(ReplyCode.NOT_IMPLEMENTED, text)


def internal_error(text: str) -> AMQPConnectionError:
    return AMQPConnectionError(ReplyCode.INTERNAL_ERROR, text)
