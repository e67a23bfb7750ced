"""Serve a durable broker for ``amqplite bench persistent``: group commit or fsync per message.

Not a test: a measuring aid.  ``group`` is the real server (one fsync shared by every
connection waiting for confirms); ``per-message`` wraps the file store so every append is
fsync'd on its own before the publish is handled further -- what a broker without group
commit does.  Usage::

    python tests/durability/bench_sync_modes.py group DATA_DIR PORT &
    amqplite bench persistent --url amqp://guest:guest@127.0.0.1:PORT/ --producers 4
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import trio

from amqplite.app import build_broker, serve
from amqplite.message import Message
from amqplite.settings import ServerSettings
from amqplite.store import FileStore, MessageRef, QueueKey


class SyncPerMessageStore(FileStore):
    """A file store that fsyncs every message as it is appended (no group commit)."""

    def append(
        self, message: Message, queues: Sequence[QueueKey], timestamp: float | None = None
    ) -> MessageRef:
        ref = super().append(message, queues, timestamp)
        self.sync()
        return ref


async def main(mode: str, data_dir: str, port: int) -> None:
    store = (SyncPerMessageStore if mode == "per-message" else FileStore).open(data_dir)
    try:
        broker = build_broker(None, store=store)
        settings = ServerSettings(host="127.0.0.1", port=port, disk_free_limit=0)
        async with serve(broker=broker, settings=settings) as running:
            print(f"ready {mode} on {running.url}", flush=True)
            await trio.sleep_forever()
    finally:
        store.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
