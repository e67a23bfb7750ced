"""The broker core on a store: what survives a restart or a crash, and what does not."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from durability_helpers import Node, persistent

from amqplite.broker.passwords import hash_password
from amqplite.broker.queue import LAZY
from amqplite.message import BasicProperties, Message

X_DEATH = [
    {
        "count": 1,
        "reason": "rejected",
        "queue": "work",
        "time": datetime.datetime(2024, 5, 1, 12, 30, 5, tzinfo=datetime.UTC),
        "exchange": "",
        "routing-keys": ["work"],
    }
]


def test_durable_topology_survives_and_transient_topology_does_not(node: Node) -> None:
    ch, _ = node.channel()
    ch.declare_exchange("dx", "topic", durable=True, arguments={"alternate-exchange": "ae"})
    ch.declare_exchange("tx", "fanout")
    ch.declare_exchange("dx2", "fanout", durable=True)
    ch.declare_queue("dq", durable=True, arguments={"x-message-ttl": 60000})
    ch.declare_queue("tq")
    ch.bind_queue("dq", "dx", "a.#")
    ch.bind_queue("dq", "amq.direct", "k", {"x-match": "all"})
    ch.bind_queue("tq", "dx", "b.#")  # transient queue: binding not durable
    ch.bind_queue("dq", "tx", "")  # transient exchange: binding not durable
    ch.bind_exchange("dx2", "dx", "c.*")
    node.broker.add_vhost("other")
    node.broker.get_vhost("other").declare_queue("oq", durable=True)
    broker = node.restart()
    vhost = broker.get_vhost("/")
    assert set(vhost.exchanges) >= {"dx", "dx2"}
    assert "tx" not in vhost.exchanges and "tq" not in vhost.queues
    assert vhost.exchanges["dx"].type == "topic" and vhost.exchanges["dx"].alternate == "ae"
    assert vhost.queues["dq"].durable and vhost.queues["dq"].args.message_ttl == 60000
    bindings = {(b.source, b.destination, b.routing_key) for b in vhost.bindings()}
    assert bindings == {("dx", "dq", "a.#"), ("amq.direct", "dq", "k"), ("dx", "dx2", "c.*")}
    assert "oq" in broker.get_vhost("other").queues
    # The recovered binding routes.
    ch, _ = node.channel()
    assert ch.publish("dx", "c.x", persistent("via-e2e")).routed is False  # dx2 has no queue
    assert ch.publish("dx", "a.b", persistent("direct")).queues == 1


def test_deleted_entities_stay_deleted(node: Node) -> None:
    ch, _ = node.channel()
    ch.declare_exchange("dx", "direct", durable=True)
    ch.declare_queue("dq", durable=True)
    ch.declare_queue("gone", durable=True)
    ch.bind_queue("dq", "dx", "k")
    ch.bind_queue("gone", "dx", "k")
    ch.publish("", "gone", persistent("lost with its queue"))
    ch.unbind_queue("dq", "dx", "k")
    ch.delete_queue("gone")
    ch.declare_exchange("x2", "direct", durable=True)
    ch.delete_exchange("x2")
    broker = node.restart()
    vhost = broker.get_vhost("/")
    assert "gone" not in vhost.queues and "x2" not in vhost.exchanges
    assert vhost.bindings() == []
    assert node.report.discarded_messages == 0


def test_users_and_permissions_survive(node: Node) -> None:
    users = node.broker.users
    users.add_user("alice", hash_password("secret"), ("administrator",))
    users.set_permissions("alice", "/", "^a", ".*", "")
    users.add_user("bob", hash_password("pw"))
    users.set_permissions("bob", "/", ".*", ".*", ".*")
    users.delete_user("bob")
    broker = node.restart()
    alice = broker.users.get("alice")
    assert alice is not None and alice.tags == ("administrator",)
    assert alice.permissions["/"].configure == "^a" and alice.permissions["/"].read == ""
    assert broker.users.authenticate("alice", "secret") is alice
    assert broker.users.get("bob") is None


def test_limits_and_topic_permissions_survive(node: Node) -> None:
    broker = node.broker
    broker.add_vhost("/", limits={"max-queues": 3, "max-connections": -1})
    users = broker.users
    users.add_user("carol", hash_password("pw"), limits={"max-channels": 4})
    users.set_topic_permissions("carol", "/", "amq.topic", "^{username}\\.", "")
    users.set_topic_permissions("carol", "/", "logs", ".*", ".*")
    users.clear_topic_permissions("carol", "/", "logs")
    users.add_user("dave", hash_password("pw"))
    users.set_topic_permissions("dave", "/", "amq.topic", ".*", ".*")
    broker.delete_user("dave")
    broker = node.restart()
    assert broker.get_vhost("/").limits == {"max-queues": 3, "max-connections": -1}
    carol = broker.users.get("carol")
    assert carol is not None and carol.limits == {"max-channels": 4}
    assert list(carol.topic_permissions["/"]) == ["amq.topic"]
    assert carol.can_topic("/", "amq.topic", "write", "carol.x")
    assert not carol.can_topic("/", "amq.topic", "write", "dave.x")
    assert broker.users.get("dave") is None and node.report.discarded_records == 0


def test_persistent_messages_survive_in_order_with_properties(node: Node) -> None:
    ch, _ = node.channel()
    ch.declare_queue("dq", durable=True)
    ch.declare_queue("tq")
    props = BasicProperties(
        content_type="application/json",
        headers={"x-death": X_DEATH, "n": 7},
        delivery_mode=2,
        priority=3,
        correlation_id="c1",
        message_id="m1",
        timestamp=1_700_000_000,
    )
    ch.publish("", "dq", Message("", "dq", props, b"first"))
    ch.publish("", "dq", Message("", "dq", BasicProperties(delivery_mode=1), b"transient"))
    ch.publish("", "dq", persistent("second"))
    ch.publish("", "tq", persistent("in a transient queue"))
    broker = node.restart()
    vhost = broker.get_vhost("/")
    assert "tq" not in vhost.queues
    ch, sink = node.channel()
    ch.consume("dq", "c")
    assert sink.bodies == [b"first", b"second"]
    first = sink.deliveries[0][5]
    assert first.properties == props
    assert first.headers["x-death"] == X_DEATH
    # A clean restart keeps exact delivery marks: never delivered -> not redelivered.
    assert [d[2] for d in sink.deliveries] == [False, False]


def test_acked_messages_never_come_back_and_unacked_come_back_redelivered(node: Node) -> None:
    ch, sink = node.channel()
    ch.declare_queue("dq", durable=True)
    for i in range(6):
        ch.publish("", "dq", persistent(f"m{i}"))
    node.store.sync()
    ch.qos(4)
    ch.consume("dq", "c")
    tags = [d[1] for d in sink.deliveries]
    ch.ack(tags[0])
    ch.ack(tags[2])
    node.store.sync()  # the server syncs periodically; a kill -9 keeps flushed acks too
    node.crash()
    ch, sink = node.channel()
    ch.consume("dq", "c", no_ack=True)
    assert sink.bodies == [b"m1", b"m3", b"m4", b"m5"]
    assert all(d[2] for d in sink.deliveries)  # after a crash everything is redelivered
    node.restart()
    assert node.broker.get_vhost("/").queues["dq"].message_count == 0


def test_message_stored_once_for_all_its_durable_queues(node: Node) -> None:
    ch, _ = node.channel()
    ch.declare_exchange("fan", "fanout", durable=True)
    for name in ("a", "b", "c"):
        ch.declare_queue(name, durable=True)
        ch.bind_queue(name, "fan", "")
    ch.declare_queue("t")
    ch.bind_queue("t", "fan", "")
    before = node.store.position
    result = ch.publish("fan", "", persistent("shared"))
    assert result.durable_write and result.queues == 4
    assert node.store.position == before + 1  # one append for three durable queues
    assert ch.publish("fan", "", persistent("x", delivery_mode=1)).durable_write is False
    node.broker.get_vhost("/").queues["a"].purge()
    node.restart()
    queues = node.broker.get_vhost("/").queues
    assert (queues["a"].message_count, queues["b"].message_count) == (0, 1)
    assert [e.message.body for e in queues["c"].browse()] == [b"shared"]


def test_message_ttl_runs_from_the_original_enqueue_time(node: Node) -> None:
    ch, _ = node.channel()
    ch.declare_queue("dlq", durable=True)
    ch.declare_queue(
        "q",
        durable=True,
        arguments={
            "x-message-ttl": 10_000,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "dlq",
        },
    )
    ch.publish("", "q", persistent("old"))
    node.clock.advance(6)
    ch.publish("", "q", persistent("young"))
    node.clock.advance(2)
    node.restart()
    node.clock.advance(3)  # "old" is 11 s old now, "young" 5 s
    node.broker.tick()
    queues = node.broker.get_vhost("/").queues
    assert [e.message.body for e in queues["q"].browse()] == [b"young"]
    dead = [e.message for e in queues["dlq"].browse()]
    assert [m.body for m in dead] == [b"old"]
    assert dead[0].headers["x-death"][0]["reason"] == "expired"
    node.restart()  # the dead letter (persistent, durable DLQ) was stored too
    dead = [e.message for e in node.broker.get_vhost("/").queues["dlq"].browse()]
    assert [m.body for m in dead] == [b"old"] and dead[0].headers["x-death"][0]["count"] == 1


def test_message_expired_while_down_is_dead_lettered_at_recovery_not_delivered(
    node: Node,
) -> None:
    ch, _ = node.channel()
    ch.declare_queue("dlq", durable=True)
    ch.declare_queue(
        "q",
        durable=True,
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"},
    )
    ch.publish("", "q", persistent("short", expiration="1000"))
    ch.publish("", "q", persistent("long", expiration="100000"))
    node.store.close()
    node.clock.advance(5)
    node.broker, node.report = node._start()
    ch, sink = node.channel()
    ch.consume("q", "c", no_ack=True)
    assert sink.bodies == [b"long"]
    assert [e.message.body for e in node.broker.get_vhost("/").queues["dlq"].browse()] == [b"short"]


def test_max_length_and_expires_behave_the_same_after_restart(node: Node) -> None:
    ch, _ = node.channel()
    ch.declare_queue("capped", durable=True, arguments={"x-max-length": 2})
    ch.declare_queue("idle", durable=True, arguments={"x-expires": 5000})
    for i in range(3):
        ch.publish("", "capped", persistent(f"m{i}"))
    node.restart()
    ch, _ = node.channel()
    ch.publish("", "capped", persistent("m3"))
    queues = node.broker.get_vhost("/").queues
    assert [e.message.body for e in queues["capped"].browse()] == [b"m2", b"m3"]
    node.clock.advance(6)
    node.broker.tick()
    assert "idle" not in queues
    node.restart()
    queues = node.broker.get_vhost("/").queues
    assert "idle" not in queues
    assert [e.message.body for e in queues["capped"].browse()] == [b"m2", b"m3"]


def test_requeued_and_rejected_messages_keep_the_store_consistent(node: Node) -> None:
    ch, sink = node.channel()
    ch.declare_queue("q", durable=True)
    for i in range(4):
        ch.publish("", "q", persistent(f"m{i}"))
    ch.consume("q", "c")
    tags = [d[1] for d in sink.deliveries]
    ch.nack(tags[0], requeue=True)
    ch.reject(tags[1], requeue=False)  # dropped: no DLX
    ch.close()
    node.restart()
    ch, sink = node.channel()
    ch.consume("q", "c", no_ack=True)
    assert sink.bodies == [b"m0", b"m2", b"m3"]
    assert [d[2] for d in sink.deliveries] == [True, True, True]


def test_remove_messages_and_queue_delete_remove_from_the_store(node: Node) -> None:
    ch, _ = node.channel()
    ch.declare_queue("q", durable=True)
    for i in range(3):
        ch.publish("", "q", persistent(f"m{i}"))
    q = node.broker.get_vhost("/").queues["q"]
    middle = [e.mid for e in q.browse()][1]
    assert q.remove_messages({middle}) == 1
    node.restart()
    q = node.broker.get_vhost("/").queues["q"]
    assert [e.message.body for e in q.browse()] == [b"m0", b"m2"]


@pytest.mark.parametrize("load_bodies", [True, False])
def test_long_queue_keeps_bodies_on_disk_and_delivers_them_intact(
    fast_tmp: Path, load_bodies: bool
) -> None:
    node = Node("file", fast_tmp / "lazy", lazy_queue_bytes=1000, load_bodies=load_bodies)
    try:
        node.broker.add_vhost("/")
        ch, _ = node.channel()
        ch.declare_queue("q", durable=True)
        ch.declare_queue("lazy", durable=True, arguments={"x-queue-mode": "lazy"})
        for i in range(50):
            ch.publish("", "q", persistent(b"%03d" % i + b"x" * 97))
            ch.publish("", "lazy", persistent(b"L%d" % i))
        queues = node.broker.get_vhost("/").queues
        entries = list(queues["q"]._ready0)
        assert all(e.message is not LAZY for e in entries[:10])
        assert all(e.message is LAZY for e in entries[10:])
        assert all(e.message is LAZY for e in queues["lazy"]._ready0)
        ch2, sink = node.channel()
        ch2.consume("q", "c", no_ack=True)
        assert sink.bodies == [b"%03d" % i + b"x" * 97 for i in range(50)]
        node.restart()
        lazy = node.broker.get_vhost("/").queues["lazy"]
        assert all(e.message is LAZY for e in lazy._ready0)
        assert [e.message.body for e in lazy.browse()] == [b"L%d" % i for i in range(50)]
        ch, sink = node.channel()
        ch.consume("lazy", "c")
        assert sink.bodies == [b"L%d" % i for i in range(50)]
    finally:
        node.close()


def test_failed_store_write_refuses_the_publish_and_the_broker_keeps_serving(
    file_node: Node,
) -> None:
    node = file_node
    ch, _ = node.channel()
    ch.declare_queue("q", durable=True)
    ch.publish("", "q", persistent("before"))
    node.disk.full = True
    result = ch.publish("", "q", persistent("while full"))
    assert result.rejected and not result.durable_write and result.queues == 0
    assert ch.publish("", "q", persistent("transient", delivery_mode=1)).queues == 1
    assert node.broker.store_write_errors == 1
    node.disk.full = False
    assert ch.publish("", "q", persistent("after")).durable_write
    node.restart()
    q = node.broker.get_vhost("/").queues["q"]
    assert [e.message.body for e in q.browse()] == [b"before", b"after"]


@pytest.mark.parametrize("load_bodies", [True, False])
@pytest.mark.parametrize("damage", ["truncate", "zeros", "flip"])
def test_damaged_segment_tail_never_delivers_garbage_and_the_broker_starts(
    file_node: Node, damage: str, load_bodies: bool
) -> None:
    node = file_node
    node.load_bodies = load_bodies
    ch, _ = node.channel()
    ch.declare_queue("q", durable=True)
    for i in range(20):
        ch.publish("", "q", persistent(b"body-%02d" % i + b"." * 200))
    node.store.sync()
    node.store.abandon()
    segments = sorted((node.path / "messages").glob("*.seg"))
    data = bytearray(segments[-1].read_bytes())
    cut = len(data) - 150  # inside the last record
    if damage == "truncate":
        data = data[:cut]
    elif damage == "zeros":
        data[cut:] = bytes(len(data) - cut)
    else:
        data[cut] ^= 0x10
    segments[-1].write_bytes(bytes(data))
    node.broker, node.report = node._start()
    assert node.report.damaged_regions == 1
    ch, sink = node.channel()
    ch.consume("q", "c", no_ack=True)
    assert sink.bodies == [b"body-%02d" % i + b"." * 200 for i in range(19)]
