"""Stream queues in the YAML topology: arguments, file:line errors, apply, plan and definitions."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from amqplite.broker import Broker
from amqplite.broker.definitions import apply as apply_definitions
from amqplite.broker.definitions import plan as plan_definitions
from amqplite.broker.definitions import rabbit_json, snapshot
from amqplite.broker.stream_queue import is_stream
from amqplite.topology import ApplyConflict, Config, apply, plan

Load = Callable[[str], Config]
Errors = Callable[[str], list[str]]

STREAM = """
exchanges:
  events: {type: fanout}
queues:
  events.history:
    queue_type: stream
    arguments:
      max_age: 7D
      max_length_bytes: 20GB
      stream_max_segment_size_bytes: 100MB
  audit.raw:
    arguments: {x-queue-type: stream, x-max-age: 12h, x-initial-cluster-size: 3}
bindings:
  - {source: events, destination: events.history}
"""


def new_broker() -> Broker:
    broker = Broker(clock=lambda: 1_000_000.0)
    if "/" not in broker.vhosts:
        broker.add_vhost("/")
    return broker


def test_stream_arguments_normalise_to_rabbitmqs(load: Load) -> None:
    queues = {q.name: q for q in load(STREAM).vhosts[0].queues}
    assert queues["events.history"].arguments == {
        "x-queue-type": "stream",
        "x-max-age": "7D",
        "x-max-length-bytes": 20_000_000_000,
        "x-stream-max-segment-size-bytes": 100_000_000,
    }
    assert queues["events.history"].durable is True
    assert queues["audit.raw"].arguments == {
        "x-queue-type": "stream",
        "x-max-age": "12h",
        "x-initial-cluster-size": 3,
    }


def test_bad_stream_settings_name_file_line_and_key(errors: Errors) -> None:
    assert errors(
        """
        queues:
          s1:
            queue_type: stream
            durable: false
            arguments:
              max_age: 7d
              message_ttl: 60s
              initial_cluster_size: 0
          s2: {queue_type: stream, auto_delete: true}
          plain:
            arguments: {max_age: 1h, x-stream-max-segment-size-bytes: 1000}
        """
    ) == [
        "topology.yaml:4:14: queues.s1.durable: stream queues are always durable "
        "(RabbitMQ refuses 'durable: false')",
        "topology.yaml:6:16: queues.s1.arguments.max_age: expected an age such as 7D, 12h or 30m "
        '(digits and one of Y M D h m s; M is months, m minutes), got "7d"',
        "topology.yaml:7:20: queues.s1.arguments.message_ttl: a stream keeps every message until "
        "retention (max_age, max_length_bytes) removes it, so it does not take x-message-ttl "
        "(RabbitMQ refuses it for queue type stream)",
        "topology.yaml:8:29: queues.s1.arguments.initial_cluster_size: expected a positive "
        "integer, got 0",
        "topology.yaml:9:41: queues.s2.auto_delete: stream queues are never auto-delete "
        "(RabbitMQ refuses 'auto_delete: true')",
        "topology.yaml:11:26: queues.plain.arguments.max_age: only stream queues take x-max-age "
        "(add 'queue_type: stream')",
        "topology.yaml:11:63: queues.plain.arguments.x-stream-max-segment-size-bytes: only "
        "stream queues take x-stream-max-segment-size-bytes (add 'queue_type: stream')",
    ]


def test_apply_declares_streams_and_a_second_apply_changes_nothing(load: Load) -> None:
    broker = new_broker()
    report = apply(load(STREAM), broker)
    assert report.created == 4  # exchange, two streams, binding
    history = broker.vhosts["/"].queues["events.history"]
    assert is_stream(history)
    assert history.args.max_age == 7 * 86400
    assert history.args.max_segment_size_bytes == 100_000_000
    again = apply(load(STREAM), broker)
    assert (again.created, again.updated) == (0, 0)


def test_a_changed_retention_is_a_conflict_with_its_line(load: Load) -> None:
    broker = new_broker()
    apply(load(STREAM), broker)
    changed = STREAM.replace("max_age: 7D", "max_age: 3D")
    p = plan(load(changed), broker)
    (conflict,) = [i for i in p.items if i.action == "conflict"]
    assert conflict.name == "events.history"
    with pytest.raises(ApplyConflict) as info:
        apply(load(changed), broker)
    (problem,) = info.value.problems
    assert str(problem).startswith(
        "topology.yaml:7:16: queues.events.history.arguments.max_age: queue 'events.history' "
        'in vhost \'/\' already exists with other arguments (x-max-age: existing "7D", file "3D")'
    )


def test_a_classic_queue_where_the_file_wants_a_stream_is_a_conflict(load: Load) -> None:
    broker = new_broker()
    broker.vhosts["/"].declare_queue("events.history", durable=True)
    p = plan(load(STREAM), broker)
    by_name = {i.name: i.action for i in p.items if i.kind == "queue"}
    assert by_name == {"events.history": "conflict", "audit.raw": "create"}


def test_definitions_export_and_import_keep_a_stream(load: Load) -> None:
    broker = new_broker()
    apply(load(STREAM), broker)
    exported = json.loads(json.dumps(rabbit_json.encode(snapshot(broker))))
    (q,) = [q for q in exported["queues"] if q["name"] == "events.history"]
    assert (q["durable"], q["auto_delete"]) == (True, False)
    assert q["arguments"]["x-queue-type"] == "stream"
    assert q["arguments"]["x-max-age"] == "7D"
    fresh = new_broker()
    defs, warnings = rabbit_json.decode(exported)
    assert warnings == []
    report = apply_definitions(fresh, plan_definitions(snapshot(fresh), defs))
    assert report.created >= 4
    imported = fresh.vhosts["/"].queues["events.history"]
    assert is_stream(imported) and imported.args.max_length_bytes == 20_000_000_000
