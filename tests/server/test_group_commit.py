"""Group commit against the real file store: confirms wait for an fsync that covers them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from rawamqp import RawClient, body_frame, header_frame, method_frame

from amqplite.app import add_default_user, serve
from amqplite.broker.broker import Broker
from amqplite.message import BasicProperties, Message
from amqplite.protocol import methods as m
from amqplite.server.durability import GroupCommit
from amqplite.store import Store, open_store


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
    broker = Broker(clock=time.time, store=store)
    broker.recover()
    broker.add_vhost("/")
    add_default_user(broker)
    with trio.fail_after(5):
        async with serve(broker=broker, shutdown_timeout=0.2) as running:
            client = await RawClient.connect(running.port)
            await client.handshake()
            await client.open_channel(1)
            await client.declare_queue(1, "durable", durable=True)
            await client.send_method(1, m.ConfirmSelect(False))
            await client.expect(m.ConfirmSelectOk)
            persistent = b"\x10\x00\x02"  # property flags: delivery-mode present; 2
            publish = method_frame(1, m.BasicPublish(0, "", "durable", False, False))
            one = publish + header_frame(1, 5, persistent) + body_frame(1, b"hello")
            await client.send(one * 50)
            acked = 0
            while acked < 50:
                ack = await client.expect(m.BasicAck)
                # Whatever an ack covers is on disk by the time it is sent.
                assert store.is_durable(store.position)
                acked = ack.delivery_tag
            await client.aclose()
