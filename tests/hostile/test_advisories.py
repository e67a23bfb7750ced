"""The classes of hostile input RabbitMQ's security advisories name, each closed with
RabbitMQ's code in bounded time and memory, while a witness connection keeps working.

(Topic bindings such as ``#.#.#.#`` are in test_hostile_routing.py; direct reply-to
misuse codes are conformance scenarios, tests/conformance/test_direct_reply_to_*.py.)
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from broker_process import BrokerProcess, broker_process
from fuzzing import nested_table, nested_table_frame
from rawamqp import (
    RawClient,
    assert_alive,
    body_frame,
    header_frame,
    method_frame,
    publish_frames,
)

from amqplite.app import serve
from amqplite.broker.exchanges.topic import TopicRouter
from amqplite.errors import ReplyCode
from amqplite.message import BasicProperties
from amqplite.protocol import connection as codec
from amqplite.protocol import decode_properties, encode_properties
from amqplite.protocol import methods as m
from amqplite.protocol.frames import FRAME_HEAD, PROTOCOL_HEADER, encode_frame

#: Resident memory a single hostile connection may add to the broker.
RSS_BOUND_KIB = 16 << 10
_PUBLISH = m.BasicPublish(0, "", "nowhere", False, False)


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[BrokerProcess]:
    with broker_process(cwd=tmp_path) as process:
        yield process


async def _closed_with(client: RawClient) -> m.ConnectionClose:
    return await client.expect(m.ConnectionClose)


async def _opened(port: int) -> RawClient:
    client = await RawClient.connect(port)
    await client.handshake()
    await client.open_channel(1)
    return client


async def _after_header(port: int) -> RawClient:
    client = await RawClient.connect(port)
    await client.send(PROTOCOL_HEADER)
    await client.expect(m.ConnectionStart)
    return client


async def _check_bounded(broker: BrokerProcess, witness: RawClient, before_kib: int) -> None:
    await assert_alive(witness)
    grown = broker.rss_kib("VmHWM") - before_kib
    assert grown < RSS_BOUND_KIB, f"peak RSS grew by {grown} KiB"


async def test_body_frames_past_the_declared_size_are_501(broker: BrokerProcess) -> None:
    with trio.fail_after(10):
        witness = await _opened(broker.port)
        before = broker.rss_kib("VmHWM")
        client = await _opened(broker.port)
        await client.send(
            method_frame(1, _PUBLISH)
            + header_frame(1, 10)
            + body_frame(1, b"x" * 6)
            + body_frame(1, b"x" * 6)
        )
        close = await _closed_with(client)
        assert close.reply_code == ReplyCode.FRAME_ERROR
        assert "content body frame exceeds remaining content size" in close.reply_text
        await _check_bounded(broker, witness, before)


async def test_a_declared_body_size_past_the_hard_limit_is_501_before_any_body(
    broker: BrokerProcess,
) -> None:
    with trio.fail_after(10):
        witness = await _opened(broker.port)
        before = broker.rss_kib("VmHWM")
        client = await _opened(broker.port)
        await client.send(method_frame(1, _PUBLISH) + header_frame(1, 2**63))
        close = await _closed_with(client)
        assert close.reply_code == ReplyCode.FRAME_ERROR
        assert "exceeds maximum allowed size" in close.reply_text
        await _check_bounded(broker, witness, before)


@pytest.mark.parametrize("before_auth", [True, False], ids=["in-start-ok", "in-queue-declare"])
async def test_tables_nested_deep_enough_to_exhaust_the_stack_are_501(
    broker: BrokerProcess, before_auth: bool
) -> None:
    # ~18,000 levels fit in one frame of 131072 octets; CPython's stack gives out at ~1,000.
    depth = 18_000
    with trio.fail_after(10):
        witness = await _opened(broker.port)
        before = broker.rss_kib("VmHWM")
        if before_auth:
            client = await _after_header(broker.port)
            payload = struct.pack(">HH", 10, 11) + nested_table(depth) + b"\x05PLAIN"
            payload += b"\x00\x00\x00\x00\x00"  # an empty response and locale"
            await client.send(encode_frame(1, 0, payload))
        else:
            client = await _opened(broker.port)
            await client.send(nested_table_frame(depth))
        close = await _closed_with(client)
        assert close.reply_code == ReplyCode.FRAME_ERROR, close
        assert "nesting deeper than 64 levels" in close.reply_text
        await _check_bounded(broker, witness, before)


@pytest.mark.parametrize("length", [0x7FFFFFFF, 0xFFFFFFFF])
async def test_a_long_string_length_meant_to_force_a_huge_allocation_is_501(
    broker: BrokerProcess, length: int
) -> None:
    with trio.fail_after(10):
        witness = await _opened(broker.port)
        before = broker.rss_kib("VmHWM")
        client = await _after_header(broker.port)
        # connection.start-ok: an empty table, mechanism PLAIN, then a response whose
        # length claims gigabytes in a frame of a few octets.
        payload = (
            struct.pack(">HH", 10, 11)
            + b"\x00\x00\x00\x00\x05PLAIN"
            + struct.pack(">I", length)
            + b"\x00guest\x00guest"
        )
        await client.send(encode_frame(1, 0, payload))
        close = await _closed_with(client)
        assert close.reply_code == ReplyCode.FRAME_ERROR
        await _check_bounded(broker, witness, before)


@pytest.mark.parametrize("stage", ["before-tune", "before-auth"])
async def test_frames_over_frame_max_before_the_handshake_are_refused_unread(
    broker: BrokerProcess, stage: str
) -> None:
    with trio.fail_after(15):
        witness = await _opened(broker.port)
        before = broker.rss_kib("VmHWM")
        client = await _after_header(broker.port)
        # Before tune-ok: the server's frame_max + 1; before login: 2 GiB.
        size = 131_073 if stage == "before-tune" else 0x7FFFFFF0
        await client.send(FRAME_HEAD.pack(1, 0, size))
        # Keep sending a few MB of the claimed frame: none of it may be buffered.
        with trio.move_on_after(2):
            try:
                for _ in range(64):
                    await client.send(b"\x00" * 65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        close = await _closed_with(client)
        assert close.reply_code == ReplyCode.FRAME_ERROR
        assert "frame_too_large" in close.reply_text
        await _check_bounded(broker, witness, before)


async def test_caches_keyed_by_client_strings_stay_bounded() -> None:
    """Distinct routing keys, publish frames and property blocks by the ten thousand: the
    topic route cache and the codec's memo tables stay within their bounds."""
    flood = 12_000
    async with serve(shutdown_timeout=0.2) as running:
        with trio.fail_after(60):
            client = await _opened(running.port)
            await client.send_method(1, m.ExchangeDeclare(0, "t", "topic"))
            await client.expect(m.ExchangeDeclareOk)
            await client.declare_queue(1, "sink", exclusive=True, arguments={"x-max-length": 10})
            await client.send_method(1, m.QueueBind(0, "sink", "t", "#"))
            await client.expect(m.QueueBindOk)
            batch: list[bytes] = []
            for i in range(flood):
                publish = m.BasicPublish(0, "t", f"k.{i}.{'x' * 200}", False, False)
                message_id = str(i).encode()
                props = b"\x00\x80" + bytes((len(message_id),)) + message_id
                batch.append(
                    method_frame(1, publish)
                    + encode_frame(2, 1, struct.pack(">HHQ", 60, 0, 1) + props)
                    + body_frame(1, b"x")
                )
                if len(batch) == 500:
                    await client.send(b"".join(batch))
                    batch.clear()
                    await assert_alive(client)
            router = running.broker.vhosts["/"].exchanges["t"].router
            assert isinstance(router, TopicRouter)
            assert 0 < len(router._cache) <= router._limit
            assert len(codec._publish_cache) <= codec._CACHE_SIZE
            assert len(codec._properties_cache) <= codec._CACHE_SIZE


