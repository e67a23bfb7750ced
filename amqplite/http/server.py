"""The HTTP listener: h11 on trio, one task per connection, for the management API.

Layer: ``amqplite/http`` (I/O edge of the management API; the AMQP listener lives in
``amqplite/server``).  Theory of operation: each connection task owns one
``h11.Connection``; it reads one request at a time (bytes of pipelined requests stay in
h11's buffer until the previous response is done, so responses go out in order), hands
the complete :class:`~amqplite.http.request.Request` to the app, writes the
:class:`~amqplite.http.request.Response` and starts the next cycle while keep-alive lasts.

Limits (all per connection, see :class:`Limits`):

* headers over ``max_header`` bytes -> 431 (h11's hint), malformed requests -> 400, and the
  connection is closed after either;
* a body over ``max_body`` (16 MiB, announced by Content-Length or reached while reading
  a chunked body) -> 413 and close;
* a connection idle for ``idle_timeout`` between requests is closed quietly; a request
  that has started but is not complete after ``request_timeout`` (slowloris) gets 408;
  a response that cannot be written within ``write_timeout`` drops the connection.

An AMQP client pointed at this port by mistake (its first bytes are ``AMQP``, the protocol
header) is answered with the AMQP 0-9-1 protocol header and the connection is closed at
once, as a broker does for a version it does not speak: pika, aio-pika and our own client
then fail at once ("this is not an AMQP port") instead of waiting out their timeout for a
``connection.start`` that never comes.

No exception escapes a connection task: a bug in a handler is a 500, a broken socket ends
the connection, and neither reaches the listener's nursery (so never the AMQP side).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any

import attrs
import h11
import trio

from amqplite.http.request import HTTPError, Request, Response

if TYPE_CHECKING:
    from amqplite.broker import Broker
    from amqplite.http.auth import Login
    from amqplite.http.snapshot import Freshness

log = logging.getLogger(__name__)

App = Callable[[Request], Awaitable[Response]]
#: Turns an accepted socket into a TLS stream whose handshake is done (None: it failed,
#: the socket is closed and the failure logged).  Given by the composition root.
Secure = Callable[[trio.SocketStream], Awaitable[trio.abc.Stream | None]]

MAX_BODY = 16 * 1024 * 1024
MAX_HEADER = 64 * 1024
_RECEIVE_SIZE = 65536
_WRITE_COALESCE = 65536  # chunked listings are written in pieces of about this size
#: A whole body up to this size goes out in the same write as its head (a gzipped
#: ``/metrics`` of 10,000 queues is ~240 KB: copying it costs less than a second write).
_JOIN_MAX = 512 * 1024
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"  # the AMQP 0-9-1 protocol header


@attrs.frozen(slots=True)
class Limits:
    max_body: int = MAX_BODY
    max_header: int = MAX_HEADER
    idle_timeout: float = 60.0  # keep-alive: seconds to wait for the next request
    request_timeout: float = 30.0  # seconds from a request's first byte to its last
    write_timeout: float = 60.0  # seconds to write one response


class _NotHttp(Exception):
    """The peer opened with an AMQP protocol header: an AMQP client on the HTTP port."""


class _Reject(Exception):
    """The request cannot be served; answer ``status`` and close the connection."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def serve_http(
    broker: Broker,
    *,
    login: Login,
    host: str = "127.0.0.1",
    port: int = 15672,
    task_status: Any = trio.TASK_STATUS_IGNORED,
    require_auth_for_metrics: bool = False,
    limits: Limits = Limits(),
    on_change: Callable[[], None] | None = None,
    durable: Callable[[], Awaitable[None]] | None = None,
    cors_origins: Collection[str] = (),
    freshness: Freshness | None = None,
    tls: Secure | None = None,
) -> None:
    """Serve the management API, metrics and dashboard for ``broker`` until cancelled.

    ``task_status.started(bound_port)`` is called once listening (``port=0`` picks a free
    one).  The AMQP server's parts come in as callables (:mod:`amqplite.app` wires them;
    this package never imports the server): ``login`` checks a user's password as the
    AMQP listener does; ``durable`` is the server's durable wait (see
    :data:`amqplite.http.api.DurableWait`), required when the broker has a store;
    ``on_change`` is called after every request that may have changed the broker
    (anything but GET/HEAD) so deliveries an HTTP publish or replay caused are flushed to
    consumers at once.  ``freshness`` says how long listings and metrics are served from
    one snapshot (:mod:`amqplite.http.snapshot`).  ``tls`` (HTTPS) does the TLS handshake
    of each accepted socket: the AMQP server's, so both listeners share one context,
    deadline and log lines.
    """
    from amqplite.http.api import ManagementApp  # here: api imports the broker package
    from amqplite.http.snapshot import Freshness

    app = ManagementApp(
        broker,
        login=login,
        require_auth_for_metrics=require_auth_for_metrics,
        on_change=on_change,
        durable=durable,
        cors_origins=cors_origins,
        freshness=freshness or Freshness(),
    )
    await serve_app(app, host=host, port=port, task_status=task_status, limits=limits, tls=tls)


