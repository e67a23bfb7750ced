"""The store contract, run against both the memory and the file store."""

from __future__ import annotations

import datetime
import threading
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_helpers import StoreHarness, bodies, describe, make_message

from amqplite.message import BasicProperties, Message

Q1 = ("/", "q1")
Q2 = ("/", "q2")
OTHER_VHOST = ("other", "q1")

X_DEATH_HEADERS: dict[str, Any] = {
    "x-death": [
        {
            "count": 2,
            "reason": "rejected",
            "queue": "work",
            "time": datetime.datetime(2024, 5, 1, 12, 30, 5, tzinfo=datetime.UTC),
            "exchange": "",
            "routing-keys": ["work"],
        },
        {
            "count": 1,
            "reason": "expired",
            "queue": "wait",
            "time": datetime.datetime(2024, 5, 1, 12, 30, 4, 250000),
            "original-expiration": "1000",
            "routing-keys": ["wait", "more"],
        },
    ],
    "x-first-death-reason": "expired",
    "price": Decimal("12.50"),
    "big": 2**80,
    "neg": -(2**63),
    "ratio": 0.25,
    "flag": False,
    "nothing": None,
    "blob": b"\x00\xff\x01",
    "nested": {"a": [1, "two", {"three": [True]}], "empty": {}},
    "unicode": "zaż\u00f3\u0142\u0107 \U0001f600",
}

ALL_PROPERTIES = BasicProperties(
    content_type="application/json",
    content_encoding="gzip",
    headers=X_DEATH_HEADERS,
    delivery_mode=2,
    priority=7,
    correlation_id="corr-1",
    reply_to="amq.rabbitmq.reply-to",
    expiration="60000",
    message_id="m-1",
    timestamp=1_700_000_000,
    type="order.created",
    user_id="guest",
    app_id="tests",
    cluster_id="c",
)


def test_synced_messages_are_recovered_in_queue_order(harness: StoreHarness) -> None:
    store = harness.store
    for i in range(50):
        store.append(make_message(b"m%d" % i), [Q1])
    store.sync()
    state = harness.restart(clean=False)
    assert bodies(state, Q1) == [b"m%d" % i for i in range(50)]
    refs = [entry.ref for entry in state.queues[Q1]]
    assert refs == sorted(refs)


def test_removed_messages_do_not_come_back(harness: StoreHarness) -> None:
    store = harness.store
    refs = [store.append(make_message(b"m%d" % i), [Q1]) for i in range(10)]
    for ref in refs[:3]:
        store.remove(Q1, ref)
    store.remove_many(Q1, refs[5:7])
    store.sync()
    state = harness.restart(clean=False)
    assert bodies(state, Q1) == [b"m3", b"m4", b"m7", b"m8", b"m9"]


def test_message_shared_by_queues_lives_until_every_queue_removed_it(
    harness: StoreHarness,
) -> None:
    store = harness.store
    shared = store.append(make_message(b"shared"), [Q1, Q2, OTHER_VHOST])
    store.remove(Q1, shared)
    store.sync()
    assert store.read_message(shared).body == b"shared"
    state = harness.restart()
    assert Q1 not in state.queues
    assert bodies(state, Q2) == [b"shared"]
    assert bodies(state, OTHER_VHOST) == [b"shared"]
    assert state.queues[Q2][0].ref == state.queues[OTHER_VHOST][0].ref
    store = harness.store
    ref = state.queues[Q2][0].ref
    store.remove(Q2, ref)
    store.remove(OTHER_VHOST, ref)
    store.sync()
    assert harness.restart().queues == {}


