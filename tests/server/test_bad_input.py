"""Malformed and out-of-order input gets RabbitMQ's reply code; other connections never notice."""

from __future__ import annotations

import random
import struct

import pytest
import trio
from rawamqp import RawClient, assert_alive, body_frame, header_frame, method_frame

from amqplite.app import RunningBroker
from amqplite.errors import ReplyCode
from amqplite.protocol import methods as m
from amqplite.protocol.frames import PROTOCOL_HEADER, encode_frame


async def _opened(running: RunningBroker) -> RawClient:
    client = await RawClient.connect(running.port)
    await client.handshake()
    await client.open_channel(1)
    return client


@pytest.mark.parametrize(
    "greeting",
    [b"AMQP\x00\x00\x08\x00", b"GET / HTTP/1.1\r\n\r\n"],
    ids=["wrong-amqp-version", "http-request"],
)
async def test_wrong_protocol_header_gets_ours_back_and_a_close(
    running: RunningBroker, witness: RawClient, greeting: bytes
) -> None:
    with trio.fail_after(5):
        client = await RawClient.connect(running.port)
        await client.send(greeting)
        assert await client.read_bytes(8) == PROTOCOL_HEADER
        assert await client.at_eof()
        await assert_alive(witness)


async def test_garbage_frame_closes_the_connection_with_501(
    running: RunningBroker, witness: RawClient
) -> None:
    with trio.fail_after(5):
        client = await _opened(running)
        # A method frame whose end octet is wrong.
        await client.send(b"\x01\x00\x01\x00\x00\x00\x04\x00\x14\x00\x0a\x00")
        close = await client.expect(m.ConnectionClose)
        assert close.reply_code == ReplyCode.FRAME_ERROR
        assert await client.at_eof()
        await assert_alive(witness)


async def test_method_on_an_unopened_channel_closes_the_connection_with_504(
    running: RunningBroker, witness: RawClient
) -> None:
    with trio.fail_after(5):
        client = await _opened(running)
        await client.send_method(7, m.QueueDeclare(0, "q", False, False, False, False, False, {}))
        close = await client.expect(m.ConnectionClose)
        assert close.reply_code == ReplyCode.CHANNEL_ERROR
        assert close.reply_text == "CHANNEL_ERROR - expected 'channel.open'"
        await client.send_method(0, m.ConnectionCloseOk())
        assert await client.at_eof()
        await assert_alive(witness)


_PUBLISH = m.BasicPublish(0, "", "q", False, False)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"\x05\x00\x01\x00\x00\x00\x00\xce", ReplyCode.FRAME_ERROR),  # unknown frame type
        (header_frame(1, 3), ReplyCode.UNEXPECTED_FRAME),  # content header without a publish
        (  # a method on the channel while the publish waits for its header
            method_frame(1, _PUBLISH) + method_frame(1, m.BasicQos(0, 1, False)),
            ReplyCode.UNEXPECTED_FRAME,
        ),
    ],
    ids=["unknown-frame-type-501", "header-without-publish-505", "method-inside-content-505"],
)
async def test_bad_frame_closes_the_connection_with_its_code(
    running: RunningBroker, witness: RawClient, payload: bytes, code: ReplyCode
) -> None:
    with trio.fail_after(5):
        client = await _opened(running)
        await client.send(payload)
        close = await client.expect(m.ConnectionClose)
        assert close.reply_code == code
        await assert_alive(witness)


async def test_oversize_frame_closes_the_connection_with_501(
    running: RunningBroker, witness: RawClient
) -> None:
    with trio.fail_after(5):
        client = await _opened(running)
        huge = running.server.settings.frame_max + 100
        await client.send(method_frame(1, _PUBLISH) + header_frame(1, huge))
        await client.send(body_frame(1, b"x" * huge))
        close = await client.expect(m.ConnectionClose)
        assert close.reply_code == ReplyCode.FRAME_ERROR
        await assert_alive(witness)


