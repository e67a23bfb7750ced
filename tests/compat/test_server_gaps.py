"""Server behaviour clients rely on, beyond the conformance scenarios (which cannot set
up a disk alarm or look inside the store): transactions wait for the fsync, and a client
connecting during a disk alarm hears connection.blocked at once.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from amqplite.app import RunningBroker, build_broker, run_in_thread
from amqplite.protocol import methods as m
from amqplite.protocol.frames import PROTOCOL_HEADER, encode_method_frame
from amqplite.server.store_guard import DISK_ALARM_REASON
from amqplite.settings import ServerSettings
from amqplite.store import FileStore


@pytest.fixture
def durable(tmp_path: Path) -> Iterator[tuple[RunningBroker, FileStore]]:
    store = FileStore.open(tmp_path / "data")
    try:
        broker = build_broker(None, store=store)
        settings = ServerSettings(port=0, disk_free_limit=0)
        with run_in_thread(broker=broker, settings=settings, shutdown_timeout=0.5) as running:
            yield running, store
    finally:
        store.close()


class _Frames:
    """Reads method frames off a blocking socket (the test's raw client)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            assert data, "the broker closed the connection"
            self.buf += data
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def method(self) -> m.Method:
        while True:
            ftype, _, size = struct.unpack(">BHI", self._read(7))
            payload = self._read(size + 1)[:-1]
            if ftype == 1:
                class_id, method_id = struct.unpack_from(">HH", payload)
                return m.DECODERS[class_id << 16 | method_id](payload, 4, len(payload))


def _connect(running: RunningBroker) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(running.url))


def test_tx_commit_ok_waits_for_the_fsync_of_its_persistent_messages(
    durable: tuple[RunningBroker, FileStore],
) -> None:
    running, store = durable
    connection = _connect(running)
    channel = connection.channel()
    channel.queue_declare("txq", durable=True)
    channel.tx_select()
    for commit in range(3):
        for i in range(20):
            channel.basic_publish(
                "", "txq", b"%d-%d" % (commit, i), pika.BasicProperties(delivery_mode=2)
            )
        channel.tx_commit()
        # Whatever the commit covered is on disk by the time commit-ok arrived.
        assert running.call(lambda: store.is_durable(store.position))
    assert channel.queue_declare("txq", durable=True, passive=True).method.message_count == 60
    connection.close()


def test_a_client_connecting_during_a_disk_alarm_is_told_it_is_blocked(
    durable: tuple[RunningBroker, FileStore],
) -> None:
    running, _ = durable
    guard = running.server.guard
    assert guard is not None

    def raise_alarm() -> None:
        guard.set_disk_free_limit(1 << 62)  # far above any real free space
        guard.check_disk()

    running.call(raise_alarm)
    sock = socket.create_connection(("127.0.0.1", running.port), timeout=5)
    with sock:
        sock.sendall(PROTOCOL_HEADER)
        reader = _Frames(sock)
        assert isinstance(reader.method(), m.ConnectionStart)
        props = {"capabilities": {"connection.blocked": True}}
        sock.sendall(
            encode_method_frame(0, m.ConnectionStartOk(props, "PLAIN", b"\0guest\0guest", "en_US"))
        )
        tune = reader.method()
        assert isinstance(tune, m.ConnectionTune)
        sock.sendall(
            encode_method_frame(0, m.ConnectionTuneOk(tune.channel_max, tune.frame_max, 0))
            + encode_method_frame(0, m.ConnectionOpen("/", "", False))
        )
        assert isinstance(reader.method(), m.ConnectionOpenOk)
        blocked = reader.method()
        assert isinstance(blocked, m.ConnectionBlocked)
        assert blocked.reason == DISK_ALARM_REASON

        def clear_alarm() -> None:
            guard.set_disk_free_limit(0)
            guard.check_disk()

        running.call(clear_alarm)
        assert isinstance(reader.method(), m.ConnectionUnblocked)