def test_message_content_round_trips_exactly(harness: StoreHarness) -> None:
    message = Message(
        "amq.topic", "a.b.c", ALL_PROPERTIES, bytes(range(256)) * 3, raw_properties=b"\x80\x00raw"
    )
    harness.store.append(message, [Q1])
    plain = Message("", "q1", BasicProperties(), b"")
    harness.store.append(plain, [Q1])
    harness.store.sync()
    got, got_plain = (e.message for e in harness.restart().queues[Q1])
    assert got is not None and got_plain is not None
    assert got.properties == ALL_PROPERTIES
    assert type(got.properties.headers["x-death"][0]["time"]) is datetime.datetime  # type: ignore[index]
    assert (got.exchange, got.routing_key, got.body, got.raw_properties) == (
        "amq.topic",
        "a.b.c",
        bytes(range(256)) * 3,
        b"\x80\x00raw",
    )
    assert (got_plain.exchange, got_plain.properties, got_plain.body) == (
        "",
        BasicProperties(),
        b"",
    )
    assert got_plain.raw_properties is None


def test_topology_records_are_put_replaced_and_deleted(harness: StoreHarness) -> None:
    store = harness.store
    store.put_record("exchange", ("/", "orders"), {"type": "topic", "durable": True})
    store.put_record("queue", ("/", "work"), {"arguments": {"x-max-length": 10}})
    store.put_record("queue", ("/", "work"), {"arguments": X_DEATH_HEADERS})
    store.put_record("binding", ("/", "orders", "work", "#"), {})
    store.put_record("user", ("guest",), {"tags": ["administrator"], "hash": b"\x01\x02"})
    store.delete_record("binding", ("/", "orders", "work", "#"))
    store.delete_record("vhost", ("never-there",))
    store.sync()
    state = harness.restart(clean=False)
    assert state.records == {
        ("exchange", ("/", "orders")): {"type": "topic", "durable": True},
        ("queue", ("/", "work")): {"arguments": X_DEATH_HEADERS},
        ("user", ("guest",)): {"tags": ["administrator"], "hash": b"\x01\x02"},
    }


def test_unsupported_topology_value_is_refused(harness: StoreHarness) -> None:
    with pytest.raises(TypeError):
        harness.store.put_record("queue", ("/", "q"), {"bad": object()})


def test_append_without_queues_is_refused(harness: StoreHarness) -> None:
    with pytest.raises(ValueError):
        harness.store.append(make_message(), [])
    with pytest.raises(ValueError):
        harness.store.append(make_message(), [Q1, Q1])


def test_clean_shutdown_keeps_exact_delivery_counts(harness: StoreHarness) -> None:
    store = harness.store
    never, once, twice = (store.append(make_message(b"%d" % i), [Q1, Q2]) for i in range(3))
    store.mark_delivered(Q1, once)
    store.mark_delivered(Q1, twice)
    store.mark_delivered(Q1, twice)
    state = harness.restart(clean=True)
    assert state.clean_shutdown
    assert [(e.ref, e.delivery_count, e.redelivered) for e in state.queues[Q1]] == [
        (never, 0, False),
        (once, 1, True),
        (twice, 2, True),
    ]
    assert [e.redelivered for e in state.queues[Q2]] == [False, False, False]


def test_after_a_crash_every_recovered_message_is_redelivered(harness: StoreHarness) -> None:
    store = harness.store
    store.append(make_message(b"a"), [Q1])
    store.append(make_message(b"b"), [Q1])
    store.sync()
    state = harness.restart(clean=False)
    assert not state.clean_shutdown
    assert [e.redelivered for e in state.queues[Q1]] == [True, True]
    # ...and a crash after a clean restart is unclean again.
    assert not harness.restart(clean=False).clean_shutdown


def test_positions_tell_when_a_write_is_durable(harness: StoreHarness) -> None:
    store = harness.store
    assert not store.needs_sync
    store.append(make_message(), [Q1])
    p1 = store.position
    assert store.needs_sync and not store.is_durable(p1)
    store.sync()
    assert store.is_durable(p1) and not store.needs_sync
    store.append(make_message(), [Q1])
    p2 = store.position
    assert p2 > p1 and not store.is_durable(p2)
    store.sync()
    store.put_record("vhost", ("v",), {})
    assert store.needs_sync and not store.is_durable(store.position)
    store.sync()
    assert store.is_durable(store.position)


