"""Errors raised by the blocking AMQP client (client layer, used by the CLI and topology tools).

The broker's own words are kept: a :class:`ChannelClosed` / :class:`ConnectionClosed`
carries the reply code and the reply text exactly as the broker sent them (RabbitMQ's
``"NOT_FOUND - no queue 'q' in vhost '/'"``), so callers can show them unchanged or test
the code (404 missing, 406 inequivalent, 405 locked, 403 refused).  Anything that goes
wrong below AMQP (refused connection, timeout, a peer that is not an AMQP 0-9-1 broker)
is a plain :class:`ClientError`.  The management HTTP client (:mod:`amqplite.client.http`)
raises :class:`ApiError`, whose text names the API it asked.
"""

from __future__ import annotations


class ClientError(Exception):
    """The client could not talk AMQP to the broker (network, timeout, protocol)."""


class ApiError(ClientError):
    """The management HTTP API could not be reached or refused a request (one line for the user).

    ``status`` is the HTTP status (``None`` when no reply came); ``url`` is what was asked
    (no credentials, no query), appended to the text so the user sees which API answered.
    """

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None):
        self.status = status
        self.url = url
        super().__init__(message if url is None else f"{message} (asked {url})")


class BrokerClosed(ClientError):
    """The broker closed a channel or the connection with a reply code and text."""

    def __init__(self, reply_code: int, reply_text: str, class_id: int = 0, method_id: int = 0):
        self.reply_code = reply_code
        self.reply_text = reply_text
        self.class_id = class_id
        self.method_id = method_id
        super().__init__(f"{reply_code} {reply_text}")


class ChannelClosed(BrokerClosed):
    """The broker closed the channel (a soft error: 403, 404, 405, 406...)."""


class ConnectionClosed(BrokerClosed):
    """The broker closed the connection (a hard error, or a refused login / vhost)."""


class DeadlineReached(Exception):
    """Internal: a wait with a deadline ran out (an answer, not an error, for the caller)."""