async def test_method_before_the_handshake_is_refused(
    running: RunningBroker, witness: RawClient
) -> None:
    with trio.fail_after(5):
        client = await RawClient.connect(running.port)
        await client.send(PROTOCOL_HEADER)
        await client.expect(m.ConnectionStart)
        await client.send_method(0, m.ConnectionOpen("/", "", False))
        close = await client.expect(m.ConnectionClose)
        assert close.reply_code == ReplyCode.CHANNEL_ERROR
        await assert_alive(witness)


async def test_channel_error_closes_only_the_channel(
    running: RunningBroker, witness: RawClient
) -> None:
    with trio.fail_after(5):
        client = await _opened(running)
        await client.declare_queue(1, "q406", durable=False)
        await client.send_method(1, m.QueueDeclare(0, "q406", False, True, False, False, False, {}))
        channel, close = await client.read_method()
        assert channel == 1
        assert isinstance(close, m.ChannelClose)
        assert close.reply_code == ReplyCode.PRECONDITION_FAILED
        assert (close.class_id, close.method_id) == (50, 10)
        # Frames on the closing channel are discarded until close-ok.
        await client.send_method(1, m.BasicQos(0, 1, False))
        await client.send_method(1, m.ChannelCloseOk())
        # The connection is fine; the channel number can be reused.
        await client.open_channel(1)
        ok = await client.declare_queue(1, "q406", passive=True)
        assert ok.queue == "q406"
        await assert_alive(witness)


async def test_wrong_password_is_refused_with_403(
    running: RunningBroker, witness: RawClient
) -> None:
    with trio.fail_after(5):
        client = await RawClient.connect(running.port)
        await client.send(PROTOCOL_HEADER)
        await client.expect(m.ConnectionStart)
        await client.send_method(
            0, m.ConnectionStartOk({}, "PLAIN", b"\x00guest\x00wrong", "en_US")
        )
        close = await client.expect(m.ConnectionClose)
        assert close.reply_code == ReplyCode.ACCESS_REFUSED
        assert "Login was refused using authentication mechanism PLAIN" in close.reply_text
        await assert_alive(witness)


async def test_unknown_vhost_is_refused_with_530(
    running: RunningBroker, witness: RawClient
) -> None:
    with trio.fail_after(5):
        client = await RawClient.connect(running.port)
        await client.send(PROTOCOL_HEADER)
        await client.expect(m.ConnectionStart)
        await client.send_method(0, m.ConnectionStartOk({}, "PLAIN", b"\x00guest\x00guest", ""))
        tune = await client.expect(m.ConnectionTune)
        await client.send_method(0, m.ConnectionTuneOk(tune.channel_max, tune.frame_max, 0))
        await client.send_method(0, m.ConnectionOpen("nowhere", "", False))
        close = await client.expect(m.ConnectionClose)
        assert close.reply_code == ReplyCode.NOT_ALLOWED
        assert "nowhere" in close.reply_text
        await assert_alive(witness)


async def test_random_bytes_and_random_method_frames_never_hurt_the_server(
    running: RunningBroker, witness: RawClient
) -> None:
    rng = random.Random(20261122)
    known = sorted(m.METHODS)
    with trio.fail_after(20):
        for i in range(100):
            client = await _opened(running)
            if i % 2:
                payload = rng.randbytes(rng.randrange(0, 64))
                # Mostly real methods with random arguments, sometimes unknown ones.
                ids = rng.choice(known) if rng.random() < 0.9 else (rng.randrange(65536), 1)
                head = struct.pack(">HH", *ids)
                data = encode_frame(1, rng.choice([0, 1, 2]), head + payload)
            else:
                data = rng.randbytes(rng.randrange(1, 300))
            await client.send(data)
            await client.stream.send_eof()
            replies = []
            try:
                while True:
                    replies.append(await client.read_method())
            except EOFError:
                pass
            for channel, reply in replies:
                if isinstance(reply, m.ConnectionClose):
                    assert reply.reply_code >= 500 or reply.reply_code in (403, 404, 406)
                    assert channel == 0
            await client.aclose()
        await assert_alive(witness)