def test_acks_and_delivery_marks_never_hold_up_a_confirm(harness: StoreHarness) -> None:
    store = harness.store
    refs = [store.append(make_message(b"%d" % i), [Q1]) for i in range(3)]
    store.sync()
    store.mark_delivered(Q1, refs[0])
    store.remove(Q1, refs[0])
    store.remove(Q1, refs[1])
    store.flush()
    assert not store.needs_sync  # a consumer-only load costs no fsync...
    store.sync()  # ...but the next sync makes the acks durable
    assert bodies(harness.restart(clean=False), Q1) == [b"2"]


def test_flushed_acks_survive_a_killed_process(harness: StoreHarness) -> None:
    if harness.kind == "memory":
        pytest.skip("a memory store has no OS page cache to survive in")
    store = harness.store
    refs = [store.append(make_message(b"%d" % i), [Q1]) for i in range(3)]
    store.sync()
    store.remove(Q1, refs[1])
    store.flush()
    assert bodies(harness.restart(clean=False), Q1) == [b"0", b"2"]


def test_sync_can_fsync_in_a_worker_thread(harness: StoreHarness) -> None:
    store = harness.store
    ref = store.append(make_message(b"threaded"), [Q1])
    store.mark_delivered(Q1, ref)
    point = store.prepare_sync()
    store.append(make_message(b"after"), [Q1])  # written while the fsync runs
    worker = threading.Thread(target=point.fsync)
    worker.start()
    worker.join()
    store.complete_sync(point)
    assert store.is_durable(point.position)
    assert not store.is_durable(store.position)
    store.sync()
    assert bodies(harness.restart(clean=False), Q1) == [b"threaded", b"after"]


def test_recovery_without_bodies_reads_them_on_demand(harness: StoreHarness) -> None:
    for i in range(5):
        harness.store.append(make_message(b"lazy%d" % i, headers={"i": i}), [Q1])
    state = harness.restart(load_bodies=False)
    entries = state.queues[Q1]
    assert all(entry.message is None for entry in entries)
    got = [harness.store.read_message(entry.ref) for entry in entries]
    assert [m.body for m in got] == [b"lazy%d" % i for i in range(5)]
    assert [m.headers["i"] for m in got] == list(range(5))


@pytest.mark.parametrize("clean", [True, False])
def test_recovery_without_bodies_describes_messages_as_with_them(
    harness: StoreHarness, clean: bool
) -> None:
    """Runs of one queue with the same head (which a store may decode once), then a head
    that changes mid-run, headers, interleaved queues, a message in two queues, removals
    and delivery marks: without bodies, each message is described exactly as with them."""
    store = harness.store
    refs = []
    for i in range(40):
        queue = Q1 if i % 3 else Q2
        props: dict[str, Any] = {"priority": 1 if i < 20 else 2}
        if i % 7 == 0:
            props["headers"] = {"i": i}
        if i % 11 == 0:
            props["expiration"] = "60000"
        queues = [Q1, Q2] if i % 13 == 0 else [queue]
        refs.append(store.append(make_message(b"m" * i, **props), queues, 1000.0 + i))
    for i in range(0, 40, 5):
        store.remove(Q1 if i % 3 else Q2, refs[i])
    for i in range(1, 40, 4):
        if i % 5 == 0:
            continue  # removed above
        store.mark_delivered(Q1 if i % 3 else Q2, refs[i])
    store.sync()
    lazy = harness.restart(clean=clean, load_bodies=False)
    whole = harness.restart(load_bodies=True)
    assert lazy.queues.keys() == whole.queues.keys()
    for queue, entries in whole.queues.items():
        described = lazy.queues[queue]
        assert [(e.ref, e.delivery_count, e.timestamp) for e in described] == [
            (e.ref, e.delivery_count, e.timestamp) for e in entries
        ]
        assert all(e.redelivered == (e.delivery_count > 0 or not clean) for e in described)
        for got, full in zip(described, entries, strict=True):
            assert full.message is not None
            if got.message is not None:
                assert got.message.body == full.message.body
            if got.properties is not None:  # a store that describes without the body
                assert got.properties == full.message.properties
                assert got.size == len(full.message.body)


