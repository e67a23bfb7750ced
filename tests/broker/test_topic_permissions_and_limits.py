"""Topic permissions, limits, passive-declare and user-deletion rules of the broker core,
with RabbitMQ's codes and texts (the same scenarios run over the wire against RabbitMQ in
tests/conformance/test_permissions_conformance.py)."""

from __future__ import annotations

from typing import Any

import pytest
from broker_helpers import RecordingSink, msg

from amqplite.broker import Broker, FakeClock, hash_password
from amqplite.broker.permissions import Permission, TopicPermission
from amqplite.errors import AMQPConnectionError, AMQPError, ChannelError, ReplyCode


def make_broker(*users: str) -> Broker:
    broker = Broker(clock=FakeClock())
    broker.add_vhost("/")
    for name in users:
        broker.users.add_user(name, hash_password("pw"))
        broker.users.set_permissions(name, "/", ".*", ".*", ".*")
    return broker


def refused(fn: Any, code: int) -> str:
    with pytest.raises(AMQPError) as exc:
        fn()
    assert exc.value.reply_code == code
    return exc.value.text


def test_patterns_search_empty_denies_and_a_bad_regex_denies() -> None:
    perm = Permission("orders", "", "(")
    assert perm.allows("configure", "new-orders-eu")  # a search, not a full match
    assert not perm.allows("configure", "invoices")
    assert not perm.allows("write", "anything")  # "" allows nothing
    assert not perm.allows("read", "(")  # not a valid regex: allows nothing
    broker = make_broker("bob")
    with pytest.raises(ValueError, match="invalid regular expression"):
        broker.users.set_permissions("bob", "/", "(", ".*", ".*")
    assert broker.users.users["bob"].permissions["/"].configure == ".*"  # unchanged


def test_topic_variables_are_expanded_with_escaped_names() -> None:
    perm = TopicPermission("amq.topic", "^{username}\\.", "^{vhost}\\.", user="a.b", vhost="v+1")
    assert perm.allows("write", "a.b.orders")
    assert not perm.allows("write", "axb.orders")  # the dot in the name is literal
    assert perm.allows("read", "v+1.x")
    assert not perm.allows("read", "vv1.x")


def topic_broker() -> tuple[Broker, Any]:
    broker = make_broker("bob")
    broker.users.set_topic_permissions("bob", "/", "amq.topic", "^allowed\\.", "^r\\.")
    ch = broker.open_connection("/", "bob").open_channel(1, RecordingSink())
    ch.declare_queue("q")
    return broker, ch


def test_topic_write_is_checked_on_the_routing_key() -> None:
    _, ch = topic_broker()
    ch.publish("amq.topic", "allowed.k", msg(routing_key="allowed.k"))
    text = refused(lambda: ch.publish("amq.topic", "denied.k", msg()), ReplyCode.ACCESS_REFUSED)
    assert text == (
        "write access to topic 'denied.k' in exchange 'amq.topic' in vhost '/' "
        "refused for user 'bob'"
    )


@pytest.mark.parametrize("header", ["CC", "BCC"])
def test_topic_write_is_checked_on_cc_and_bcc_keys(header: str) -> None:
    _, ch = topic_broker()
    bad = msg(routing_key="allowed.k", headers={header: ["allowed.ok", b"bad.cc"]})
    text = refused(lambda: ch.publish("amq.topic", "allowed.k", bad), ReplyCode.ACCESS_REFUSED)
    assert text.startswith("write access to topic 'bad.cc' in exchange 'amq.topic'")


def test_topic_permissions_apply_only_to_their_topic_exchange() -> None:
    _, ch = topic_broker()
    ch.declare_exchange("other", "topic")
    ch.publish("other", "denied.k", msg())  # no topic permission on it: unrestricted
    ch.publish("amq.direct", "denied.k", msg())  # not a topic exchange


def test_binding_checks_topic_read_on_the_binding_key() -> None:
    _, ch = topic_broker()
    ch.bind_queue("q", "amq.topic", "r.k")
    text = refused(lambda: ch.bind_queue("q", "amq.topic", "w.k"), ReplyCode.ACCESS_REFUSED)
    assert text == (
        "read access to topic 'w.k' in exchange 'amq.topic' in vhost '/' refused for user 'bob'"
    )