async def serve_app(
    app: App,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: Any = trio.TASK_STATUS_IGNORED,
    limits: Limits = Limits(),
    tls: Secure | None = None,
) -> None:
    """Serve any request -> response ``app`` over HTTP/1.1 (the management API is one);
    over HTTPS when ``tls`` wraps each accepted socket."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    log.info("HTTP%s management listening on %s:%d", "S" if tls else "", host, bound)

    async def handler(stream: trio.SocketStream) -> None:
        peer = _peer_host(stream)
        served: trio.abc.Stream = stream
        if tls is not None:
            secured = await tls(stream)
            if secured is None:  # closed and logged by ``tls``
                return
            served = secured
        await serve_connection(served, app, limits, peer=peer)

    task_status.started(bound)
    await trio.serve_listeners(handler, listeners)


async def serve_connection(
    stream: trio.abc.Stream, app: App, limits: Limits, *, peer: str | None = None
) -> None:
    """Serve requests on one connection until it closes; never raises.  ``peer``: the
    client's address when ``stream`` is not a socket (TLS)."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header)
    if peer is None:
        peer = _peer_host(stream)
    first = True
    try:
        while True:
            try:
                read = await _read_request(stream, conn, limits, peer, sniff=first)
            except _Reject as reject:
                await _send_error(stream, conn, reject.status, reject.reason, limits)
                return
            except _NotHttp:
                log.warning(
                    "an AMQP client (%s) connected to the HTTP port; answered with the AMQP "
                    "protocol header and closed",
                    peer or "?",
                )
                with trio.move_on_after(limits.write_timeout):
                    await stream.send_all(AMQP_HEADER)
                return
            first = False
            if read is None:
                return
            request, raw = read
            try:
                response = await app(request)
            except HTTPError as exc:
                response = exc.response()
            except Exception:
                # The path only: a query string is the client's and may hold anything.
                log.exception("HTTP handler failed for %s %s", request.method, request.raw_path)
                response = HTTPError(500, "internal_error", "internal server error").response()
            following = await _send_response(stream, conn, request, response, limits, raw)
            if following is None:
                return
            conn = following
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    except Exception:
        log.exception("HTTP connection failed")
    finally:
        await trio.aclose_forcefully(stream)


def _peer_host(stream: trio.abc.Stream) -> str:
    """The client's address, for the loopback-only rule; "" for non-socket streams."""
    sock = getattr(stream, "socket", None)
    if sock is None:
        return ""
    try:
        return str(sock.getpeername()[0])
    except OSError:
        return ""


async def _read_request(
    stream: trio.abc.Stream,
    conn: h11.Connection,
    limits: Limits,
    peer: str = "",
    *,
    sniff: bool = False,
) -> tuple[Request, bytes | None] | None:
    """The next complete request, or ``None`` on a clean close or keep-alive idle timeout;
    with it, its bytes when it was read by :func:`_simple_request` (h11 has not seen them).

    ``sniff`` (the connection's first request): raise :class:`_NotHttp` if the first bytes
    are an AMQP protocol header.
    """
    deadline = trio.current_time() + limits.idle_timeout
    started = False
    head: h11.Request | None = None
    body = bytearray()
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise _Reject(exc.error_status_hint, str(exc)) from None
        if event is h11.NEED_DATA:
            with trio.move_on_at(deadline):
                data = await stream.receive_some(_RECEIVE_SIZE)
                if sniff and not started and bytes(data[:4]) == b"AMQP":
                    raise _NotHttp
                if not started and conn.their_state is h11.IDLE and not conn.trailing_data[0]:
                    simple = _simple_request(data, peer)
                    if simple is not None:
                        return simple, bytes(data)
                if not started:
                    started = True
                    deadline = trio.current_time() + limits.request_timeout
                conn.receive_data(bytes(data))
                continue
            if started or head is not None:
                raise _Reject(408, "request timeout")
            return None
        if isinstance(event, h11.Request):
            head = event
            started = True
            for name, value in event.headers:
                if name == b"content-length" and int(value) > limits.max_body:
                    raise _Reject(413, "request body too large")
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > limits.max_body:
                raise _Reject(413, "request body too large")
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            headers: dict[str, str] = {}
            for name, value in head.headers:
                key = name.decode("latin-1")
                text = value.decode("latin-1")
                headers[key] = f"{headers[key]}, {text}" if key in headers else text
            request = Request(
                method=head.method.decode("ascii", "replace"),
                target=head.target.decode("latin-1"),
                headers=headers,
                body=bytes(body),
                peer=peer,
                http_version=head.http_version.decode("ascii"),
            )
            return request, None
        elif isinstance(event, h11.ConnectionClosed):
            return None


