"""Session behaviour on the wire: confirms, returns, reply ordering, exclusivity, consumers."""

from __future__ import annotations

import time

import trio
from rawamqp import RawClient, body_frame, header_frame, method_frame, publish_frames

from amqplite.app import RunningBroker, add_default_user, serve
from amqplite.broker.broker import Broker
from amqplite.errors import ReplyCode
from amqplite.protocol import methods as m


async def _client(running: RunningBroker, **kwargs: object) -> RawClient:
    client = await RawClient.connect(running.port)
    await client.handshake(**kwargs)  # type: ignore[arg-type]
    await client.open_channel(1)
    return client


async def test_confirms_of_one_batch_are_folded_into_one_multiple_ack(
    running: RunningBroker,
) -> None:
    with trio.fail_after(5):
        client = await _client(running)
        await client.declare_queue(1, "cq")
        await client.send_method(1, m.ConfirmSelect(False))
        await client.expect(m.ConfirmSelectOk)
        await client.send(publish_frames(1, "", "cq", b"hello") * 10)
        ack = await client.expect(m.BasicAck)
        assert (ack.delivery_tag, ack.multiple) == (10, True)
        await client.send(publish_frames(1, "", "cq", b"one more"))
        ack = await client.expect(m.BasicAck)
        assert (ack.delivery_tag, ack.multiple) == (11, False)


async def test_mandatory_unroutable_publish_is_returned_before_its_ack(
    running: RunningBroker,
) -> None:
    with trio.fail_after(5):
        client = await _client(running)
        await client.send_method(1, m.ConfirmSelect(False))
        await client.expect(m.ConfirmSelectOk)
        mandatory = m.BasicPublish(0, "", "nowhere", True, False)
        await client.send(method_frame(1, mandatory) + header_frame(1, 4) + body_frame(1, b"lost"))
        returned = await client.expect(m.BasicReturn)
        assert (returned.reply_code, returned.reply_text) == (ReplyCode.NO_ROUTE, "NO_ROUTE")
        ack = await client.expect(m.BasicAck)
        assert ack.delivery_tag == 1


async def test_consume_ok_comes_before_the_first_delivery(running: RunningBroker) -> None:
    with trio.fail_after(5):
        client = await _client(running)
        await client.declare_queue(1, "order")
        await client.send(publish_frames(1, "", "order", b"m") * 3)
        await client.send_method(
            1, m.BasicConsume(0, "order", "mine", False, True, False, False, {})
        )
        _, first = await client.read_method()
        assert isinstance(first, m.BasicConsumeOk)
        deliver = await client.expect(m.BasicDeliver)
        assert deliver.consumer_tag == "mine"


async def test_reusing_a_consumer_tag_closes_the_connection_with_530(
    running: RunningBroker,
) -> None:
    with trio.fail_after(5):
        client = await _client(running)
        await client.declare_queue(1, "tags")
        consume = m.BasicConsume(0, "tags", "same", False, False, False, False, {})
        await client.send_method(1, consume)
        await client.expect(m.BasicConsumeOk)
        await client.send_method(1, consume)
        close = await client.expect(m.ConnectionClose)
        assert close.reply_code == ReplyCode.NOT_ALLOWED
        assert "attempt to reuse consumer tag" in close.reply_text


async def test_exclusive_queue_is_deleted_when_its_connection_closes(
    running: RunningBroker,
) -> None:
    with trio.fail_after(5):
        owner = await _client(running)
        await owner.declare_queue(1, "mine", exclusive=True)
        other = await _client(running)
        await other.send_method(1, m.QueueDeclare(0, "mine", True, False, False, False, False, {}))
        close = await other.expect(m.ChannelClose)
        assert close.reply_code == ReplyCode.RESOURCE_LOCKED
        await owner.send_method(0, m.ConnectionClose(200, "bye", 0, 0))
        await owner.expect(m.ConnectionCloseOk)
        assert await owner.at_eof()
        await other.send_method(1, m.ChannelCloseOk())
        await other.open_channel(1)
        await other.send_method(1, m.QueueDeclare(0, "mine", True, False, False, False, False, {}))
        close = await other.expect(m.ChannelClose)
        assert close.reply_code == ReplyCode.NOT_FOUND


async def test_deleting_a_queue_cancels_its_consumers_for_capable_clients(
    running: RunningBroker,
) -> None:
    with trio.fail_after(5):
        consumer = await _client(running, capabilities={"consumer_cancel_notify": True})
        await consumer.declare_queue(1, "doomed")
        await consumer.send_method(
            1, m.BasicConsume(0, "doomed", "c1", False, False, False, False, {})
        )
        await consumer.expect(m.BasicConsumeOk)
        admin = await _client(running)
        await admin.send_method(1, m.QueueDelete(0, "doomed", False, False, False))
        await admin.expect(m.QueueDeleteOk)
        cancel = await consumer.expect(m.BasicCancel)
        assert cancel.consumer_tag == "c1"


