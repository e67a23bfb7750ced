"""The h11 listener on its own: keep-alive, pipelining, limits, timeouts, malformed input."""

from __future__ import annotations

import http.client
import json

import trio

from amqplite.http.request import HTTPError, Request, Response
from amqplite.http.server import Limits, serve_app


async def echo_app(request: Request) -> Response:
    if request.target == "/boom":
        raise RuntimeError("handler bug")
    if request.target == "/missing":
        raise HTTPError(404, "Object Not Found", "Not Found")
    if request.target == "/stream":
        return Response(200, (b"%d\n" % i for i in range(20000)), "text/plain")
    if request.target.startswith("/headers"):
        seen = {"method": request.method, "version": request.http_version, **request.headers}
        return Response(200, json.dumps(seen).encode())
    if request.target == "/smuggle":
        return Response(200, b"{}", headers=(("location", "/a\r\nx-injected: 1"),))
    body = json.dumps(
        {"method": request.method, "target": request.target, "size": len(request.body)}
    )
    return Response(200, body.encode())


async def start(nursery: trio.Nursery, limits: Limits | None = None) -> int:
    limits = limits or Limits()
    port: int = await nursery.start(
        lambda task_status: serve_app(echo_app, port=0, limits=limits, task_status=task_status)
    )
    return port


async def raw_exchange(port: int, data: bytes, *, until_close: bool = True) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        chunks = []
        while True:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


async def exchange_once(data: bytes, limits: Limits | None = None) -> bytes:
    """Start a server, send ``data`` on one connection, return everything it answers
    until it closes, stop the server."""
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await start(nursery, limits)
            reply = await raw_exchange(port, data)
            nursery.cancel_scope.cancel()
    return reply