def test_recovery_without_bodies_after_a_removed_message_with_a_new_head(
    harness: StoreHarness,
) -> None:
    """A removed message whose head differs from its predecessor's, then one more with
    that head: the last must come back with its own properties, not the predecessor's."""
    store = harness.store
    store.append(make_message(b"xx", priority=1), [Q1], 1000.0)
    removed = store.append(make_message(b"yy", priority=2), [Q1], 1001.0)
    store.append(make_message(b"zz", priority=2), [Q1], 1002.0)
    store.remove(Q1, removed)
    store.sync()
    lazy = harness.restart(load_bodies=False)
    whole = harness.restart(load_bodies=True)
    for got, full in zip(lazy.queues[Q1], whole.queues[Q1], strict=True):
        assert full.message is not None
        if got.properties is not None:
            assert (got.properties, got.size) == (full.message.properties, len(full.message.body))


@pytest.mark.parametrize("load_bodies", [False, True])
def test_what_a_store_keeps_to_recover_faster_changes_nothing_it_recovers(
    harness: StoreHarness, load_bodies: bool
) -> None:
    """The file store summarises each sealed segment (``segindex``) and recovers from the
    summaries; recovering without them (scanning every record) must say the same."""
    store = harness.store
    refs = []
    for i in range(60):
        props: dict[str, Any] = {"priority": i // 20}
        if i % 9 == 0:
            props["headers"] = {"i": i}
        queues = [Q1, Q2] if i % 13 == 0 else [Q1 if i % 4 else Q2]
        timestamp = None if i % 17 == 5 else 1000.0 + i
        refs.append(store.append(make_message(b"s" * i, **props), queues, timestamp))
        if i == 30:
            harness.restart()  # the summaries of a store that was restarted midway
            store = harness.store
    store.remove(Q1, refs[1])
    store.remove(Q2, refs[4])
    store.mark_delivered(Q1, refs[2])
    summarised = harness.restart(load_bodies=load_bodies)
    scanned = harness.restart(load_bodies=load_bodies, forget_summaries=True)
    assert describe(summarised) == describe(scanned)
    assert sum(len(entries) for entries in scanned.queues.values()) == 60 + 5 - 2


def test_read_message_returns_content_while_a_queue_holds_it(harness: StoreHarness) -> None:
    store = harness.store
    refs = [store.append(make_message(b"r%d" % i, priority=i), [Q1, Q2]) for i in range(3)]
    store.remove(Q1, refs[1])
    got = store.read_message(refs[1])
    assert (got.body, got.properties.priority) == (b"r1", 1)
    assert [store.read_message(ref).body for ref in refs] == [b"r0", b"r1", b"r2"]


def test_recovered_refs_can_be_removed_after_restart(harness: StoreHarness) -> None:
    store = harness.store
    for i in range(4):
        store.append(make_message(b"%d" % i), [Q1])
    state = harness.restart()
    store = harness.store
    store.remove(Q1, state.queues[Q1][1].ref)
    store.remove(Q1, state.queues[Q1][3].ref)
    store.append(make_message(b"new"), [Q1])
    store.sync()
    assert bodies(harness.restart(clean=False), Q1) == [b"0", b"2", b"new"]


# A model-based check: random appends, removes, delivery marks, syncs and restarts
# against a plain dict model of what must be recovered.
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.sets(st.sampled_from([Q1, Q2, OTHER_VHOST]), min_size=1)),
        st.tuples(st.just("remove"), st.integers(0, 1000)),
        st.tuples(st.just("deliver"), st.integers(0, 1000)),
        st.tuples(st.just("sync"), st.none()),
        st.tuples(st.just("restart"), st.booleans()),
    ),
    max_size=40,
)

