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

    def restart(
        self, *, clean: bool = True, load_bodies: bool = True, forget_summaries: bool = False
    ) -> RecoveredState:
        """Close (or crash) and recover; a crash keeps only what was synced.

        ``forget_summaries``: recover without what a store keeps only to recover faster
        (the file store's segment summaries), which must not change what it recovers."""
        if self.kind == "memory":
            if clean:
                self.store.close()
        elif clean:
            self.store.close()
        else:
            self.store.abandon()
        if forget_summaries and self.kind != "memory":
            for summary in (self.path / "messages").glob("*.idx"):
                summary.unlink()
        self.state = self.start(load_bodies=load_bodies)
        return self.state

    def close(self) -> None:
        if self.kind != "memory":
            self.store.close()


def describe(state: RecoveredState) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    """Everything recovery says of each message, bodies included when it read them."""
    return {
        queue: [
            (
                e.ref,
                e.delivery_count,
                e.redelivered,
                e.timestamp,
                e.size,
                e.properties,
                None if e.message is None else (e.message.body, e.message.properties),
            )
            for e in entries
        ]
        for queue, entries in state.queues.items()
    }
