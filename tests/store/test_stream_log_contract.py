"""The stream-log contract, run against the memory and the file log (through their stores),
and the file log against every kind of damaged tail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from store_helpers import StoreHarness, make_message

from amqplite.message import Message
from amqplite.store import FileStore
from amqplite.store.streamfile import FileStreamLog, stream_dir
from amqplite.store.streamlog import StreamLog, StreamRecord

Q = ("/", "events")
T0 = 1_700_000_000.0


def open_log(h: StoreHarness, segment_bytes: int = 10_000, age: float | None = None) -> StreamLog:
    log: StreamLog = h.store.stream_log(Q, segment_bytes, age)
    return log


def msg(i: int, size: int = 10) -> Message:
    return make_message(f"m{i}".encode().ljust(size, b"."), headers={"i": i})


def fill(log: StreamLog, chunks: int, per_chunk: int, t: float = T0, step: float = 0.001) -> float:
    n = log.next_offset
    for _ in range(chunks):
        entries = []
        for _ in range(per_chunk):
            entries.append((t + n * step, msg(n)))
            n += 1
        log.append(entries)
    return t + n * step


@pytest.fixture(params=["memory", "file"])
def h(request: pytest.FixtureRequest, fast_tmp: Path) -> StoreHarness:
    harness = StoreHarness(request.param, fast_tmp / "data")
    yield harness
    harness.close()


def restart(h: StoreHarness) -> StreamLog:
    h.store.sync()
    h.restart()
    return open_log(h)


def test_append_returns_first_offset_and_offsets_are_per_message(h: StoreHarness) -> None:
    log = open_log(h)
    assert (log.first_offset, log.next_offset, log.last_chunk_offset) == (0, 0, None)
    assert log.append([(T0, msg(0)), (T0, msg(1)), (T0, msg(2))]) == 0
    assert log.append([(T0, msg(3))]) == 3
    assert log.next_offset == 4 and log.last_chunk_offset == 3
    records = log.read(0, 100)
    assert [r.offset for r in records] == [0, 1, 2, 3]
    assert [r.message.body[:2] for r in records] == [b"m0", b"m1", b"m2", b"m3"]
    assert records[2].message.properties.headers == {"i": 2}


def test_read_from_inside_a_chunk_and_clamped_to_first_kept(h: StoreHarness) -> None:
    log = open_log(h)
    fill(log, chunks=5, per_chunk=10)
    assert [r.offset for r in log.read(23, 4)] == [23, 24, 25, 26]
    assert [r.offset for r in log.read(-5, 2)] == [0, 1]
    assert log.read(50, 10) == []
    assert [r.offset for r in log.read(45, 100)] == [45, 46, 47, 48, 49]


def test_one_off_reads_decode_only_what_they_return(h: StoreHarness) -> None:
    log = open_log(h)
    fill(log, chunks=3, per_chunk=100)
    h.store.flush()
    for start, n in [(150, 1), (199, 3), (5, 120), (290, 50)]:
        looked = log.read(start, n, cache=False)
        assert [r.offset for r in looked] == list(range(start, min(start + n, 300)))
        assert [_seen(r) for r in looked] == [_seen(r) for r in log.read(start, n)]
    assert [r.message.body[:4] for r in log.read(150, 1, cache=False)] == [b"m150"]


def _seen(r: StreamRecord) -> tuple[object, ...]:
    return (r.offset, r.timestamp, r.message.body, r.message.properties.headers, r.filter_value)


def test_timestamp_seek_is_exact_to_the_message(h: StoreHarness) -> None:
    log = open_log(h)
    fill(log, chunks=4, per_chunk=100, step=0.01)  # message n at T0 + n/100 s
    assert log.offset_at(T0 + 1.234) == 124  # inside a chunk, not its first offset
    assert log.offset_at(T0 - 100) == 0
    assert log.offset_at(T0 + 3.99) == 399
    assert log.offset_at(T0 + 4.5) == 400
    assert log.read(124, 1)[0].timestamp == pytest.approx(T0 + 1.24, abs=0.0011)


def test_timestamps_never_go_backwards(h: StoreHarness) -> None:
    log = open_log(h)
    log.append([(T0 + 10, msg(0))])
    log.append([(T0 + 5, msg(1))])  # a wall clock stepped back
    assert [r.timestamp for r in log.read(0, 2)] == [T0 + 10, T0 + 10]
    assert log.offset_at(T0 + 10) == 0


def test_segments_roll_by_size_and_retention_drops_whole_sealed_segments(h: StoreHarness) -> None:
    log = open_log(h, segment_bytes=2_000)
    fill(log, chunks=40, per_chunk=5)
    assert log.segment_count > 3
    total = log.size_bytes
    removed = log.retain(T0 + 1, None, total // 2)
    assert removed >= 1
    assert log.size_bytes <= total // 2 + 2_000
    first = log.first_offset
    assert first > 0 and first % 5 == 0  # a chunk boundary: whole segments went
    assert log.read(0, 1)[0].offset == first
    # never the active one, however small the limit
    log.retain(T0 + 1, None, 0)
    assert log.segment_count == 1 and log.next_offset == 200
    assert log.read(log.first_offset, 1000)[-1].offset == 199


def test_quiet_stream_expires_by_age_through_age_rolls(h: StoreHarness) -> None:
    log = open_log(h, segment_bytes=500_000_000, age=60.0)
    log.append([(T0, msg(0))])
    assert log.roll_deadline() == pytest.approx(T0 + 60)
    log.retain(T0 + 1000, 600.0, None)
    assert log.first_offset == 0  # the active segment is never deleted
    log.tick(T0 + 61)
    assert log.roll_deadline() is None
    assert log.retain(T0 + 500, 600.0, None) == 0  # sealed but not old enough yet
    assert log.retain(T0 + 601, 600.0, None) == 1
    assert (log.first_offset, log.next_offset, log.segment_count) == (1, 1, 0)
    assert log.read(0, 10) == [] and log.first_timestamp is None
    assert log.append([(T0 + 700, msg(1))]) == 1
    assert [r.offset for r in log.read(0, 10)] == [1]


def test_state_survives_a_restart(h: StoreHarness) -> None:
    log = open_log(h, segment_bytes=3_000)
    fill(log, chunks=30, per_chunk=4)
    log.set_tracking("billing", 57)
    before = (log.first_offset, log.next_offset, log.segment_count, log.size_bytes)
    log = restart(h)
    assert (log.first_offset, log.next_offset, log.segment_count, log.size_bytes) == before
    assert log.tracking() == {"billing": 57}
    assert log.append([(T0 + 100, msg(120))]) == 120
    assert [r.offset for r in log.read(118, 10)] == [118, 119, 120]
    assert log.offset_at(T0 + 0.05) == 50


def test_deleting_a_log_removes_it(h: StoreHarness) -> None:
    log = open_log(h)
    fill(log, chunks=2, per_chunk=2)
    h.store.delete_stream_log(Q)
    fresh = open_log(h)
    assert (fresh.first_offset, fresh.next_offset) == (0, 0)
    if h.kind == "file":
        assert not os.listdir(stream_dir(str(h.path), *Q))


def test_appends_count_as_writes_a_confirm_waits_for(h: StoreHarness) -> None:
    log = open_log(h)
    h.store.sync()
    before = h.store.position
    log.append([(T0, msg(0))])
    assert h.store.position > before and h.store.needs_sync
    h.store.sync()
    assert h.store.is_durable(h.store.position)


# -- the file log against damaged tails --------------------------------------------------


def _segment_files(path: Path) -> list[str]:
    d = stream_dir(str(path), *Q)
    return sorted(os.path.join(d, n) for n in os.listdir(d) if n.endswith(".seg"))


def _damage(path: str, how: str) -> None:
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        if how == "torn":
            f.truncate(size - 7)
        elif how == "zero-filled":
            f.seek(size)
            f.write(b"\0" * 4096)
        elif how == "bit-flipped":
            f.seek(size - 3)
            byte = f.read(1)
            f.seek(size - 3)
            f.write(bytes([byte[0] ^ 0x10]))
        elif how == "garbage":
            f.seek(size)
            f.write(os.urandom(333))


@pytest.mark.parametrize("how", ["torn", "zero-filled", "bit-flipped", "garbage"])
@pytest.mark.parametrize("where", ["segment", "index"])
def test_damaged_tail_is_truncated_to_the_last_whole_chunk(
    fast_tmp: Path, how: str, where: str
) -> None:
    h = StoreHarness("file", fast_tmp / "data")
    log = open_log(h, segment_bytes=4_000)
    fill(log, chunks=20, per_chunk=3)  # the last chunk holds offsets 57..59
    h.store.sync()
    h.store.abandon()
    newest = _segment_files(fast_tmp / "data")[-1]
    _damage(newest if where == "segment" else newest[:-4] + ".idx", how)
    h.start()
    log = open_log(h)
    damaged_chunk_lost = where == "segment" and how in ("torn", "bit-flipped")
    expected_next = 57 if damaged_chunk_lost else 60
    assert log.next_offset == expected_next
    assert [r.offset for r in log.read(0, 1000)] == list(range(expected_next))
    # appends continue after the good data, and a second restart finds them
    assert log.append([(T0 + 9, msg(expected_next))]) == expected_next
    log = restart(h)
    assert [r.offset for r in log.read(0, 1000)] == list(range(expected_next + 1))
    h.close()


def test_a_failed_write_keeps_the_chunk_buffered_and_unconfirmed(fast_tmp: Path) -> None:
    from amqplite.store import StoreWriteError
    from amqplite.store.files import StoreFile

    class Full(StoreFile):
        fail = False

        def write(self, data: bytes | bytearray) -> None:
            if Full.fail and len(data) > 100:
                super().write(bytes(data[:50]))  # a torn write, then ENOSPC
                raise OSError(28, "No space left on device")
            super().write(data)

    store = FileStore.open(fast_tmp / "data", opener=Full)
    store.recover()
    log = store.stream_log(Q, 1_000_000, None)
    log.append([(T0, msg(0))])
    store.sync()
    Full.fail = True
    with pytest.raises(StoreWriteError):
        log.append([(T0, msg(1, size=500))])
    waiting = store.position
    store.sync()  # the failed chunk is retried, fails again: its publisher is not confirmed
    assert not store.is_durable(waiting)
    assert [r.offset for r in log.read(0, 10)] == [0, 1]  # readers see it (from memory)
    Full.fail = False
    store.sync()
    assert store.is_durable(waiting)
    assert log.append([(T0, msg(2))]) == 2
    store.sync()
    store.close()
    reopened = FileStreamLog(stream_dir(str(fast_tmp / "data"), *Q))
    assert [r.message.body[:2] for r in reopened.read(0, 10)] == [b"m0", b"m1", b"m2"]
    assert reopened.truncated_bytes == 0
    reopened.close()


def test_a_run_added_at_once_gets_an_offset_each_and_splits_at_the_chunk_limit(
    h: StoreHarness,
) -> None:
    """add_many (a run of publishes): one timestamp, an offset per message, at most a
    chunk's worth per call; messages sharing their properties (wire form) are stored
    and read back as when added one by one, also after a restart."""
    from amqplite.message import BasicProperties
    from amqplite.protocol import encode_properties
    from amqplite.store.streamlog import MAX_CHUNK_MESSAGES

    log = open_log(h, segment_bytes=10_000_000)
    props = BasicProperties(delivery_mode=2, headers={"x-stream-filter-value": "v"})
    raw = encode_properties(props)
    run = [Message("", "events", props, b"r%d" % i, raw) for i in range(MAX_CHUNK_MESSAGES + 10)]
    log.add(T0, msg(0))
    assert log.add_many(T0 + 1, run) == MAX_CHUNK_MESSAGES - 1  # the chunk buffer is full
    assert log.add_many(T0 + 1, run[MAX_CHUNK_MESSAGES - 1 :]) == 11  # flushed, then the rest
    log.flush()
    assert log.next_offset == MAX_CHUNK_MESSAGES + 11
    for restarted in (False, True):
        if restarted:
            log = restart(h)
        records = log.read(0, 10_000)
        assert [r.offset for r in records] == list(range(MAX_CHUNK_MESSAGES + 11))
        assert [r.message.body for r in records[1:]] == [m.body for m in run]
        assert {r.filter_value for r in records[1:]} == {"v"}
        assert {r.timestamp for r in records[1:]} == {T0 + 1}
        assert log.offset_at(T0 + 0.5) == 1


def test_a_sealed_segment_whose_index_lags_its_chunks_is_re_indexed(fast_tmp: Path) -> None:
    """Indexes are fsynced when their segment is sealed, not per chunk: after a crash the
    index of a sealed segment may miss its last entries (or hold some for chunks that did
    not reach the disk); the chunks in the segment are what counts."""
    h = StoreHarness("file", fast_tmp / "data")
    log = open_log(h, segment_bytes=4_000)
    fill(log, chunks=40, per_chunk=3)
    h.store.sync()
    h.store.abandon()
    segments = _segment_files(fast_tmp / "data")
    assert len(segments) >= 3
    first_index = segments[0][:-4] + ".idx"
    size = os.path.getsize(first_index)
    with open(first_index, "r+b") as f:
        f.truncate(size - 2 * 48)  # its last two entries never reached the disk
    second_index = segments[1][:-4] + ".idx"
    with open(second_index, "ab") as f:
        f.write(b"\0" * 48)  # a zero-filled entry past its end
    h.start()
    log = open_log(h)
    assert [r.offset for r in log.read(0, 1000)] == list(range(120))
    assert log.truncated_bytes == 0  # type: ignore[attr-defined]
    log = restart(h)
    assert [r.offset for r in log.read(0, 1000)] == list(range(120))
    h.close()


def test_only_segments_are_fsynced_per_chunk_and_an_index_once_sealed(fast_tmp: Path) -> None:
    h = StoreHarness("file", fast_tmp / "data")
    log = open_log(h, segment_bytes=4_000)
    fill(log, chunks=1, per_chunk=3)
    h.store.sync()
    fill(log, chunks=1, per_chunk=3)
    point = h.store.prepare_sync()
    assert [os.path.basename(f.path)[-4:] for f in point.files] == [".seg"]  # type: ignore[attr-defined]
    point.fsync()
    h.store.complete_sync(point)
    fill(log, chunks=30, per_chunk=3)  # rolls: the sealed segments' indexes go with the sync
    point = h.store.prepare_sync()
    synced = {os.path.basename(f.path) for f in point.files}  # type: ignore[attr-defined]
    point.fsync()
    h.store.complete_sync(point)
    sealed = [os.path.basename(p)[:-4] for p in _segment_files(fast_tmp / "data")][:-1]
    assert sealed and all(name + ".idx" in synced for name in sealed)
    h.close()
