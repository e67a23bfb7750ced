"""HTTP request and response values passed between the h11 server and the API handlers.

Layer: ``amqplite/http`` (management API).  Pure values, no I/O: the server in
:mod:`amqplite.http.server` builds a :class:`Request` from h11 events and writes the
:class:`Response` a handler returns; handlers never see sockets.  A handler signals an
HTTP error by raising :class:`HTTPError`, which the app turns into RabbitMQ's JSON error
shape (``{"error": ..., "reason": ...}``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote

import attrs

JSON_TYPE = "application/json"


@attrs.frozen(slots=True)
class Request:
    """One complete HTTP request (the body is read fully, within the server's size limit)."""

    method: str
    target: str  # the raw request target, still percent-encoded
    headers: dict[str, str]  # names lower-cased; repeated headers joined with ", "
    body: bytes = b""
    peer: str = (
        ""  # the client's IP address; "" when the transport has none (tests' memory streams)
    )
    http_version: str = "1.1"  # "1.0" or "1.1": a 1.0 connection closes after the response

    @property
    def raw_path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def segments(self) -> tuple[str, ...]:
        """Path segments, each percent-decoded separately so ``%2F`` stays inside its segment."""
        parts = self.raw_path.split("/")
        return tuple(unquote(p) for p in parts if p != "")

    @property
    def query(self) -> list[tuple[str, str]]:
        if "?" not in self.target:
            return []
        return parse_qsl(self.target.split("?", 1)[1], keep_blank_values=True)

    def json(self) -> Any:
        """The body parsed as JSON; an empty body is ``{}``; anything else invalid is a 400."""
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPError(400, "bad_request", f"invalid JSON body: {exc}") from None

    def json_object(self) -> dict[str, Any]:
        value = self.json()
        if not isinstance(value, dict):
            raise HTTPError(400, "bad_request", "the body must be a JSON object")
        return value


@attrs.frozen(slots=True)
class Response:
    """A response: ``body`` is bytes (sent with Content-Length), an iterable of chunks
    (sent chunked, rendered lazily so a long listing never sits in memory at once) or an
    async generator of chunks (sent as they come: progress of a long operation)."""

    status: int
    body: bytes | Iterable[bytes] | AsyncGenerator[bytes, None] = b""
    content_type: str | None = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()


class HTTPError(Exception):
    """Raised by handlers; rendered as ``{"error": error, "reason": reason}`` with ``status``."""

    def __init__(
        self, status: int, error: str, reason: str, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(f"{status} {error}: {reason}")
        self.status = status
        self.error = error
        self.reason = reason
        self.headers = headers

    def response(self) -> Response:
        body = json.dumps({"error": self.error, "reason": self.reason}).encode()
        return Response(self.status, body, JSON_TYPE, self.headers)


def not_found() -> HTTPError:
    return HTTPError(404, "Object Not Found", "Not Found")


def bad_request(reason: str) -> HTTPError:
    return HTTPError(400, "bad_request", reason)
