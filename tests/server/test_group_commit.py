"""Group commit against the real file store: confirms wait for an fsync that covers them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing
from rawamqp import RawClient, body_frame, header_frame, method_frame

from amqplite.app import RunningBroker, add_default_user, serve
from amqplite.broker.broker import Broker
from amqplite.message import BasicProperties, Message
from amqplite.protocol import encode_properties
from amqplite.protocol import methods as m
from amqplite.server.durability import UNSYNCED_BYTES_MAX, ConfirmPipeline, GroupCommit
from amqplite.store import Store, SyncPoint, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh file store, not yet recovered (the broker's recovery does that)."""
    store = open_store(str(tmp_path / "data"))
    yield store
    store.close()


def _persistent(body: bytes) -> Message:
    return Message("", "q", BasicProperties(delivery_mode=2), body)


async def test_wait_durable_returns_once_the_write_is_synced(store: Store) -> None:
    store.recover()
    commit = GroupCommit(store)
    store.append(_persistent(b"one"), [("/", "q")])
    position = store.position
    assert not store.is_durable(position)
    with trio.fail_after(5):
        await commit.wait_durable(position)
    assert store.is_durable(position)
    assert not store.needs_sync


async def test_concurrent_waiters_share_syncs_and_all_become_durable(store: Store) -> None:
    store.recover()
    commit = GroupCommit(store)
    positions = []
    for i in range(20):
        store.append(_persistent(b"m%d" % i), [("/", "q")])
        positions.append(store.position)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for position in positions:
                nursery.start_soon(commit.wait_durable, position)
    assert all(store.is_durable(p) for p in positions)
    # Already durable: returns without another sync.
    durable = store.durable_position
    with trio.fail_after(5):
        await commit.wait_durable(positions[0])
    assert store.durable_position == durable


async def test_persistent_publishes_are_confirmed_only_once_synced(store: Store) -> None:
    broker = _served(store)
    with trio.fail_after(5):
        async with serve(broker=broker, shutdown_timeout=0.2) as running:
            client = await _confirming_client(running)
            await client.send(_publishes(50))
            acked = 0
            while acked < 50:
                ack = await client.expect(m.BasicAck)
                # Whatever an ack covers is on disk by the time it is sent.
                assert store.is_durable(store.position)
                acked = ack.delivery_tag
            await client.aclose()


