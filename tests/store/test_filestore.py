"""FileStore behaviour beyond the shared contract: space, locking, disk errors, startup cost."""

from __future__ import annotations

import errno
import logging
import os
import random
import threading
from pathlib import Path
from typing import Any

import pytest
from store_helpers import make_message

from amqplite.store import (
    FileStore,
    MemoryStore,
    StoreLockedError,
    StoreSyncError,
    StoreWriteError,
    open_store,
)
from amqplite.store.files import StoreFile

Q = ("/", "q")


def _open(path: Path, **options: Any) -> FileStore:
    store = FileStore.open(path, **options)
    store.recover()
    return store


def test_publish_ack_flow_keeps_disk_use_bounded(fast_tmp: Path) -> None:
    segment_size = 64 * 1024
    store = _open(fast_tmp, segment_size=segment_size)
    body = b"x" * 1024
    in_flight: list[int] = []
    peak = 0
    for batch in range(200):  # 20,000 messages of 1 KiB, 100 per batch, acked a batch later
        refs = [store.append(make_message(body), [Q]) for _ in range(100)]
        store.sync()
        store.remove_many(Q, in_flight)
        in_flight = refs
        if batch % 10 == 0:
            peak = max(peak, store.disk_usage())
    store.remove_many(Q, in_flight)
    store.sync()
    # 20 MiB went through; the disk never held more than a handful of segments.
    assert peak < 5 * segment_size
    assert store.segment_count <= 2
    store.close()
    reopened = _open(fast_tmp)
    try:
        assert reopened.disk_usage() < 2 * segment_size
    finally:
        reopened.close()


SLOW = ("/", "slow")


def _pin_messages_across_segments(store: FileStore, rounds: int) -> list[int]:
    """Interleave one long-lived message with a fast publish/ack flow, round after round."""
    pinned = []
    for i in range(rounds):
        pinned.append(store.append(make_message(b"slow-%d" % i, headers={"i": i}), [SLOW]))
        fast = [store.append(make_message(b"f" * 500), [Q]) for _ in range(20)]
        store.sync()
        store.remove_many(Q, fast)
        store.sync()
    return pinned


def test_long_lived_messages_are_compacted_out_of_dead_segments(fast_tmp: Path) -> None:
    segment_size = 8 * 1024
    store = _open(fast_tmp, segment_size=segment_size)
    pinned = _pin_messages_across_segments(store, 60)  # ~80 segments' worth of traffic
    # Without compaction each slow message would pin its own segment (60 x 8 KiB).  With it,
    # a sealed segment keeps more than 1/4 of its records alive, so the disk holds at most
    # ~4 records (of at most ~600 B here) per live message, plus the active segment.
    assert store.disk_usage() < 4 * 60 * 600 + 2 * segment_size < 60 * segment_size
    # The refs the broker holds keep working after their messages moved.
    assert [store.read_message(ref).body for ref in pinned] == [b"slow-%d" % i for i in range(60)]
    store.mark_delivered(SLOW, pinned[0])
    store.remove_many(SLOW, pinned[:10])
    store.close()
    store = FileStore.open(fast_tmp, segment_size=segment_size)
    state = store.recover()
    entries = state.queues[SLOW]
    assert [e.message.body for e in entries if e.message] == [b"slow-%d" % i for i in range(10, 60)]
    assert [e.message.headers["i"] for e in entries if e.message] == list(range(10, 60))
    store.remove_many(SLOW, [entry.ref for entry in entries])
    _pin_messages_across_segments(store, 0)
    store.sync()
    store.close()
    store = _open(fast_tmp, segment_size=segment_size)
    try:
        assert store.disk_usage() < 2 * segment_size
    finally:
        store.close()


def test_compaction_keeps_delivery_counts(fast_tmp: Path) -> None:
    store = _open(fast_tmp, segment_size=8 * 1024)
    first = store.append(make_message(b"counted"), [SLOW])
    store.mark_delivered(SLOW, first)
    store.mark_delivered(SLOW, first)
    _pin_messages_across_segments(store, 30)
    store.mark_delivered(SLOW, first)  # after the move: goes to the copy
    store.close()
    store = FileStore.open(fast_tmp)
    try:
        state = store.recover()
    finally:
        store.close()
    head = state.queues[SLOW][0]
    assert head.message is not None and head.message.body == b"counted"
    assert (head.delivery_count, head.redelivered) == (3, True)
    assert [e.delivery_count for e in state.queues[SLOW][1:]] == [0] * 30


