"""Micro-benchmark of the file store: persistent appends per second under group commit.

Layer: ``amqplite/store`` (a command-line tool over the store; stdlib only).

    python -m amqplite.store._bench DIR [--messages N] [--size BYTES]

For each batch size (1, 100, 1000 appends per ``sync()``) it appends N persistent messages
to a fresh store in ``DIR`` and reports messages/s, plus the ratio to batch 1: what group
commit buys.  Also reports the CPU cost of an append without fsync, of the ack path
(``remove`` + the marks written at sync), and of ``read_message`` for lazy bodies.
Absolute numbers depend on the disk; quote the ratios.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable

from amqplite.message import BasicProperties, Message
from amqplite.store.filestore import FileStore

QUEUE = ("/", "bench")


def _message(size: int) -> Message:
    properties = BasicProperties(
        content_type="application/octet-stream", delivery_mode=2, headers={"n": 1}
    )
    # As the server stores it: with the publisher's wire-encoded properties attached.
    raw = b"\x98\x00\x18application/octet-stream\x00\x00\x00\x08\x01nI\x00\x00\x00\x01\x02"
    return Message("amq.direct", "bench", properties, b"x" * size, raw)


def _with_store(root: str, run: Callable[[FileStore], float]) -> float:
    path = tempfile.mkdtemp(prefix="store-bench-", dir=root)
    try:
        store = FileStore.open(path)
        store.recover()
        try:
            return run(store)
        finally:
            store.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)


def bench_appends(root: str, messages: int, size: int, batch: int) -> float:
    """Persistent appends per second with one sync per ``batch`` appends (0: no sync)."""
    message = _message(size)

    def run(store: FileStore) -> float:
        start = time.perf_counter()
        append, sync = store.append, store.sync
        for i in range(1, messages + 1):
            append(message, [QUEUE])
            if batch and i % batch == 0:
                sync()
        if batch:
            sync()
        return messages / (time.perf_counter() - start)

    return _with_store(root, run)


def bench_acks(root: str, messages: int, size: int) -> float:
    """Removals per second, synced every 1000 (the marks are written at sync)."""
    message = _message(size)

    def run(store: FileStore) -> float:
        refs = [store.append(message, [QUEUE]) for _ in range(messages)]
        store.sync()
        start = time.perf_counter()
        remove = store.remove
        for i, ref in enumerate(refs, 1):
            remove(QUEUE, ref)
            if i % 1000 == 0:
                store.sync()
        store.sync()
        return messages / (time.perf_counter() - start)

    return _with_store(root, run)


def bench_reads(root: str, messages: int, size: int) -> float:
    """``read_message`` calls per second (lazy bodies)."""
    message = _message(size)

    def run(store: FileStore) -> float:
        refs = [store.append(message, [QUEUE]) for _ in range(messages)]
        store.sync()
        start = time.perf_counter()
        read = store.read_message
        for ref in refs:
            read(ref)
        return messages / (time.perf_counter() - start)

    return _with_store(root, run)


def bench_memory(root: str, messages: int) -> tuple[float, float, float]:
    """Bytes per queued message after a lazy recovery.

    Returns (what the store itself keeps, a RecoveredMessage entry, a bare ref in a list).
    """
    path = tempfile.mkdtemp(prefix="store-bench-", dir=root)
    message = _message(16)
    try:
        store = FileStore.open(path)
        store.recover()
        for _ in range(messages):
            store.append(message, [QUEUE])
        store.close()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        store = FileStore.open(path)
        state = store.recover(load_bodies=False)
        with_state = tracemalloc.get_traced_memory()[0]
        refs = [entry.ref for entry in state.queues[QUEUE]]
        with_refs = tracemalloc.get_traced_memory()[0]
        del state, refs
        retained = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        store.close()
        per_ref = (with_refs - with_state) / messages
        return retained / messages, (with_state - before) / messages, per_ref
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dir", help="a directory on the disk to measure (scratch dirs go inside)")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--size", type=int, default=1024, help="body size in bytes")
    args = parser.parse_args(argv)
    out = sys.stdout
    rates = {}
    for batch in (1, 100, 1000):
        count = min(args.messages, 2000) if batch == 1 else args.messages
        rates[batch] = bench_appends(args.dir, count, args.size, batch)
    no_sync = bench_appends(args.dir, args.messages, args.size, 0)
    out.write(f"persistent appends, {args.size} B bodies\n")
    for batch, rate in rates.items():
        out.write(
            f"  sync every {batch:>4}: {rate:>10,.0f} msg/s  ratio vs batch 1: "
            f"{rate / rates[1]:6.1f}x\n"
        )
    out.write(f"  no sync at all : {no_sync:>10,.0f} msg/s  ({1e6 / no_sync:.1f} us/append)\n")
    acks = bench_acks(args.dir, args.messages, args.size)
    out.write(f"removals (sync per 1000): {acks:,.0f}/s ({1e6 / acks:.1f} us/remove)\n")
    reads = bench_reads(args.dir, args.messages, args.size)
    out.write(f"read_message: {reads:,.0f}/s ({1e6 / reads:.1f} us/read)\n")
    store_bytes, entry_bytes, ref_bytes = bench_memory(args.dir, args.messages * 10)
    out.write(
        f"memory per queued message (lazy recovery): store keeps {store_bytes:.1f} B, "
        f"a RecoveredMessage entry {entry_bytes:.0f} B, a bare ref in a list {ref_bytes:.0f} B\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