async def test_pipelined_requests_are_answered_in_order_on_one_connection() -> None:
    data = (
        b"".join(b"GET /r%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5))
        + b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    reply = await exchange_once(data)
    assert reply.count(b"HTTP/1.1 200 OK") == 6
    positions = [reply.index(b'"/r%d"' % i) for i in range(5)] + [reply.index(b'"/last"')]
    assert positions == sorted(positions)


async def test_keep_alive_serves_many_requests_on_one_connection() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await start(nursery)

            def client() -> list[int]:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                statuses = []
                for i in range(3):
                    conn.request("POST", f"/k{i}", body=b"x" * 1000)
                    resp = conn.getresponse()
                    assert json.loads(resp.read())["size"] == 1000
                    statuses.append(resp.status)
                sock_id = id(conn.sock)
                conn.close()
                assert sock_id
                return statuses

            assert await trio.to_thread.run_sync(client) == [200, 200, 200]
            nursery.cancel_scope.cancel()


async def test_a_client_that_asks_for_close_gets_connection_close_and_the_socket_closes() -> None:
    # Whole bodies are written without h11 (amqplite.http.server._head); h11's keep-alive
    # rule still holds: HTTP/1.0, or Connection: close, ends the connection after the reply.
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await start(nursery)
            for request in (
                b"GET /a HTTP/1.0\r\n\r\n",
                b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
            ):
                reply = await raw_exchange(port, request)  # returns once the server closes
                assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
                head, _, body = reply.partition(b"\r\n\r\n")
                assert b"\r\nconnection: close" in head
                assert b"\r\ncontent-length: %d" % len(body) in head
                assert json.loads(body)["target"] == "/a"  # /b was never answered
            nursery.cancel_scope.cancel()


async def test_head_gets_the_length_of_the_body_without_it() -> None:
    reply = await exchange_once(
        b"HEAD /abc HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    head, _, rest = reply.partition(b"\r\n\r\n")
    get_head, _, body = rest.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and get_head.startswith(b"HTTP/1.1 200 OK")
    # echo_app's body for the HEAD (what a GET would have got), not sent
    headed = json.dumps({"method": "HEAD", "target": "/abc", "size": 0})
    assert b"content-length: %d" % len(headed) in head
    assert json.loads(body) == {"method": "GET", "target": "/abc", "size": 0}


async def test_a_header_value_with_a_line_break_is_never_sent() -> None:
    reply = await exchange_once(b"GET /smuggle HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"x-injected" not in reply


async def test_a_simple_get_is_read_as_h11_reads_it() -> None:
    """A lone GET or HEAD is read without h11 (amqplite.http.server._simple_request);
    sent pipelined behind another request, the same bytes go through h11: both readings
    must give the handler the same request."""
    requests = [
        b"GET /headers?x=%2F HTTP/1.1\r\nHost: h\r\nAccept: a\r\naccept:  b \r\n"
        b"X-Empty:\r\nAuthorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\n\r\n",
        b"HEAD /headers HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /headers HTTP/1.0\r\nUser-Agent: a\tb\r\n\r\n",
    ]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await start(nursery)
            for request in requests:
                close = request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
                alone = await raw_exchange(port, close)
                behind = await raw_exchange(port, b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n" + close)
                assert alone.count(b"HTTP/1.1 200 OK") == 1
                assert behind.count(b"HTTP/1.1 200 OK") == 2
                assert behind.endswith(alone)
            nursery.cancel_scope.cancel()


async def test_what_the_simple_reader_does_not_take_goes_to_h11() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await start(nursery)
            # HTTP/1.1 without Host: h11's 400.
            reply = await raw_exchange(port, b"GET /a HTTP/1.1\r\n\r\n")
            assert reply.startswith(b"HTTP/1.1 400 ")
            # Two Host headers: h11's 400 too.
            reply = await raw_exchange(port, b"GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
            assert reply.startswith(b"HTTP/1.1 400 ")
            # A GET with a body is read whole, by h11.
            reply = await raw_exchange(
                port,
                b"GET /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
            )
            assert json.loads(reply.partition(b"\r\n\r\n")[2])["size"] == 3
            nursery.cancel_scope.cancel()


async def test_a_streamed_reply_to_a_simple_request_that_asks_for_close_ends_and_closes() -> None:
    reply = await exchange_once(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body.endswith(b"19999\n\r\n0\r\n\r\n")


async def test_malformed_request_line_gets_400_and_close() -> None:
    reply = await exchange_once(b"THIS IS NOT HTTP\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"bad_request" in reply


async def test_oversized_body_by_content_length_gets_413_without_reading_it() -> None:
    reply = await exchange_once(
        b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"a" * 100,
        Limits(max_body=1024),
    )
    assert reply.startswith(b"HTTP/1.1 413 ")


async def test_oversized_chunked_body_gets_413() -> None:
    chunk = b"400\r\n" + b"a" * 1024 + b"\r\n"
    reply = await exchange_once(
        b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunk * 3
        + b"0\r\n\r\n",
        Limits(max_body=1024),
    )
    assert reply.startswith(b"HTTP/1.1 413 ")


async def test_huge_header_block_is_refused() -> None:
    # Headers that never end: h11 gives up once its buffer passes the limit.
    reply = await exchange_once(
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10000, Limits(max_header=4096)
    )
    assert reply.startswith(b"HTTP/1.1 431 ")


async def test_slow_incomplete_request_gets_408_and_is_dropped() -> None:
    reply = await exchange_once(b"GET / HTTP/1.1\r\nHost: x\r\n", Limits(request_timeout=0.2))
    assert reply.startswith(b"HTTP/1.1 408 ")


async def test_idle_keep_alive_connection_is_closed_quietly() -> None:
    reply = await exchange_once(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", Limits(idle_timeout=0.2))
    assert reply.count(b"HTTP/1.1") == 1 and reply.startswith(b"HTTP/1.1 200 ")


async def test_handler_exception_is_a_500_and_the_connection_keeps_working() -> None:
    reply = await exchange_once(
        b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 500 ")
    assert b"HTTP/1.1 404 " in reply and b'"Object Not Found"' in reply
    assert reply.rstrip().endswith(b'"/ok","size":0}') or b'"/ok"' in reply


async def test_long_response_is_streamed_chunked() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await start(nursery)

            def client() -> tuple[str | None, bytes]:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/stream")
                resp = conn.getresponse()
                body = resp.read()
                conn.close()
                return resp.getheader("transfer-encoding"), body

            encoding, body = await trio.to_thread.run_sync(client)
            assert encoding == "chunked"
            assert body.splitlines() == [b"%d" % i for i in range(20000)]
            nursery.cancel_scope.cancel()


async def test_an_amqp_client_gets_the_amqp_header_back_and_the_connection_closes() -> None:
    # An AMQP client pointed at the HTTP port must fail at once, not wait out a timeout.
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            port = await start(nursery)
            reply = await raw_exchange(port, b"AMQP\x00\x00\x09\x01")
            assert reply == b"AMQP\x00\x00\x09\x01"
            # The port still serves HTTP to the next client.
            reply = await raw_exchange(
                port, b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            assert reply.startswith(b"HTTP/1.1 200 OK")
            nursery.cancel_scope.cancel()


async def test_pika_pointed_at_the_http_port_fails_at_once() -> None:
    import pika
    import pika.exceptions

    def connect(port: int) -> BaseException | None:
        params = pika.ConnectionParameters(
            "127.0.0.1", port, socket_timeout=30, blocked_connection_timeout=30
        )
        try:
            pika.BlockingConnection(params).close()
        except pika.exceptions.AMQPError as exc:
            return exc
        return None

    # Without the answer pika would wait for connection.start until its 30 s timeout.
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            port = await start(nursery)
            error = await trio.to_thread.run_sync(connect, port)
            assert isinstance(error, pika.exceptions.AMQPConnectionError)
            nursery.cancel_scope.cancel()