def test_crash_before_compaction_retires_a_segment_recovers_each_message_once(
    fast_tmp: Path,
) -> None:
    store = _open(fast_tmp, segment_size=8 * 1024)
    pinned = [store.append(make_message(b"slow-%d" % i), [SLOW]) for i in range(3)]
    fast = [store.append(make_message(b"f" * 500), [Q]) for _ in range(40)]
    store.sync()
    store.remove_many(Q, fast)
    point = store.prepare_sync()
    assert point.retire  # a compaction copied the slow messages forward...
    point.fsync()
    store.abandon()  # ...and the process died before the old segment was deleted
    store = FileStore.open(fast_tmp)
    try:
        state = store.recover()
    finally:
        store.close()
    assert [e.message.body for e in state.queues[SLOW] if e.message] == [
        b"slow-0",
        b"slow-1",
        b"slow-2",
    ]
    assert all(e.ref not in pinned for e in state.queues[SLOW])


def test_recovery_reads_only_live_segments(fast_tmp: Path) -> None:
    store = _open(fast_tmp, segment_size=4096)
    refs = [store.append(make_message(b"z" * 300), [Q]) for _ in range(200)]
    store.remove_many(Q, refs[:-5])
    store.close()
    opened: list[str] = []

    def counting_opener(path: str, *, create: bool) -> StoreFile:
        opened.append(os.path.basename(path))
        return StoreFile(path, create=create)

    store = FileStore.open(fast_tmp, segment_size=4096, opener=counting_opener)
    state = store.recover()
    store.close()
    assert len(state.queues[Q]) == 5
    segments_read = [name for name in opened if name.endswith(".seg")]
    # 200 messages spread over ~17 segments; only the last one or two hold live ones,
    # plus the fresh active segment.
    assert len(segments_read) <= 3


def test_second_store_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    first = _open(tmp_path)
    with pytest.raises(StoreLockedError, match="in use by another broker"):
        FileStore.open(tmp_path)
    first.close()
    second = _open(tmp_path)
    second.close()


class _Disk:
    """A pretend disk that can fill up: the failure switch shared by every file it opens."""

    def __init__(self) -> None:
        self.full = False
        self.fsync_fails = False

    def opener(self, path: str, *, create: bool) -> StoreFile:
        return _FlakyFile(self, path, create=create)