Model = dict[tuple[tuple[str, str], int], tuple[bytes, int]]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=_OPS)
def test_store_matches_a_model_under_random_operations(
    harness: StoreHarness, ops: list[tuple[str, Any]]
) -> None:
    # Start from an empty store whatever earlier examples left behind.
    for queue, entries in harness.restart().queues.items():
        harness.store.remove_many(queue, [entry.ref for entry in entries])
    assert harness.restart().queues == {}
    live: Model = {}  # (queue, ref) -> (body, delivery count)
    synced: Model = {}
    appended: Model = {}  # since the last sync
    for n, (op, arg) in enumerate(ops):
        store = harness.store
        if op == "append":
            body = b"body-%d" % n
            ref = store.append(make_message(body), sorted(arg))
            live.update({(queue, ref): (body, 0) for queue in arg})
            appended.update({(queue, ref): (body, 0) for queue in arg})
        elif op in ("remove", "deliver") and live:
            key = sorted(live)[arg % len(live)]
            if op == "remove":
                store.remove(*key)
                del live[key]
            else:
                store.mark_delivered(*key)
                live[key] = (live[key][0], live[key][1] + 1)
        elif op == "sync":
            store.sync()
            synced = dict(live)
            appended = {}
        elif op == "restart":
            clean = arg
            # Every other restart leaves the bodies on disk (the lazy path; for the file
            # store, its segment summaries' fast path), read back here.
            state = harness.restart(clean=clean, load_bodies=n % 2 == 0)
            read = harness.store.read_message
            got: Model = {
                (queue, e.ref): ((e.message or read(e.ref)).body, e.delivery_count)
                for queue, entries in state.queues.items()
                for e in entries
            }
            for entries in state.queues.values():
                assert [e.ref for e in entries] == sorted(e.ref for e in entries)
                assert all(e.redelivered == (e.delivery_count > 0 or not clean) for e in entries)
            # Compared by (queue, body), bodies being unique: compaction may have moved a
            # message, and after a restart its recovered ref is the one to use.
            if clean:
                assert _by_body(got) == _by_body(live)
            elif harness.kind == "memory":
                assert _bodies(got) == _bodies(synced)
            else:
                # A killed process leaves its writes in the page cache: nothing alive is lost,
                # removals since the last sync may be undone, nothing is invented.
                possible = (
                    _by_body(live).keys() | _by_body(synced).keys() | _by_body(appended).keys()
                )
                assert _by_body(live).keys() <= _by_body(got).keys() <= possible
            live = dict(got)
            synced = dict(got)
            appended = {}


def _bodies(model: Model) -> dict[tuple[tuple[str, str], int], bytes]:
    return {key: body for key, (body, _count) in model.items()}


def _by_body(model: Model) -> dict[tuple[tuple[str, str], bytes], int]:
    """(queue, body) -> delivery count: the model without refs."""
    return {(queue, body): count for (queue, _ref), (body, count) in model.items()}


def test_enqueue_timestamp_survives_restart_and_lazy_recovery(harness: StoreHarness) -> None:
    store = harness.store
    timed = store.append(make_message(b"timed"), [Q1, Q2], 1_700_000_000.125)
    untimed = store.append(make_message(b"untimed"), [Q1])
    store.sync()
    for load_bodies in (True, False):
        state = harness.restart(clean=False, load_bodies=load_bodies)
        got = {(e.ref, e.timestamp) for e in state.queues[Q1]}
        assert got == {(timed, 1_700_000_000.125), (untimed, None)}
        assert [e.timestamp for e in state.queues[Q2]] == [1_700_000_000.125]
        assert harness.store.read_message(timed).body == b"timed"
