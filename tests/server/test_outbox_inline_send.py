"""Outbox.send_now: output goes out synchronously when the socket takes it, and whatever it
does not take stays buffered for the writer task, in order."""

from __future__ import annotations

import socket as stdlib_socket

import trio
import trio.testing

from amqplite.server.outbox import FlushQueue, Outbox


async def _pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    a, b = stdlib_socket.socketpair()
    return trio.SocketStream(trio.socket.from_stdlib_socket(a)), trio.SocketStream(
        trio.socket.from_stdlib_socket(b)
    )


async def _read_exactly(stream: trio.SocketStream, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = await stream.receive_some(n - len(out))
        assert chunk
        out += chunk
    return bytes(out)


async def test_send_now_writes_the_whole_buffer_without_the_writer_task() -> None:
    left, right = await _pair()
    outbox = Outbox(left, high_water=1 << 20, low_water=1 << 19)
    outbox.buffer += b"hello "
    outbox.buffer += b"world"
    assert outbox.send_now() is True
    assert not outbox.buffer
    with trio.fail_after(5):
        assert await _read_exactly(right, 11) == b"hello world"
    await left.aclose()
    await right.aclose()


async def test_send_now_leaves_what_the_socket_refuses_for_the_writer_in_order() -> None:
    left, right = await _pair()
    left.socket.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_SNDBUF, 4096)
    outbox = Outbox(left, high_water=1 << 30, low_water=1 << 29)
    payload = bytes(range(256)) * 8192  # 2 MiB: more than the socket buffers hold
    outbox.buffer += payload
    assert outbox.send_now() is False
    assert 0 < len(outbox.buffer) < len(payload)
    received = bytearray()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.writer)
        outbox.wake()
        with trio.fail_after(10):
            received += await _read_exactly(right, len(payload))
        outbox.close()
    assert bytes(received) == payload
    await left.aclose()
    await right.aclose()


async def test_wake_dirty_flushes_marked_outboxes_inline_except_the_skipped_one() -> None:
    left, right = await _pair()
    left2, right2 = await _pair()
    flushes = FlushQueue()
    first = Outbox(left, high_water=1 << 20, low_water=1 << 19)
    second = Outbox(left2, high_water=1 << 20, low_water=1 << 19)
    first.buffer += b"delivery"
    second.buffer += b"own reply"
    flushes.mark(first)
    flushes.mark(second)
    flushes.wake_dirty(skip=second)
    assert not first.buffer and not first.dirty
    assert second.buffer == b"own reply"  # its reader flushes it itself
    with trio.fail_after(5):
        assert await _read_exactly(right, 8) == b"delivery"
    for s in (left, right, left2, right2):
        await s.aclose()


async def test_send_now_without_a_socket_leaves_the_output_to_the_writer() -> None:
    send, receive = trio.testing.memory_stream_pair()
    outbox = Outbox(send, high_water=1 << 20, low_water=1 << 19)
    outbox.buffer += b"data"
    assert outbox.send_now() is False
    assert outbox.buffer == b"data"
    await outbox.send_once()
    with trio.fail_after(5):
        assert await receive.receive_some(100) == b"data"


async def test_large_pieces_go_out_from_their_own_buffers_in_order() -> None:
    left, right = await _pair()
    outbox = Outbox(left, high_water=1 << 30, low_water=1 << 29)
    body = bytearray(bytes(range(256)) * 1024)  # 256 KiB: spliced, not copied
    view = memoryview(body)
    outbox.buffer += b"<ok>"
    mark = len(outbox.buffer)
    outbox.write([b"[head]", view[: 1 << 17], b"|", view[1 << 17 :], b"[end]"])
    assert len(outbox.buffer) == 4 + 6 + 1 + 5  # the body is not in the buffer...
    assert outbox.pending == 4 + 6 + 1 + 5 + len(body)  # ...but counts as pending
    outbox.insert(mark, b"<reply>")  # e.g. an -ok that must precede the delivery
    expected = b"<ok><reply>[head]" + body[: 1 << 17] + b"|" + body[1 << 17 :] + b"[end]"
    received = bytearray()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.writer)
        if not outbox.send_now():
            outbox.wake()
        with trio.fail_after(10):
            received += await _read_exactly(right, len(expected))
        outbox.close()
    assert bytes(received) == expected
    assert outbox.pending == 0
    await left.aclose()
    await right.aclose()


async def test_a_vectored_send_the_socket_takes_in_part_finishes_in_order() -> None:
    left, right = await _pair()
    left.socket.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_SNDBUF, 4096)
    outbox = Outbox(left, high_water=1 << 30, low_water=1 << 29)
    body = bytes(range(256)) * 8192  # 2 MiB: more than the socket buffers hold
    outbox.write([b"a", body, b"b"])
    assert outbox.send_now() is False  # the kernel took only part
    outbox.write([b"c", body, b"d"])  # more output queued behind what is left
    expected = b"a" + body + b"b" + b"c" + body + b"d"
    received = bytearray()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.writer)
        outbox.wake()
        with trio.fail_after(20):
            received += await _read_exactly(right, len(expected))
        outbox.close()
    assert bytes(received) == expected
    assert outbox.pending == 0
    await left.aclose()
    await right.aclose()