class _FlakyFile(StoreFile):
    """A real file whose writes stop half way with ENOSPC while the disk is "full"."""

    __slots__ = ("disk",)

    def __init__(self, disk: _Disk, path: str, *, create: bool) -> None:
        super().__init__(path, create=create)
        self.disk = disk

    def write(self, data: bytes | bytearray) -> None:
        if self.disk.full:
            os.pwrite(self.fd, bytes(data[: len(data) // 2]), self.size)  # a torn write
            raise OSError(errno.ENOSPC, "No space left on device")
        super().write(data)

    def fsync(self) -> None:
        if self.disk.fsync_fails:
            raise OSError(errno.EIO, "Input/output error")
        super().fsync()


def test_failed_write_is_reported_and_never_recovered(tmp_path: Path) -> None:
    disk = _Disk()
    store = _open(tmp_path, opener=disk.opener)
    for i in range(3):
        store.append(make_message(b"before-%d" % i), [Q])
    store.sync()
    position = store.position
    disk.full = True
    with pytest.raises(StoreWriteError, match="No space left"):
        store.append(make_message(b"lost"), [Q])
    with pytest.raises(StoreWriteError):
        store.put_record("queue", ("/", "q"), {"durable": True})
    assert store.position == position  # nothing was counted as written
    disk.full = False
    store.append(make_message(b"after"), [Q])
    store.sync()
    store.abandon()
    store = FileStore.open(tmp_path)
    try:
        state = store.recover()
    finally:
        store.close()
    assert [e.message.body for e in state.queues[Q] if e.message] == [
        b"before-0",
        b"before-1",
        b"before-2",
        b"after",
    ]
    assert state.records == {}
    assert state.discarded_records == 0  # the torn bytes were cut off at once


def test_failed_removal_marks_are_retried_at_the_next_sync(tmp_path: Path) -> None:
    disk = _Disk()
    store = _open(tmp_path, opener=disk.opener)
    refs = [store.append(make_message(b"%d" % i), [Q]) for i in range(3)]
    store.sync()
    store.remove(Q, refs[0])
    disk.full = True
    store.sync()  # the mark cannot be written; the sync itself still succeeds
    disk.full = False
    store.remove(Q, refs[1])
    store.sync()
    store.abandon()
    store = FileStore.open(tmp_path)
    try:
        state = store.recover()
    finally:
        store.close()
    assert [e.message.body for e in state.queues[Q] if e.message] == [b"2"]


def test_fsync_failure_is_fatal_and_says_so(tmp_path: Path) -> None:
    disk = _Disk()
    store = _open(tmp_path, opener=disk.opener)
    store.append(make_message(), [Q])
    position = store.position
    disk.fsync_fails = True
    with pytest.raises(StoreSyncError, match="fsync failed"):
        store.sync()
    assert not store.is_durable(position)
    disk.fsync_fails = False
    store.close()


def test_topology_journal_is_compacted_and_keeps_every_live_record(fast_tmp: Path) -> None:
    store = _open(fast_tmp)
    for i in range(6000):  # ~1.5 MiB of churn over 100 live records
        store.put_record("queue", ("/", f"q{i % 100}"), {"i": i, "pad": "p" * 200})
    store.sync()
    journal = fast_tmp / "topology.log"
    assert journal.stat().st_size < 1024 * 1024
    store.abandon()
    store = FileStore.open(fast_tmp)
    try:
        state = store.recover()
    finally:
        store.close()
    assert len(state.records) == 100
    assert state.records[("queue", ("/", "q7"))]["i"] == 5907


def test_messages_are_read_back_across_many_segments(fast_tmp: Path) -> None:
    store = _open(fast_tmp, segment_size=2048)
    expected = [(b"%d" % i) * 200 for i in range(40)]
    refs = [store.append(make_message(body), [Q]) for body in expected]
    assert store.segment_count > 5
    assert [store.read_message(ref).body for ref in refs] == expected
    big = store.append(make_message(b"B" * 10_000), [Q])  # larger than a segment
    assert store.read_message(big).body == b"B" * 10_000
    store.close()


def test_free_bytes_reports_the_file_system(tmp_path: Path) -> None:
    store = _open(tmp_path)
    try:
        free = store.free_bytes()
        assert free is not None and free > 0
    finally:
        store.close()
    assert MemoryStore().free_bytes() is None


def test_bytes_written_counts_what_reached_the_files(tmp_path: Path) -> None:
    store = _open(tmp_path)
    try:
        before = store.bytes_written
        ref = store.append(make_message(b"x" * 5000), [Q])
        appended = store.bytes_written - before
        assert 5000 < appended < 5000 + 512  # the body plus its record framing
        store.remove(Q, ref)
        store.flush()  # the removal mark reaches its ack file
        assert store.bytes_written > before + appended
    finally:
        store.close()
    assert MemoryStore().bytes_written == 0


def test_open_store_picks_the_implementation(tmp_path: Path) -> None:
    assert isinstance(open_store(None), MemoryStore)
    store = open_store(str(tmp_path), segment_size=4096)
    assert isinstance(store, FileStore)
    store.recover()
    store.close()


def test_writing_before_recover_is_refused(tmp_path: Path) -> None:
    store = FileStore.open(tmp_path)
    try:
        with pytest.raises(Exception, match="recover"):
            store.append(make_message(), [Q])
    finally:
        store.close()


def test_memory_store_refuses_to_remove_what_it_does_not_hold() -> None:
    store = MemoryStore()
    store.recover()
    ref = store.append(make_message(), [Q])
    with pytest.raises(KeyError):
        store.remove(("/", "other"), ref)
    store.remove(Q, ref)
    with pytest.raises(KeyError):
        store.remove(Q, ref)


def test_segment_deleted_while_an_fsync_runs_elsewhere_is_closed_only_afterwards(
    fast_tmp: Path,
) -> None:
    store = _open(fast_tmp, segment_size=1024)
    first = [store.append(make_message(b"a" * 300), [Q]) for _ in range(3)]
    store.append(make_message(b"b" * 300), [Q])  # rolls: the first segment is now sealed
    point = store.prepare_sync()
    store.remove_many(Q, first)  # the first segment dies while its fsync is pending
    worker = threading.Thread(target=point.fsync)
    worker.start()
    worker.join()
    store.complete_sync(point)
    assert store.is_durable(point.position)
    store.sync()
    store.close()
    reopened = _open(fast_tmp)
    try:
        assert reopened.segment_count == 2  # the second segment and a fresh active one
    finally:
        reopened.close()


@pytest.mark.parametrize("seed", range(6))
def test_random_traffic_with_compaction_recovers_exactly_the_live_messages(
    fast_tmp: Path, seed: int, caplog: pytest.LogCaptureFixture
) -> None:
    # Small segments, skewed lifetimes and a few queues: segments roll, die, and get
    # compacted (several times over for long-lived messages) between restarts.
    caplog.set_level(logging.INFO, logger="amqplite.store")
    rng = random.Random(seed)
    queues = [("/", "a"), ("/", "b"), ("v", "c")]
    store = _open(fast_tmp / "d", segment_size=2048)
    live: dict[tuple[tuple[str, str], int], tuple[bytes, int]] = {}
    for n in range(1500):
        roll = rng.random()
        if roll < 0.45 or not live:
            members = rng.sample(queues, rng.choice([1, 1, 1, 2, 3]))
            body = b"%d-" % n + b"." * rng.choice([10, 50, 300])
            ref = store.append(make_message(body), members)
            live.update({(queue, ref): (body, 0) for queue in members})
        elif roll < 0.85:
            key = rng.choice(sorted(live)) if rng.random() < 0.3 else min(live)
            store.remove(*key)
            del live[key]
        elif roll < 0.95:
            key = rng.choice(sorted(live))
            store.mark_delivered(*key)
            live[key] = (live[key][0], live[key][1] + 1)
        else:
            store.sync()
        if n % 250 == 249:
            if n % 500 == 499:
                store.close()
            else:  # killed: whatever reached the OS survives, including flushed acks
                store.flush()
                store.abandon()
            store = FileStore.open(fast_tmp / "d", segment_size=2048)
            state = store.recover()
            got = {
                (queue, e.ref): (e.message.body if e.message else b"", e.delivery_count)
                for queue, entries in state.queues.items()
                for e in entries
            }
            assert sorted(got.values()) == sorted(live.values())
            for queue, entries in state.queues.items():  # queue order = publish order
                order = [int(e.message.body.split(b"-")[0]) for e in entries if e.message]
                assert order == sorted(order), queue
            live = got
    store.close()
    assert "compacted segment" in caplog.text
    assert "live memberships on disk" not in caplog.text  # the accounting never drifted


def test_size_and_fsync_latency_are_exposed_for_metrics(tmp_path: Path) -> None:
    store = _open(tmp_path)
    try:
        store.append(make_message(b"m" * 1000), [Q])
        store.sync()
        store.sync()  # nothing to fsync: not counted
        bounds, cumulative, count, total = store.fsync_histogram()
        assert count == 1 and total > 0
        assert cumulative[-1] <= count and len(cumulative) == len(bounds)
        assert store.size_bytes() >= 1000
    finally:
        store.close()


def test_compaction_keeps_enqueue_timestamps(fast_tmp: Path) -> None:
    store = _open(fast_tmp, segment_size=8 * 1024)
    first = store.append(make_message(b"timed"), [SLOW], 1234.5)
    _pin_messages_across_segments(store, 30)
    assert store.read_message(first).body == b"timed"
    store.close()
    store = FileStore.open(fast_tmp)
    try:
        state = store.recover()
    finally:
        store.close()
    head = state.queues[SLOW][0]
    assert head.message is not None and head.message.body == b"timed"
    assert head.timestamp == 1234.5


def test_a_fresh_data_directory_recovers_as_a_clean_shutdown(fast_tmp: Path) -> None:
    store = FileStore.open(fast_tmp / "new")
    try:
        assert store.recover().clean_shutdown
    finally:
        store.abandon()
    store = FileStore.open(fast_tmp / "new")
    try:
        assert not store.recover().clean_shutdown  # used, then not closed: a crash
    finally:
        store.close()