async def test_basic_get_returns_messages_then_get_empty(running: RunningBroker) -> None:
    with trio.fail_after(5):
        client = await _client(running)
        await client.declare_queue(1, "g")
        await client.send(publish_frames(1, "", "g", b"a") + publish_frames(1, "", "g", b"b"))
        await client.declare_queue(1, "g", passive=True)
        await client.send_method(1, m.BasicGet(0, "g", True))
        ok = await client.expect(m.BasicGetOk)
        assert (ok.delivery_tag, ok.message_count) == (1, 1)
        _, _, body = (await client.read_frame(), await client.read_frame())[1]
        assert body == b"a"
        await client.send_method(1, m.BasicGet(0, "g", True))
        ok = await client.expect(m.BasicGetOk)
        assert ok.message_count == 0
        await client.send_method(1, m.BasicGet(0, "g", True))
        await client.expect(m.BasicGetEmpty)


async def test_tx_commit_publishes_and_rollback_discards(running: RunningBroker) -> None:
    with trio.fail_after(5):
        client = await _client(running)
        await client.declare_queue(1, "tx")
        await client.send_method(1, m.TxSelect())
        await client.expect(m.TxSelectOk)
        await client.send(publish_frames(1, "", "tx", b"kept"))
        await client.send_method(1, m.TxCommit())
        await client.expect(m.TxCommitOk)
        await client.send(publish_frames(1, "", "tx", b"dropped"))
        await client.send_method(1, m.TxRollback())
        await client.expect(m.TxRollbackOk)
        ok = await client.declare_queue(1, "tx", passive=True)
        assert ok.message_count == 1


async def test_tx_commit_returns_unroutable_mandatory_publishes(running: RunningBroker) -> None:
    with trio.fail_after(5):
        client = await _client(running)
        await client.send_method(1, m.TxSelect())
        await client.expect(m.TxSelectOk)
        mandatory = m.BasicPublish(0, "", "nowhere", True, False)
        await client.send(method_frame(1, mandatory) + header_frame(1, 1) + body_frame(1, b"x"))
        await client.send_method(1, m.TxCommit())
        _, first = await client.read_method()
        assert isinstance(first, m.BasicReturn)
        assert first.routing_key == "nowhere"
        await client.expect(m.TxCommitOk)


async def test_consumer_timeout_closes_the_channel_with_406() -> None:
    broker = Broker(clock=time.time, consumer_timeout=0.05)
    broker.add_vhost("/")
    add_default_user(broker)
    with trio.fail_after(5):
        async with serve(broker=broker, shutdown_timeout=0.2) as running:
            client = await _client(running)
            await client.declare_queue(1, "slowpoke")
            await client.send(publish_frames(1, "", "slowpoke", b"work"))
            consume = m.BasicConsume(0, "slowpoke", "c", False, False, False, False, {})
            await client.send_method(1, consume)
            await client.expect(m.BasicConsumeOk)
            await client.expect(m.BasicDeliver)
            close = await client.expect(m.ChannelClose)
            assert close.reply_code == ReplyCode.PRECONDITION_FAILED
            assert close.reply_text.startswith(
                "PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out"
            )
            await client.send_method(1, m.ChannelCloseOk())
            await client.open_channel(1)
            ok = await client.declare_queue(1, "slowpoke", passive=True)
            assert ok.message_count == 1  # the unacked delivery went back to the queue
            await client.aclose()


async def test_acks_sent_together_settle_up_to_an_unknown_tag_which_closes_the_channel(
    running: RunningBroker,
) -> None:
    # The three acks arrive in one write, so the session gets them as one run of acks.
    with trio.fail_after(5):
        client = await _client(running)
        await client.declare_queue(1, "run")
        await client.send(publish_frames(1, "", "run", b"m") * 4)
        await client.send_method(1, m.BasicQos(0, 2, False))
        await client.expect(m.BasicQosOk)
        await client.send_method(1, m.BasicConsume(0, "run", "c", False, False, False, False, {}))
        await client.expect(m.BasicConsumeOk)
        tags = [(await client.expect(m.BasicDeliver)).delivery_tag for _ in range(2)]
        assert tags == [1, 2]
        await client.send(
            method_frame(1, m.BasicAck(1))
            + method_frame(1, m.BasicAck(99))
            + method_frame(1, m.BasicAck(2))
        )
        while not isinstance(method := (await client.read_method())[1], m.ChannelClose):
            assert isinstance(method, m.BasicDeliver)
        assert (method.reply_code, method.class_id, method.method_id) == (406, 60, 80)
        assert method.reply_text == "PRECONDITION_FAILED - unknown delivery tag 99"
        await client.send_method(1, m.ChannelCloseOk())
        await client.open_channel(1)
        # Message 1 was acked; 2 (its ack came after the unknown tag) and 3, 4 are back.
        ok = await client.declare_queue(1, "run", passive=True)
        assert ok.message_count == 3
