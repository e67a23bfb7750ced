"""Small builders shared by the store tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from amqplite.message import BasicProperties, Message
from amqplite.store import FileStore, MemoryStore, RecoveredState


def make_message(body: bytes = b"hello", **props: Any) -> Message:
    props.setdefault("delivery_mode", 2)
    return Message("ex", "rk", BasicProperties(**props), body)


def bodies(state: RecoveredState, queue: tuple[str, str]) -> list[bytes]:
    return [entry.message.body for entry in state.queues.get(queue, []) if entry.message]


class StoreHarness:
    """Opens a store and restarts it: cleanly (close + reopen) or as after a crash."""

    def __init__(self, kind: str, path: Path) -> None:
        self.kind = kind
        self.path = path
        self.store: Any = None
        self.state: RecoveredState = self.start()

    def start(self, *, load_bodies: bool = True) -> RecoveredState:
        if self.kind == "memory":
            if self.store is None:
                self.store = MemoryStore()
        else:
            # "file-tiny" rolls a segment every few messages: rolling, segment deletion and
            # compaction then happen inside every contract test.
            size = 300 if self.kind == "file-tiny" else 16 * 1024
            self.store = FileStore.open(self.path, segment_size=size)
        state: RecoveredState = self.store.recover(load_bodies=load_bodies)
        return state

    def restart(self, *, clean: bool = True, load_bodies: bool = True) -> RecoveredState:
        """Close (or crash) and recover; a crash keeps only what was synced."""
        if self.kind == "memory":
            if clean:
                self.store.close()
        elif clean:
            self.store.close()
        else:
            self.store.abandon()
        self.state = self.start(load_bodies=load_bodies)
        return self.state

    def close(self) -> None:
        if self.kind != "memory":
            self.store.close()
