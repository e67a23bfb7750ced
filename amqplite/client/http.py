"""A small client for the management HTTP API (RabbitMQ's, which amqplite also serves).

Client layer, beside the AMQP client (:mod:`amqplite.client.connection`): both reach a
running broker, ours or RabbitMQ, from outside.  Stdlib ``urllib`` only.  The URL carries
the credentials (``http://guest:guest@127.0.0.1:15672``), as RabbitMQ's own tools accept;
they go out as HTTP Basic auth.  Every failure becomes an
:class:`~amqplite.client.errors.ApiError` with one line saying what happened (refused,
401, 404 with the broker's reason, ...).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

from amqplite.client.errors import ApiError

DEFAULT_API = "http://guest:guest@127.0.0.1:15672"


def quote(segment: str) -> str:
    """One path segment, percent-encoded (the default vhost "/" is ``%2F``)."""
    return urllib.parse.quote(segment, safe="")


def reason_text(reason: Any) -> str:
    """An error reason as text.  RabbitMQ's management API sometimes sends Erlang terms:
    a string shows as a list of character codes, an AMQP error as
    ``["amqp_error", "precondition_failed", [105, 110, ...], "none"]``."""
    if not isinstance(reason, list):
        return str(reason)
    if all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < 0x110000 for c in reason):
        return "".join(map(chr, reason))
    parts = [reason_text(part) for part in reason]
    if len(parts) >= 3 and parts[0] == "amqp_error":
        return f"{parts[1].upper()} - {parts[2]}"
    return " ".join(p for p in parts if p and p != "none")


# The singular of each API collection whose objects live in a vhost (/api/KIND/VHOST/NAME).
_IN_VHOST = {"queues": "queue", "exchanges": "exchange"}


def missing(path: str) -> str:
    """What a generic 404 for ``path`` means, in amqplite's words ("" if not known).

    RabbitMQ answers ``{"error": "Object Not Found", "reason": "Not Found"}`` whatever is
    missing; amqplite names it (``no queue 'x' in vhost '/'``), so the CLI says the same
    against either.  Only the object the path names is known: for a listing of a vhost
    (``/api/queues/VHOST``) that is the vhost."""
    parts = [urllib.parse.unquote(p) for p in path.partition("?")[0].split("/")]
    if len(parts) < 4 or parts[1] != "api":
        return ""
    kind, rest = parts[2], parts[3:]
    if kind in ("vhosts", "users") and len(rest) == 1:
        return f"no {kind[:-1]} '{rest[0]}'"
    if kind in _IN_VHOST:
        if len(rest) == 1:
            return f"no vhost '{rest[0]}'"
        return f"no {_IN_VHOST[kind]} '{rest[1]}' in vhost '{rest[0]}'"
    return ""


class ApiClient:
    """Calls ``/api/...`` on one broker; returns decoded JSON."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https"):
            raise ApiError(f"{url!r} is not an http:// URL for the management API")
        user = urllib.parse.unquote(parts.username) if parts.username else "guest"
        password = urllib.parse.unquote(parts.password) if parts.password else "guest"
        host = parts.hostname or "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        try:
            port = parts.port
        except ValueError as exc:
            raise ApiError(f"{url!r}: {exc}") from None
        netloc = host if port is None else f"{host}:{port}"
        self.base = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.user = user
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.timeout = timeout

    def __str__(self) -> str:
        return self.base

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """``path`` starts with ``/api/``; ``body`` is sent as JSON.  Returns the JSON reply."""
        raw = b"".join(self._exchange(method, path, body, lines=False))
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(f"{method} {path}: the reply is not JSON") from None

    def post_lines(self, path: str, body: Any) -> Iterator[Any]:
        """POST ``body`` and yield each line of an NDJSON reply as it arrives (progress)."""
        for line in self._exchange("POST", path, body, lines=True):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError:
                    raise ApiError(f"POST {path}: a reply line is not JSON") from None

    def _exchange(self, method: str, path: str, body: Any, *, lines: bool) -> Iterator[bytes]:
        """The reply body: whole, or (``lines``) line by line as it is received."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("authorization", self._auth)
        req.add_header("accept", "application/x-ndjson" if lines else "application/json")
        if data is not None:
            req.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                if not lines:
                    yield resp.read()
                    return
                yield from resp
        except urllib.error.HTTPError as exc:
            asked = self.base + path.partition("?")[0]
            raise ApiError(self._describe(exc, method, path), status=exc.code, url=asked) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            text = getattr(reason, "strerror", None) or str(reason)
            raise ApiError(f"cannot reach the HTTP API at {self.base}: {text}") from None
        except TimeoutError:
            raise ApiError(f"the HTTP API at {self.base} did not answer in time") from None
        except OSError as exc:
            raise ApiError(f"HTTP API at {self.base}: {exc}") from None

    def _describe(self, exc: urllib.error.HTTPError, method: str, path: str) -> str:
        reason = ""
        try:
            payload = json.loads(exc.read() or b"{}")
            if isinstance(payload, dict):
                reason = reason_text(payload.get("reason") or payload.get("error") or "")
        except (ValueError, OSError):
            pass
        if exc.code == 401:
            return f"401 unauthorised: the HTTP API at {self.base} refused user {self.user!r}" + (
                f" ({reason})" if reason and reason != "Login failed" else ""
            )
        what = f"{method} {path.partition('?')[0]}"
        if exc.code == 404:
            generic = reason in ("", "Not Found", "not_found")
            return f"404 not found: {(missing(path) or what) if generic else reason}"
        return f"{exc.code} {exc.reason}: {reason or what}"

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)