async def test_direct_reply_to_churn_leaves_no_queue_behind() -> None:
    """Channels that consume from amq.rabbitmq.reply-to, get a reply and go away, by the
    hundred: each hidden reply queue goes with its channel, and a reply to a channel that
    is gone is dropped (RabbitMQ's codes for misuse are conformance scenarios)."""
    rounds = 300
    async with serve(shutdown_timeout=0.2) as running:
        queues = running.broker.vhosts["/"].queues
        with trio.fail_after(60):
            responder = await _opened(running.port)
            await responder.declare_queue(1, "rpc", exclusive=True)
            requester = await _opened(running.port)
            baseline = len(queues)
            for n in range(rounds):
                channel = 2 + n % 100
                await requester.open_channel(channel)
                await requester.send_method(
                    channel, m.BasicConsume(0, "amq.rabbitmq.reply-to", "", False, True)
                )
                await requester.expect(m.BasicConsumeOk)
                request = encode_properties(BasicProperties(reply_to="amq.rabbitmq.reply-to"))
                await requester.send(
                    method_frame(channel, m.BasicPublish(0, "", "rpc", False, False))
                    + encode_frame(2, channel, struct.pack(">HHQ", 60, 0, 1) + request)
                    + body_frame(channel, b"?")
                )
                await responder.send_method(1, m.BasicGet(0, "rpc", True))
                await responder.expect(m.BasicGetOk)
                _, _, raw = await responder.read_frame()
                address = decode_properties(raw[12:]).reply_to
                assert address is not None and address.startswith("amq.rabbitmq.reply-to.")
                await responder.read_frame()  # the body
                await responder.send(publish_frames(1, "", address, b"!"))
                await requester.expect(m.BasicDeliver)
                await requester.read_frame()
                await requester.read_frame()
                await requester.send_method(channel, m.ChannelClose(200, "", 0, 0))
                await requester.expect(m.ChannelCloseOk)
                # Too late: the address leads nowhere now, and nothing is kept for it.
                await responder.send(publish_frames(1, "", address, b"late"))
            await assert_alive(responder)  # the late replies above have been handled
            assert not [name for name in queues if name.startswith("amq.rabbitmq.reply-to")]
            assert len(queues) == baseline + 1  # assert_alive's own queue
