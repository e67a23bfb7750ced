"""Helpers for the durability tests: a broker node that can be restarted on its store."""

from __future__ import annotations

import errno
import threading
from pathlib import Path
from typing import Any

from sinks import RecordingSink

from amqplite.broker import Broker, Channel, FakeClock
from amqplite.broker.recovery import RecoveryReport
from amqplite.message import BasicProperties, Message
from amqplite.store import FileStore, MemoryStore
from amqplite.store.files import StoreFile


def persistent(body: bytes | str, **props: Any) -> Message:
    if isinstance(body, str):
        body = body.encode()
    props.setdefault("delivery_mode", 2)
    return Message("", "", BasicProperties(**props), body)


class DiskSwitch:
    """The store's opener seam: while ``full`` is set every write fails with ENOSPC.

    ``wait_refusals(n)`` returns once ``n`` writes have been refused (the store may write
    from the broker's thread while a test waits in its own).
    """

    def __init__(self) -> None:
        self.full = False
        self.refusals = 0
        self._refused = threading.Condition()

    def wait_refusals(self, count: int, timeout: float = 30.0) -> bool:
        with self._refused:
            return self._refused.wait_for(lambda: self.refusals >= count, timeout)

    def _refuse(self) -> None:
        with self._refused:
            self.refusals += 1
            self._refused.notify_all()

    def __call__(self, path: str, *, create: bool) -> StoreFile:
        switch = self

        class FlakyFile(StoreFile):
            def write(self, data: bytes | bytearray) -> None:
                if switch.full:
                    switch._refuse()
                    raise OSError(errno.ENOSPC, "No space left on device (test)")
                super().write(data)

        return FlakyFile(path, create=create)


class Node:
    """A broker on a store that survives :meth:`restart` (clean) and :meth:`crash`."""

    def __init__(
        self,
        kind: str,
        path: Path,
        *,
        lazy_queue_bytes: int = 16 << 20,
        load_bodies: bool | None = None,
    ) -> None:
        self.kind = kind
        self.load_bodies = load_bodies
        self.path = path
        self.clock = FakeClock(1_700_000_000.0)
        self.lazy_queue_bytes = lazy_queue_bytes
        self.disk = DiskSwitch()
        self.store: Any = MemoryStore() if kind == "memory" else None
        self.broker, self.report = self._start()

    def _start(self) -> tuple[Broker, RecoveryReport]:
        if self.kind != "memory":
            self.store = FileStore.open(self.path, segment_size=64 * 1024, opener=self.disk)
        broker = Broker(self.clock, store=self.store, lazy_queue_bytes=self.lazy_queue_bytes)
        report = broker.recover(load_bodies=self.load_bodies)
        return broker, report

    def restart(self) -> Broker:
        self.store.close()
        self.broker, self.report = self._start()
        return self.broker

    def crash(self) -> Broker:
        """As ``kill -9`` after the last sync: what was synced (and written) survives."""
        if self.kind != "memory":
            self.store.abandon()
        self.broker, self.report = self._start()
        return self.broker

    def channel(self, vhost: str = "/", user: str | None = None) -> tuple[Channel, RecordingSink]:
        conn = self.broker.open_connection(vhost, user)
        sink = RecordingSink()
        return conn.open_channel(1, sink), sink

    def close(self) -> None:
        self.store.close()


class FailingSync:
    """The store's opener seam: while ``broken`` is set every fsync fails with EIO."""

    def __init__(self) -> None:
        self.broken = False

    def __call__(self, path: str, *, create: bool) -> StoreFile:
        switch = self

        class FailingFile(StoreFile):
            def fsync(self) -> None:
                if switch.broken:
                    raise OSError(errno.EIO, "Input/output error (test)")
                super().fsync()

        return FailingFile(path, create=create)
