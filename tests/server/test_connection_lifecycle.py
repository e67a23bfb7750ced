"""Heartbeats, graceful shutdown and bounded output buffers, over real sockets."""

from __future__ import annotations

import socket
import struct

import pytest
import trio
import trio.testing
from rawamqp import RawClient, assert_alive, publish_frames

from amqplite.app import RunningBroker, build_broker
from amqplite.errors import ReplyCode
from amqplite.protocol import methods as m
from amqplite.protocol.frames import PROTOCOL_HEADER
from amqplite.server.listener import AmqpServer
from amqplite.settings import ServerSettings


async def test_silent_peer_is_dropped_after_two_heartbeat_intervals(
    mock_clock: trio.testing.MockClock,
) -> None:
    broker = build_broker(None)
    server = AmqpServer(broker, ServerSettings(port=0, heartbeat=5))
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.run)
        client = await RawClient.connect(port)
        tune = await client.handshake(heartbeat=5)
        assert tune.heartbeat == 5
        start = trio.current_time()
        # From here on virtual time runs whenever everything is idle.
        mock_clock.autojump_threshold = 0.01
        heartbeats = 0
        with trio.fail_after(60):
            while True:
                try:
                    ftype, _, _ = await client.read_frame()
                except EOFError:
                    break
                heartbeats += ftype == 8
        elapsed = trio.current_time() - start
        assert 10 <= elapsed < 11
        # Sent at half the interval while the client said nothing.
        assert heartbeats >= 3
        await server.shutdown()


async def test_talking_peer_is_not_dropped(mock_clock: trio.testing.MockClock) -> None:
    broker = build_broker(None)
    server = AmqpServer(broker, ServerSettings(port=0, heartbeat=2))
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.run)
        client = await RawClient.connect(port)
        await client.handshake(heartbeat=2)
        await client.open_channel(1)
        mock_clock.autojump_threshold = 0.01
        with trio.fail_after(60):
            for _ in range(10):
                await trio.sleep(1.5)
                await client.send(b"\x08\x00\x00\x00\x00\x00\x00\xce")
            await assert_alive(client)
        await server.shutdown()


async def test_shutdown_closes_connections_with_320_and_stops_accepting() -> None:
    server = AmqpServer(build_broker(None), ServerSettings(port=0))
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(server.run)
            client = await RawClient.connect(port)
            await client.handshake()
            nursery.start_soon(server.shutdown)
            close = await client.expect(m.ConnectionClose)
            assert close.reply_code == ReplyCode.CONNECTION_FORCED
            assert close.reply_text == (
                "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"
            )
            with pytest.raises(OSError):
                await trio.open_tcp_stream("127.0.0.1", port)
            await client.send_method(0, m.ConnectionCloseOk())
            assert await client.at_eof()


async def test_slow_consumer_output_is_bounded(running: RunningBroker) -> None:
    """A no-ack consumer that never reads holds at most a high-water mark of output:
    the rest stays in the queue instead of piling up in broker memory."""
    high_water = running.server.settings.high_water
    with trio.fail_after(10):
        consumer = await RawClient.connect(running.port)
        await consumer.handshake()
        await consumer.open_channel(1)
        await consumer.declare_queue(1, "slow")
        await consumer.send_method(1, m.BasicConsume(0, "slow", "c", False, True, False, False, {}))
        await consumer.expect(m.BasicConsumeOk)
        publisher = await RawClient.connect(running.port)
        await publisher.handshake()
        await publisher.open_channel(1)
        body = b"x" * 16384
        batch = publish_frames(1, "", "slow", body) * 64
        total = 0
        while total < 4 * (high_water + (4 << 20)) // len(body):
            await publisher.send(batch)
            total += 64
        await assert_alive(publisher)
        queue = running.broker.get_vhost("/").queues["slow"]
        pending = [c.outbox.pending for c in running.server.connections]
        # One receive buffer's worth of deliveries can land past the mark, no more.
        limit = high_water + running.server.settings.receive_size + 2 * len(body)
        assert max(pending) <= limit
        assert queue.message_count > 0
        # Reading resumes the flow: every message arrives.
        received = 0
        while received < total:
            ftype, _, _ = await consumer.read_frame()
            received += ftype == 3
        assert queue.message_count == 0


async def test_prefetch_limits_unacked_deliveries(running: RunningBroker) -> None:
    with trio.fail_after(5):
        client = await RawClient.connect(running.port)
        await client.handshake()
        await client.open_channel(1)
        await client.declare_queue(1, "pf")
        await client.send(publish_frames(1, "", "pf", b"m") * 20)
        await client.send_method(1, m.BasicQos(0, 3, False))
        await client.expect(m.BasicQosOk)
        await client.send_method(1, m.BasicConsume(0, "pf", "", False, False, False, False, {}))
        ok = await client.expect(m.BasicConsumeOk)
        assert ok.consumer_tag.startswith("amq.ctag-")
        tags = [(await client.expect(m.BasicDeliver)).delivery_tag for _ in range(3)]
        assert tags == [1, 2, 3]
        queue = running.broker.get_vhost("/").queues["pf"]
        assert queue.unacked_count == 3
        await client.send_method(1, m.BasicAck(3, True))
        tags = [(await client.expect(m.BasicDeliver)).delivery_tag for _ in range(3)]
        assert tags == [4, 5, 6]


async def test_peer_reset_is_not_logged_as_an_error(
    running: RunningBroker, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(5):
        client = await RawClient.connect(running.port)
        await client.handshake()
        await client.open_channel(1)
        await client.declare_queue(1, "reset")
        await client.send_method(1, m.BasicConsume(0, "reset", "c", False, True, False, False, {}))
        await client.expect(m.BasicConsumeOk)
        (consumer_connection,) = running.server.connections
        # Reset the socket (SO_LINGER 0) while deliveries are flowing to it.
        client.stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        publisher = await RawClient.connect(running.port)
        await publisher.handshake()
        await publisher.open_channel(1)
        await publisher.send(publish_frames(1, "", "reset", b"x" * 1000) * 200)
        await client.aclose()
        await publisher.send(publish_frames(1, "", "reset", b"x" * 1000) * 200)
        await assert_alive(publisher)
        await consumer_connection.finished.wait()
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_shutdown_hangs_up_on_clients_that_never_logged_in_at_once() -> None:
    server = AmqpServer(build_broker(None), ServerSettings(port=0, close_timeout=3))
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(server.run)
            silent = await RawClient.connect(port)
            half = await RawClient.connect(port)
            await half.send(PROTOCOL_HEADER)
            await half.expect(m.ConnectionStart)
            # Both are accepted; neither is owed a connection.close.
            with trio.fail_after(1):
                await server.shutdown()
            assert await silent.at_eof()
            assert await half.at_eof()