class SlowDisk:
    """An fsync that waits until the test opens the gate (the GroupCommit's sync seam);
    the real fsync of the real file store then runs."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.calls = 0
        self._started = threading.Semaphore(0)

    def fsync(self, point: SyncPoint) -> None:
        self.calls += 1
        self._started.release()
        self.gate.wait(timeout=30)  # bounded: a failing test must not hang in a shielded sync
        point.fsync()

    async def started(self) -> None:
        """Until an fsync has begun (one per call)."""
        await trio.to_thread.run_sync(self._started.acquire)


PERSISTENT = b"\x10\x00\x02"  # property flags: delivery-mode present; 2


def _publishes(count: int) -> bytes:
    publish = method_frame(1, m.BasicPublish(0, "", "durable", False, False))
    return (publish + header_frame(1, 5, PERSISTENT) + body_frame(1, b"hello")) * count


async def test_publishes_are_read_while_an_fsync_is_in_flight_and_confirmed_after_it(
    store: Store,
) -> None:
    broker = _served(store)
    disk = SlowDisk()
    passive = _passive(1)
    with trio.fail_after(10):
        async with serve(broker=broker, shutdown_timeout=0.2) as running:
            assert running.server.commit is not None
            running.server.commit.fsync = disk.fsync
            client = await _confirming_client(running)
            # Batch A: one publish; its fsync starts and hangs.
            await client.send(_publishes(1) + passive)
            assert (await client.expect(m.QueueDeclareOk)).message_count == 1
            await disk.started()
            after_a = store.position
            # Batch B is read and stored while A's fsync is still in flight (the declare-ok
            # after it, with no confirm before it, proves both).
            await client.send(_publishes(50) + passive)
            assert (await client.expect(m.QueueDeclareOk)).message_count == 51
            after_b = store.position
            assert after_b > after_a and not store.is_durable(after_a)
            disk.gate.set()
            acked = 0
            while acked < 51:
                ack = await client.expect(m.BasicAck)
                assert ack.delivery_tag > acked
                acked = ack.delivery_tag
                # No confirm before the fsync covering it: A's was begun before B was
                # written, so B's confirms need a later one.
                assert store.is_durable(after_a)
                if acked > 1:
                    assert store.is_durable(after_b)
            assert disk.calls >= 2
            await client.aclose()


async def test_a_connection_stops_reading_while_too_much_waits_for_an_fsync(
    store: Store,
) -> None:
    store.recover()
    disk = SlowDisk()
    commit = GroupCommit(store, fsync=disk.fsync)
    emitted: list[int] = []
    pipeline: ConfirmPipeline[int] = ConfirmPipeline(commit, emitted.append)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pipeline.run)
            batch = 0
            while not pipeline.full:
                batch += 1
                store.append(_persistent(b"m%d" % batch), [("/", "q")])
                pipeline.add(True, UNSYNCED_BYTES_MAX // 8, batch)
            assert batch == 8
            room = trio.Event()

            async def reader() -> None:
                await pipeline.wait_room()
                room.set()

            nursery.start_soon(reader)
            await disk.started()
            await trio.testing.wait_all_tasks_blocked()
            assert not room.is_set() and emitted == []  # the fsync has not finished
            disk.gate.set()
            await room.wait()
            # One sync covered every batch (all written before it began): all out, in order.
            assert emitted == list(range(1, batch + 1))
            assert store.is_durable(store.position)
            nursery.cancel_scope.cancel()


async def _slow_disk_client(broker: Broker, running: RunningBroker, disk: SlowDisk) -> RawClient:
    assert running.server.commit is not None
    running.server.commit.fsync = disk.fsync
    client = await RawClient.connect(running.port)
    await client.handshake()
    await client.open_channel(1)
    await client.open_channel(2)
    await client.declare_queue(2, "durable", durable=True)
    return client


async def _confirming_client(running: RunningBroker) -> RawClient:
    """A client with channel 1 open in confirm mode and the durable queue "durable"."""
    client = await RawClient.connect(running.port)
    await client.handshake()
    await client.open_channel(1)
    await client.declare_queue(1, "durable", durable=True)
    await client.send_method(1, m.ConfirmSelect(False))
    await client.expect(m.ConfirmSelectOk)
    return client


def _passive(channel: int) -> bytes:
    return method_frame(channel, m.QueueDeclare(0, "durable", True, False, False, False, False, {}))


def _served(store: Store) -> Broker:
    broker = Broker(clock=time.time, store=store)
    broker.recover()
    broker.add_vhost("/")
    add_default_user(broker)
    return broker


async def test_a_durable_tx_commit_is_answered_only_after_its_fsync(store: Store) -> None:
    broker = _served(store)
    disk = SlowDisk()
    with trio.fail_after(10):
        async with serve(broker=broker, shutdown_timeout=0.2) as running:
            client = await _slow_disk_client(broker, running, disk)
            await client.send_method(1, m.TxSelect())
            await client.expect(m.TxSelectOk)
            await client.send(_publishes(3) + method_frame(1, m.TxCommit()))
            await disk.started()
            position = store.position
            # Another channel is served meanwhile; the commit-ok is not sent before the fsync.
            await client.send(_passive(2))
            assert (await client.expect(m.QueueDeclareOk)).message_count == 3
            disk.gate.set()
            await client.expect(m.TxCommitOk)
            assert store.is_durable(position)
            await client.aclose()


async def test_a_closed_channel_gets_no_confirms_from_an_fsync_in_flight(store: Store) -> None:
    broker = _served(store)
    disk = SlowDisk()
    with trio.fail_after(10):
        async with serve(broker=broker, shutdown_timeout=0.2) as running:
            client = await _slow_disk_client(broker, running, disk)
            await client.send_method(1, m.ConfirmSelect(False))
            await client.expect(m.ConfirmSelectOk)
            await client.send(_publishes(3))
            await disk.started()
            position = store.position
            await client.send_method(1, m.ChannelClose(200, "bye", 0, 0))
            await client.expect(m.ChannelCloseOk)
            disk.gate.set()
            assert running.server.commit is not None
            await running.server.commit.wait_durable(position)
            await trio.testing.wait_all_tasks_blocked()  # the connection's confirmer has run
            # Nothing for the closed channel comes before this reply.
            await client.send(_passive(2))
            assert (await client.expect(m.QueueDeclareOk)).message_count == 3
            await client.aclose()


async def test_a_burst_of_stream_publishes_is_confirmed_after_its_fsync_one_offset_each(
    store: Store,
) -> None:
    """Publishes that repeat exchange, routing key and properties go to a stream as one run
    (``repeated_contents``): each still gets its own offset, header, body and filter value,
    a run ends where a publish differs (another queue, other properties), and the acks
    covering them come only after the fsync that covers their chunk."""
    broker = _served(store)
    filtered = encode_properties(
        BasicProperties(delivery_mode=2, headers={"x-stream-filter-value": "b"})
    )
    stream_publish = method_frame(1, m.BasicPublish(0, "", "s", False, False))
    plan = [(PERSISTENT, 300), (filtered, 250), (PERSISTENT, 1)]
    data = []
    n = 0
    for raw, count in plan:
        for _ in range(count):
            body = b"m%d" % n
            data.append(stream_publish + header_frame(1, len(body), raw) + body_frame(1, body))
            n += 1
        data.append(_publishes(1))  # to the classic queue "durable": ends the run
    with trio.fail_after(10):
        async with serve(broker=broker, shutdown_timeout=0.2) as running:
            client = await _confirming_client(running)
            await client.declare_queue(1, "s", durable=True, arguments={"x-queue-type": "stream"})
            await client.send(b"".join(data))
            total = n + len(plan)
            acked = 0
            while acked < total:
                ack = await client.expect(m.BasicAck)
                assert store.is_durable(store.position)
                acked = ack.delivery_tag
            assert acked == total
            await client.aclose()
    stream = broker.get_vhost("/").queues["s"]
    records = stream.read(0, n + 10)  # type: ignore[union-attr]
    values = [None] * 300 + ["b"] * 250 + [None]
    assert [r.offset for r in records] == list(range(n))
    assert [r.message.body for r in records] == [b"m%d" % i for i in range(n)]
    assert [r.message.properties.headers["x-stream-offset"] for r in records] == list(range(n))
    assert [r.filter_value for r in records] == values
    stamps = [r.timestamp for r in records]
    assert stamps == sorted(stamps)
    assert broker.get_vhost("/").queues["durable"].message_count == len(plan)