#: A whole GET or HEAD request head in origin form, as one buffer (field values are
#: checked for their characters only; Python strips their white space, so the pattern
#: never backtracks).  Anything else -- a body, pipelined or partial requests, absolute
#: targets, obsolete line folding -- is left to h11.
_SIMPLE = re.compile(
    rb"(GET|HEAD) (/[!-~]*) HTTP/1\.([01])\r\n"
    rb"((?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t -~\x80-\xff]*\r\n)*)\r\n"
)
_BODY_HEADERS = frozenset(("content-length", "transfer-encoding"))


def _simple_request(data: bytes | bytearray, peer: str) -> Request | None:
    """``data`` as a request if it is exactly one simple GET or HEAD (see :data:`_SIMPLE`),
    with a single Host header when it is HTTP/1.1, as h11 would read it; else None.

    Why not h11: management pollers send such a request dozens of times a second, and
    h11's general reader (state machine, per-header validation) was a third of the
    broker's CPU per request -- ~60 us warm, ~200 us as the broker runs them, one now and
    then between AMQP work.  This reads them with one regular-expression match and a
    split; every request it does not take goes through h11 as before."""
    match = _SIMPLE.fullmatch(data)
    if match is None:
        return None
    method, target, minor, block = match.groups()
    headers: dict[str, str] = {}
    for line in block.decode("latin-1").split("\r\n")[:-1]:
        name, _, value = line.partition(":")
        key = name.lower()
        value = value.strip(" \t")
        if key in headers:
            if key == "host" or key in _BODY_HEADERS:
                return None
            headers[key] = f"{headers[key]}, {value}"
        else:
            headers[key] = value
    if not _BODY_HEADERS.isdisjoint(headers) or (minor == b"1" and "host" not in headers):
        return None  # h11's to judge (a body, or the 400 for a missing Host)
    return Request(
        method=method.decode("ascii"),
        target=target.decode("latin-1"),
        headers=headers,
        peer=peer,
        http_version="1.1" if minor == b"1" else "1.0",
    )


async def _send_error(
    stream: trio.abc.Stream, conn: h11.Connection, status: int, reason: str, limits: Limits
) -> None:
    if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    error = {400: "bad_request", 408: "request_timeout", 413: "payload_too_large"}.get(
        status, "bad_request"
    )
    response = HTTPError(status, error, reason, (("connection", "close"),)).response()
    try:
        await _send_framed(stream, conn, "GET", response, limits)
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.LocalProtocolError):
        pass


async def _send_response(
    stream: trio.abc.Stream,
    conn: h11.Connection,
    request: Request,
    response: Response,
    limits: Limits,
    raw: bytes | None = None,
) -> h11.Connection | None:
    """Write ``response`` to ``request``; return the connection state to read the next
    request with, or ``None`` if the connection must be closed (the client or the response
    asked for it, or the write timed out).  ``raw``: the request's bytes when h11 has not
    read them (:func:`_simple_request`)."""
    body = response.body
    if not isinstance(body, bytes):
        # Streamed bodies (chunked or counted pieces): h11 frames them, once it has read
        # the request (its rules for the response follow from it).
        if raw is not None:
            conn.receive_data(raw)
            while not isinstance(event := conn.next_event(), h11.EndOfMessage):
                if not isinstance(event, h11.Request):  # it read this request before
                    raise RuntimeError(f"h11 read {event!r} from a simple request")
        if not await _send_framed(stream, conn, request.method, response, limits):
            return None
        if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            return None
        conn.start_next_cycle()
        return conn
    # A whole body: its head is written here, not by h11.  h11's response path validates
    # every header against its grammar and re-encodes it on each response (over 100 us of
    # a ~0.5 ms request; a dozen headers, most of them constants), and management pollers
    # ask dozens of times a second for bodies that are already made.  The request was
    # read to its end, so h11 has nothing left to check: the next request is read with a
    # fresh h11 state given the bytes already received after this one.
    keep = _keep_alive(request, response)
    head = _head(response, len(body), keep)
    with trio.move_on_after(limits.write_timeout):
        if not body or request.method == "HEAD":
            await stream.send_all(head)
        elif len(body) <= _JOIN_MAX:
            # One write (each send_all is a trip through the scheduler).
            await stream.send_all(head + body)
        else:  # large: sent as it is rather than copied behind its head
            await stream.send_all(head)
            await stream.send_all(body)
        if not keep:
            return None
        return _next_connection(conn, limits)
    return None


