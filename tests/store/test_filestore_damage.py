"""Recovery from torn, truncated, zero-filled and bit-flipped segment files.

A segment is built with several synced records; then, for every byte offset across its
last records, a copy of the data directory is damaged there and recovered.  Recovery must
not raise, must never hand back garbage, must recover every record before the damage (and,
for a bit flip, every record after it too), and must log what it discarded.  The same holds
for a segment sealed with a summary (``segindex``): a summary that no longer describes its
segment is not used.  A damaged, torn or other-version summary is never damage to the data:
recovery scans the segment instead and recovers exactly what it would have without one.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from store_helpers import describe, make_message

from amqplite.store import FileStore, RecoveredState
from amqplite.store.records import FILE_HEADER, FILE_HEADER_SIZE, OFFSET_MASK
from amqplite.store.segindex import INDEX_VERSION

Q = ("/", "q")
Q2 = ("/", "q2")
N_MESSAGES = 8
DAMAGED_TAIL_RECORDS = 3


@pytest.fixture(scope="module", params=["killed", "closed"])
def pristine(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> tuple[Path, list[int], list[bytes]]:
    """A data dir whose one segment holds N synced messages; their refs and bodies.
    "closed": closed cleanly, so the segment was sealed with a summary."""
    path = tmp_path_factory.mktemp("pristine") / "data"
    store = FileStore.open(path)
    store.recover()
    bodies = [b"body-%d-" % i + b"x" * (i * 7) for i in range(N_MESSAGES)]
    refs = [
        store.append(make_message(body, headers={"n": i} if i % 2 else None), [Q], 1000.0 + i)
        for i, body in enumerate(bodies)
    ]
    store.sync()
    if request.param == "closed":
        store.close()
        assert len(list((path / "messages").glob("*.idx"))) == 1
    else:
        store.abandon()
    return path, refs, bodies


def _segment(path: Path) -> Path:
    (segment,) = [p for p in (path / "messages").iterdir() if p.suffix == ".seg"]
    return segment


def _recover_copy(
    pristine_path: Path, target: Path, damage: object, offset: int
) -> tuple[RecoveredState, bytes]:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(pristine_path, target)
    segment = _segment(target)
    data = bytearray(segment.read_bytes())
    if damage == "truncate":
        del data[offset:]
    elif damage == "zero-fill":
        data[offset:] = bytes(len(data) - offset)
    else:
        data[offset] ^= 0x10
    segment.write_bytes(bytes(data))
    store = FileStore.open(target)
    try:
        state = store.recover()
    finally:
        store.abandon()
    return state, bytes(data)


def _messages(state: RecoveredState) -> list[tuple[bytes, int | None]]:
    return [
        (e.message.body, (e.message.headers or {}).get("n")) for e in state.queues[Q] if e.message
    ]


def _tail_offsets(refs: list[int], size: int) -> range:
    return range(refs[-DAMAGED_TAIL_RECORDS] & OFFSET_MASK, size)


@pytest.mark.parametrize("damage", ["truncate", "zero-fill"])
def test_damaged_tail_loses_only_the_damaged_records(
    pristine: tuple[Path, list[int], list[bytes]],
    fast_tmp: Path,
    damage: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path, refs, bodies = pristine
    size = _segment(path).stat().st_size
    starts = [ref & OFFSET_MASK for ref in refs] + [size]
    caplog.set_level(logging.WARNING, logger="amqplite.store")
    for offset in _tail_offsets(refs, size):
        caplog.clear()
        state, _ = _recover_copy(path, fast_tmp / "image", damage, offset)
        intact = sum(1 for end in starts[1:] if end <= offset)
        expected = [(bodies[i], i if i % 2 else None) for i in range(intact)]
        assert _messages(state) == expected, f"{damage} at {offset}"
        damaged = offset != starts[intact]  # cut inside a record, not at a boundary
        if damage == "zero-fill":
            damaged = offset < size
        assert (state.discarded_records > 0) == damaged, f"{damage} at {offset}"
        if damaged:
            assert state.discarded_bytes > 0
            assert "discarded" in caplog.text


def test_bit_flip_inside_a_record_loses_only_that_record(
    pristine: tuple[Path, list[int], list[bytes]],
    fast_tmp: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path, refs, bodies = pristine
    size = _segment(path).stat().st_size
    starts = [ref & OFFSET_MASK for ref in refs] + [size]
    caplog.set_level(logging.WARNING, logger="amqplite.store")
    for offset in _tail_offsets(refs, size):
        caplog.clear()
        state, _ = _recover_copy(path, fast_tmp / "image", "flip", offset)
        hit = max(i for i, start in enumerate(starts[:-1]) if start <= offset)
        got = [e.message.body for e in state.queues[Q] if e.message]
        assert got == [body for i, body in enumerate(bodies) if i != hit], f"flip at {offset}"
        assert state.discarded_records == 1
        assert "discarded 1 damaged region" in caplog.text


def test_damaged_tail_is_cut_off_so_new_writes_follow_good_data(
    pristine: tuple[Path, list[int], list[bytes]], tmp_path: Path
) -> None:
    path, refs, bodies = pristine
    last = refs[-1] & OFFSET_MASK
    _recover_copy(path, tmp_path / "image", "truncate", last + 5)
    store = FileStore.open(tmp_path / "image")
    state = store.recover()
    assert state.discarded_records == 0  # the torn bytes were removed by the first recovery
    store.append(make_message(b"after"), [Q])
    store.close()
    store = FileStore.open(tmp_path / "image")
    try:
        state = store.recover()
    finally:
        store.close()
    got = [e.message.body for e in state.queues[Q] if e.message]
    assert got == [*bodies[:-1], b"after"]


def test_segment_with_torn_header_is_ignored(tmp_path: Path) -> None:
    store = FileStore.open(tmp_path)
    store.recover()
    store.append(make_message(b"kept"), [Q])
    store.close()
    (tmp_path / "messages" / "0000000099.seg").write_bytes(b"AMQLSE")  # crash while creating
    store = FileStore.open(tmp_path)
    try:
        state = store.recover()
        assert [e.message.body for e in state.queues[Q] if e.message] == [b"kept"]
        assert state.discarded_bytes == 6
        assert not (tmp_path / "messages" / "0000000099.seg").exists()
    finally:
        store.close()


def test_damaged_ack_file_brings_messages_back_rather_than_garbage(tmp_path: Path) -> None:
    store = FileStore.open(tmp_path)
    store.recover()
    refs = [store.append(make_message(b"m%d" % i), [Q]) for i in range(4)]
    store.remove(Q, refs[0])
    store.sync()
    store.remove(Q, refs[1])
    store.sync()
    store.abandon()
    (ack,) = (tmp_path / "messages").glob("*.ack")
    data = ack.read_bytes()
    ack.write_bytes(data[:-3])  # tear the second removal record
    store = FileStore.open(tmp_path)
    try:
        state = store.recover()
    finally:
        store.close()
    assert [e.message.body for e in state.queues[Q] if e.message] == [b"m1", b"m2", b"m3"]
    assert state.discarded_records == 1
    assert len(data) > FILE_HEADER_SIZE


def test_record_inside_a_body_is_never_mistaken_for_a_real_one(tmp_path: Path) -> None:
    # A message whose body is itself a store segment (someone backing up a broker through
    # a broker).  Damage the outer record: resynchronising must not find the inner ones.
    inner = FileStore.open(tmp_path / "inner")
    inner.recover()
    for i in range(3):
        inner.append(make_message(b"inner-%d" % i), [Q])
    inner.close()
    image = _segment(tmp_path / "inner").read_bytes()
    outer = FileStore.open(tmp_path / "outer")
    outer.recover()
    outer.append(make_message(image), [Q])
    outer.close()
    segment = _segment(tmp_path / "outer")
    data = bytearray(segment.read_bytes())
    data[FILE_HEADER_SIZE + 3] ^= 0x01  # the outer record's length field
    segment.write_bytes(bytes(data))
    store = FileStore.open(tmp_path / "outer")
    try:
        state = store.recover()
    finally:
        store.close()
    assert state.queues == {}
    assert state.discarded_records == 1


@pytest.fixture(scope="module")
def summarised(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[bool, Any]]:
    """A data dir of several sealed segments, each with its summary, and what recovery
    (without bodies, then with) describes when it scans them all (no summaries)."""
    path = tmp_path_factory.mktemp("summarised") / "data"
    store = FileStore.open(path, segment_size=1024)
    store.recover()
    refs = []
    for i in range(40):
        headers = {"i": i} if i % 7 == 0 else None
        queues = [Q, Q2] if i % 11 == 0 else [Q if i % 3 else Q2]
        refs.append(store.append(make_message(b"b" * i, headers=headers), queues, 1000.0 + i))
    store.remove(Q, refs[1])
    store.mark_delivered(Q, refs[2])
    store.close()
    assert (
        len(list((path / "messages").glob("*.idx")))
        == len(list((path / "messages").glob("*.seg")))
        >= 3
    )
    scratch = tmp_path_factory.mktemp("scanned") / "data"
    expected = {}
    for load_bodies in (False, True):
        shutil.copytree(path, scratch)
        for summary in (scratch / "messages").glob("*.idx"):
            summary.unlink()
        store = FileStore.open(scratch)
        expected[load_bodies] = describe(store.recover(load_bodies=load_bodies))
        store.abandon()
        shutil.rmtree(scratch)
    return path, expected


def _recover_summarised(
    path: Path, target: Path, damage: Callable[[Path], None], load_bodies: bool = False
) -> RecoveredState:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(path, target)
    damage(target / "messages")
    store = FileStore.open(target)
    try:
        return store.recover(load_bodies=load_bodies)
    finally:
        store.abandon()


@pytest.mark.parametrize("load_bodies", [False, True])
def test_sealed_segments_are_recovered_from_their_summaries(
    summarised: tuple[Path, dict[bool, Any]],
    fast_tmp: Path,
    load_bodies: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path, expected = summarised
    segments = len(list((path / "messages").glob("*.seg")))
    caplog.set_level(logging.INFO, logger="amqplite.store")
    state = _recover_summarised(path, fast_tmp / "image", lambda _: None, load_bodies)
    assert describe(state) == expected[load_bodies]
    assert f"{segments} of them from their summaries" in caplog.text


def _first_summary(messages: Path) -> Path:
    return sorted(messages.glob("*.idx"))[0]


def test_a_summary_damaged_anywhere_is_not_used(
    summarised: tuple[Path, dict[bool, Any]], fast_tmp: Path
) -> None:
    path, expected = summarised
    size = _first_summary(path / "messages").stat().st_size
    for offset in range(size):

        def flip(messages: Path, offset: int = offset) -> None:
            summary = _first_summary(messages)
            data = bytearray(summary.read_bytes())
            data[offset] ^= 0x04
            summary.write_bytes(bytes(data))

        state = _recover_summarised(path, fast_tmp / "image", flip)
        assert describe(state) == expected[False], f"flip at {offset}"
        assert state.discarded_records == 0


def test_a_torn_summary_is_not_used(
    summarised: tuple[Path, dict[bool, Any]], fast_tmp: Path
) -> None:
    path, expected = summarised
    size = _first_summary(path / "messages").stat().st_size
    for length in range(size):

        def tear(messages: Path, length: int = length) -> None:
            summary = _first_summary(messages)
            summary.write_bytes(summary.read_bytes()[:length])

        state = _recover_summarised(path, fast_tmp / "image", tear)
        assert describe(state) == expected[False], f"torn at {length}"
        assert state.discarded_records == 0


@pytest.mark.parametrize("version", [INDEX_VERSION - 1, INDEX_VERSION + 1])
def test_a_summary_of_another_format_version_is_not_used(
    summarised: tuple[Path, dict[bool, Any]],
    fast_tmp: Path,
    version: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path, expected = summarised

    def other_version(messages: Path) -> None:
        for summary in messages.glob("*.idx"):
            data = bytearray(summary.read_bytes())
            magic, _version, reserved, number = FILE_HEADER.unpack_from(data, 0)
            FILE_HEADER.pack_into(data, 0, magic, version, reserved, number)
            summary.write_bytes(bytes(data))

    caplog.set_level(logging.INFO, logger="amqplite.store")
    state = _recover_summarised(path, fast_tmp / "image", other_version)
    assert describe(state) == expected[False]
    assert "0 of them from their summaries" in caplog.text


def test_a_summary_of_another_segment_is_not_used(
    summarised: tuple[Path, dict[bool, Any]], fast_tmp: Path
) -> None:
    path, expected = summarised

    def swap(messages: Path) -> None:
        first, second = sorted(messages.glob("*.idx"))[:2]
        image = first.read_bytes()
        first.write_bytes(second.read_bytes())
        second.write_bytes(image)

    state = _recover_summarised(path, fast_tmp / "image", swap)
    assert describe(state) == expected[False]


def test_a_summary_left_without_its_segment_is_deleted(
    summarised: tuple[Path, dict[bool, Any]], fast_tmp: Path
) -> None:
    path, _expected = summarised
    orphan = fast_tmp / "image" / "messages" / "0000009999.idx"

    def orphaned(messages: Path) -> None:
        shutil.copy(_first_summary(messages), messages / orphan.name)

    _recover_summarised(path, fast_tmp / "image", orphaned)
    assert not orphan.exists()