def test_a_permission_change_applies_to_the_next_operation() -> None:
    broker = make_broker("bob")
    ch = broker.open_connection("/", "bob").open_channel(1, RecordingSink())
    ch.declare_queue("q")
    ch.publish("", "q", msg(routing_key="q"))  # fills the channel's write cache
    broker.users.set_permissions("bob", "/", ".*", "^nothing$", ".*")
    refused(lambda: ch.publish("", "q", msg(routing_key="q")), ReplyCode.ACCESS_REFUSED)
    broker.users.set_topic_permissions("bob", "/", "amq.topic", "^a$", "")
    broker.users.set_permissions("bob", "/", ".*", ".*", ".*")
    ch = broker.open_connection("/", "bob").open_channel(1, RecordingSink())
    ch.publish("amq.topic", "a", msg())
    refused(lambda: ch.publish("amq.topic", "b", msg()), ReplyCode.ACCESS_REFUSED)


def test_vhost_connection_limit_zero_blocks_and_negative_means_none() -> None:
    broker = make_broker("bob")
    broker.add_vhost("/", limits={"max-connections": 1})
    broker.open_connection("/", "bob")
    text = refused(lambda: broker.open_connection("/", "bob"), ReplyCode.NOT_ALLOWED)
    assert text == "access to vhost '/' refused for user 'bob': connection limit (1) is reached"
    broker.open_connection("/", None, counted=False)  # the HTTP API's own: not counted
    broker.add_vhost("/", limits={"max-connections": 0})
    refused(lambda: broker.open_connection("/", "bob"), ReplyCode.NOT_ALLOWED)
    broker.add_vhost("/", limits={"max-connections": -1})
    for _ in range(3):
        broker.open_connection("/", "bob")


def test_user_connection_and_channel_limits() -> None:
    broker = make_broker("bob", "eve")
    broker.users.set_limits("bob", {"max-connections": 2, "max-channels": 2})
    first = broker.open_connection("/", "bob")
    second = broker.open_connection("/", "bob")
    text = refused(lambda: broker.open_connection("/", "bob"), ReplyCode.NOT_ALLOWED)
    assert text == "connection refused for user 'bob': user connection limit (2) is reached"
    broker.open_connection("/", "eve")  # other users are not affected
    first.open_channel(1, RecordingSink())
    second.open_channel(1, RecordingSink())  # channels count across connections
    with pytest.raises(AMQPConnectionError) as exc:
        second.open_channel(2, RecordingSink())
    assert exc.value.reply_code == ReplyCode.NOT_ALLOWED
    assert exc.value.text == (
        "number of channels opened for user 'bob' has reached the maximum allowed user limit of (2)"
    )
    first.close()
    second.open_channel(2, RecordingSink())


def test_node_connection_cap() -> None:
    broker = make_broker("bob")
    broker.connection_max = 1
    broker.open_connection("/", "bob")
    text = refused(lambda: broker.open_connection("/", "bob"), ReplyCode.NOT_ALLOWED)
    assert text == "connection refused: node connection limit (1) is reached"


def test_vhost_queue_limit() -> None:
    broker = make_broker("bob")
    broker.add_vhost("/", limits={"max-queues": 1})
    ch = broker.open_connection("/", "bob").open_channel(1, RecordingSink())
    ch.declare_queue("one")
    ch.declare_queue("one")  # redeclaring an existing queue is not a new queue
    with pytest.raises(ChannelError) as exc:
        ch.declare_queue("two")
    assert exc.value.reply_code == ReplyCode.PRECONDITION_FAILED
    assert exc.value.text == "cannot declare queue 'two': queue limit in vhost '/' (1) is reached"
    broker.add_vhost("/", limits={"max-queues": 0})
    ch = broker.open_connection("/", "bob").open_channel(1, RecordingSink())
    text = refused(lambda: ch.declare_queue("", exclusive=True), ReplyCode.PRECONDITION_FAILED)
    assert text.startswith("cannot declare queue 'amq.gen-")


def test_deleting_a_user_closes_its_connections_with_320() -> None:
    broker = make_broker("bob", "eve")
    closed: list[tuple[int, str]] = []
    bob = broker.open_connection("/", "bob")
    bob.closer = lambda code, text: closed.append((code, text))
    eve = broker.open_connection("/", "eve")
    assert broker.delete_user("bob")
    assert closed == [(ReplyCode.CONNECTION_FORCED, "user 'bob' is deleted")]
    assert bob.closed and not eve.closed
    assert "bob" not in broker.users and not broker.delete_user("bob")