def _keep_alive(request: Request, response: Response) -> bool:
    """The connection stays open after this response (h11's rule: HTTP/1.1 and neither
    side said ``Connection: close``)."""
    if request.http_version != "1.1":
        return False
    if "close" in request.headers.get("connection", "").lower():
        return False
    return not any(k == "connection" and "close" in v.lower() for k, v in response.headers)


def _head(response: Response, length: int, keep: bool) -> bytes:
    """The status line and headers of a response with a whole body of ``length`` bytes
    (as h11 writes them: names as given, ``Content-Length`` except on a 304, whose length
    would have to be the 200's -- RFC 9110)."""
    status = response.status
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nserver: amqplite\r\n"]
    if response.content_type is not None:
        lines.append(f"content-type: {response.content_type}\r\n")
    count = len(lines) + 1 + len(response.headers)  # the status line and server are one
    lines.extend(f"{k}: {v}\r\n" for k, v in response.headers)
    if status != 304:
        lines.append(f"content-length: {length}\r\n")
        count += 1
    if not keep and not any(k == "connection" for k, _ in response.headers):
        lines.append("connection: close\r\n")
        count += 1
    lines.append("\r\n")
    text = "".join(lines)
    # Our own headers, but some values echo a request (a CORS origin, a Location): one
    # line break per line, or a value would smuggle in a header of its own.
    if text.count("\n") != count + 1 or text.count("\r") != count + 1 or "\0" in text:
        raise ValueError("a response header contains a line break")
    return text.encode("ascii")


def _next_connection(conn: h11.Connection, limits: Limits) -> h11.Connection:
    """A fresh h11 state for the next request, given what was received after this one
    (pipelined requests) and whether the client has closed its side."""
    data, closed = conn.trailing_data
    following = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header)
    if data:
        following.receive_data(data)
    if closed:
        following.receive_data(b"")
    return following


async def _send_framed(
    stream: trio.abc.Stream, conn: h11.Connection, method: str, response: Response, limits: Limits
) -> bool:
    """Write ``response`` through h11 (streamed bodies, and errors sent before a request
    was read to its end); ``False`` if the connection must be dropped (write timeout)."""
    headers: list[tuple[str, str]] = [("server", "amqplite")]
    if response.content_type is not None:
        headers.append(("content-type", response.content_type))
    headers.extend(response.headers)
    body = response.body
    if isinstance(body, bytes) and response.status != 304:
        headers.append(("content-length", str(len(body))))
    reason = _REASONS.get(response.status, "")
    with trio.move_on_after(limits.write_timeout) as scope:
        head = conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason))
        if isinstance(body, bytes):
            data = conn.send(h11.Data(data=body)) if body and method != "HEAD" else b""
            end = conn.send(h11.EndOfMessage())
            await stream.send_all(head + data + end)
            return True
        await stream.send_all(head)
        if isinstance(body, AsyncGenerator):
            try:
                if method != "HEAD":
                    async for chunk in body:
                        await stream.send_all(conn.send(h11.Data(data=chunk)))
                        # Produced while written: the write timeout counts per chunk.
                        scope.deadline = trio.current_time() + limits.write_timeout
            finally:
                with trio.CancelScope(shield=True):
                    await body.aclose()  # its cleanup runs even if the client went away
        elif method != "HEAD":  # an iterable of chunks
            pending: list[bytes] = []
            size = 0
            for chunk in body:
                pending.append(chunk)
                size += len(chunk)
                if size >= _WRITE_COALESCE:
                    await stream.send_all(conn.send(h11.Data(data=b"".join(pending))))
                    pending.clear()
                    size = 0
            if pending:
                await stream.send_all(conn.send(h11.Data(data=b"".join(pending))))
        end = conn.send(h11.EndOfMessage())
        if end:  # empty with a Content-Length
            await stream.send_all(end)
        return True
    return False


_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}
