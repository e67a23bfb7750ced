"""Declare / delete / bind / unbind rules, as RabbitMQ applies them."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from broker_helpers import World, publish

from amqplite.errors import AMQPConnectionError, ChannelError, ReplyCode


def code(
    exc: pytest.ExceptionInfo[ChannelError] | pytest.ExceptionInfo[AMQPConnectionError],
) -> int:
    return exc.value.reply_code


def test_redeclaring_a_queue_with_other_durability_is_inequivalent(world: World) -> None:
    world.ch.declare_queue("q")
    with pytest.raises(ChannelError) as exc:
        world.ch.declare_queue("q", durable=True)
    assert code(exc) == ReplyCode.PRECONDITION_FAILED
    assert exc.value.reply_text == (
        "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost '/': "
        "received 'true' but current is 'false'"
    )


def test_redeclaring_a_queue_with_other_arguments_is_inequivalent(world: World) -> None:
    world.ch.declare_queue("q", arguments={"x-max-length": 10})
    with pytest.raises(ChannelError, match="inequivalent arg 'x-max-length'"):
        world.ch.declare_queue("q", arguments={"x-max-length": 11})
    with pytest.raises(ChannelError, match="inequivalent arg 'x-max-length'"):
        world.ch.declare_queue("q")


def test_redeclaring_identically_returns_counts(world: World) -> None:
    world.ch.declare_queue("q", arguments={"x-max-length": 10, "x-custom": 1})
    publish(world.ch, "", "q")
    ok = world.ch.declare_queue("q", arguments={"x-max-length": 10, "x-custom": 2})
    assert (ok.queue, ok.message_count, ok.consumer_count) == ("q", 1, 0)


def test_passive_declare_of_missing_queue_is_not_found(world: World) -> None:
    with pytest.raises(ChannelError) as exc:
        world.ch.declare_queue("nope", passive=True)
    assert code(exc) == ReplyCode.NOT_FOUND
    assert exc.value.reply_text == "NOT_FOUND - no queue 'nope' in vhost '/'"


def test_passive_declare_of_missing_exchange_is_not_found(world: World) -> None:
    with pytest.raises(ChannelError, match="no exchange 'x' in vhost '/'") as exc:
        world.ch.declare_exchange("x", "direct", passive=True)
    assert code(exc) == ReplyCode.NOT_FOUND


def test_server_named_queue_gets_amq_gen_name(world: World) -> None:
    ok = world.ch.declare_queue("")
    assert re.fullmatch(r"amq\.gen-[A-Za-z0-9_-]{22}", ok.queue)
    assert ok.queue in world.vhost.queues


def test_queue_names_with_amq_prefix_are_reserved(world: World) -> None:
    with pytest.raises(ChannelError) as exc:
        world.ch.declare_queue("amq.mine")
    assert code(exc) == ReplyCode.ACCESS_REFUSED
    assert "reserved prefix 'amq.*'" in exc.value.reply_text


def test_exchange_names_with_amq_prefix_are_reserved_but_predeclared_ones_redeclare(
    world: World,
) -> None:
    with pytest.raises(ChannelError) as exc:
        world.ch.declare_exchange("amq.foo", "direct")
    assert (
        exc.value.reply_text
        == "ACCESS_REFUSED - exchange name 'amq.foo' contains reserved prefix 'amq.*'"
    )
    world.ch.declare_exchange("amq.direct", "direct", durable=True)
    world.ch.declare_exchange("amq.topic", "topic", passive=True)
    with pytest.raises(ChannelError, match="inequivalent arg 'durable'"):
        world.ch.declare_exchange("amq.direct", "direct", durable=False)


def test_predeclared_exchanges_exist_in_every_vhost(world: World) -> None:
    vhost = world.broker.add_vhost("other")
    assert {name: x.type for name, x in vhost.exchanges.items()} == {
        "": "direct",
        "amq.direct": "direct",
        "amq.fanout": "fanout",
        "amq.topic": "topic",
        "amq.headers": "headers",
        "amq.match": "headers",
    }


def test_redeclaring_exchange_with_other_type_is_inequivalent(world: World) -> None:
    world.ch.declare_exchange("x", "direct")
    with pytest.raises(ChannelError, match="inequivalent arg 'type' for exchange 'x' in vhost '/'"):
        world.ch.declare_exchange("x", "fanout")
    with pytest.raises(ChannelError, match="inequivalent arg 'durable'"):
        world.ch.declare_exchange("x", "direct", durable=True)
    with pytest.raises(ChannelError, match="inequivalent arg 'auto_delete'"):
        world.ch.declare_exchange("x", "direct", auto_delete=True)
    with pytest.raises(ChannelError, match="inequivalent arg 'internal'"):
        world.ch.declare_exchange("x", "direct", internal=True)


def test_redeclaring_exchange_with_other_alternate_exchange_is_inequivalent(world: World) -> None:
    world.ch.declare_exchange("x", "direct", arguments={"alternate-exchange": "ae"})
    with pytest.raises(ChannelError, match="inequivalent arg 'alternate-exchange'"):
        world.ch.declare_exchange("x", "direct")


def test_unknown_exchange_type_is_a_connection_error(world: World) -> None:
    with pytest.raises(AMQPConnectionError) as exc:
        world.ch.declare_exchange("x", "nonsense")
    assert code(exc) == ReplyCode.COMMAND_INVALID


def test_default_exchange_cannot_be_declared_bound_or_deleted(world: World) -> None:
    world.ch.declare_queue("q")
    world.ch.declare_exchange("x", "direct")
    actions: list[Callable[[], object]] = [
        lambda: world.ch.declare_exchange("", "direct"),
        lambda: world.ch.delete_exchange(""),
        lambda: world.ch.bind_queue("q", "", "q"),
        lambda: world.ch.unbind_queue("q", "", "q"),
        lambda: world.ch.bind_exchange("x", "", "k"),
    ]
    for action in actions:
        with pytest.raises(ChannelError) as exc:
            action()
        assert code(exc) == ReplyCode.ACCESS_REFUSED
    world.ch.declare_exchange("", "direct", passive=True)


def test_system_exchanges_cannot_be_deleted(world: World) -> None:
    with pytest.raises(ChannelError) as exc:
        world.ch.delete_exchange("amq.direct")
    assert code(exc) == ReplyCode.ACCESS_REFUSED


def test_delete_exchange_if_unused_refuses_bound_exchange(world: World) -> None:
    world.ch.declare_exchange("x", "direct")
    world.ch.declare_queue("q")
    world.ch.bind_queue("q", "x", "k")
    with pytest.raises(ChannelError, match="exchange 'x' in vhost '/' in use") as exc:
        world.ch.delete_exchange("x", if_unused=True)
    assert code(exc) == ReplyCode.PRECONDITION_FAILED
    world.ch.delete_exchange("x")
    assert "x" not in world.vhost.exchanges
    assert world.vhost.queues["q"].bindings == {}


def test_deleting_missing_entities_succeeds(world: World) -> None:
    world.ch.delete_exchange("ghost")
    assert world.ch.delete_queue("ghost") == 0


def test_delete_queue_if_unused_and_if_empty(world: World) -> None:
    world.ch.declare_queue("q")
    world.ch.consume("q", "c")
    with pytest.raises(ChannelError, match="queue 'q' in vhost '/' in use"):
        world.ch.delete_queue("q", if_unused=True)
    ch, _ = world.channel()
    ch.declare_queue("full")
    publish(ch, "", "full")
    with pytest.raises(ChannelError, match="queue 'full' in vhost '/' not empty"):
        ch.delete_queue("full", if_empty=True)
    ch2, _ = world.channel()
    assert ch2.delete_queue("full") == 1


def test_deleting_a_queue_cancels_its_consumers_server_side(world: World) -> None:
    world.ch.declare_queue("q")
    world.ch.consume("q", "c1")
    other, sink = world.channel(world.connection())
    other.consume("q", "c2")
    world.ch.delete_queue("q")
    assert world.sink.cancelled == ["c1"]
    assert sink.cancelled == ["c2"]
    assert other.consumers == {}


def test_binding_to_missing_entities_is_not_found(world: World) -> None:
    world.ch.declare_queue("q")
    with pytest.raises(ChannelError, match="no exchange 'nox' in vhost '/'"):
        world.ch.bind_queue("q", "nox", "k")
    ch, _ = world.channel()
    with pytest.raises(ChannelError, match="no queue 'noq' in vhost '/'"):
        ch.bind_queue("noq", "amq.direct", "k")


def test_binding_twice_makes_one_binding_and_unbinding_missing_is_fine(world: World) -> None:
    world.ch.declare_queue("q")
    world.ch.bind_queue("q", "amq.direct", "k")
    world.ch.bind_queue("q", "amq.direct", "k")
    assert len(world.vhost.bindings()) == 1
    world.ch.unbind_queue("q", "amq.direct", "k")
    world.ch.unbind_queue("q", "amq.direct", "k")
    assert world.vhost.bindings() == []
    assert publish(world.ch, "amq.direct", "k").routed is False


def test_bindings_differing_only_in_arguments_are_distinct_but_route_once(world: World) -> None:
    world.ch.declare_queue("q")
    world.ch.bind_queue("q", "amq.direct", "k", {"a": 1})
    world.ch.bind_queue("q", "amq.direct", "k", {"a": 2})
    assert len(world.vhost.bindings()) == 2
    assert publish(world.ch, "amq.direct", "k").queues == 1
    world.ch.unbind_queue("q", "amq.direct", "k", {"a": 1})
    assert publish(world.ch, "amq.direct", "k").queues == 1
    world.ch.unbind_queue("q", "amq.direct", "k", {"a": 2})
    assert publish(world.ch, "amq.direct", "k").routed is False


def test_auto_delete_exchange_goes_with_its_last_binding(world: World) -> None:
    world.ch.declare_exchange("ad", "fanout", auto_delete=True)
    world.ch.declare_queue("q1")
    world.ch.declare_queue("q2")
    world.ch.bind_queue("q1", "ad", "")
    world.ch.bind_queue("q2", "ad", "")
    world.ch.unbind_queue("q1", "ad", "")
    assert "ad" in world.vhost.exchanges
    world.ch.delete_queue("q2")
    assert "ad" not in world.vhost.exchanges


def test_auto_delete_exchange_without_bindings_stays(world: World) -> None:
    world.ch.declare_exchange("ad", "fanout", auto_delete=True)
    assert "ad" in world.vhost.exchanges


def test_empty_queue_name_means_last_declared_queue(world: World) -> None:
    ok = world.ch.declare_queue("")
    world.ch.bind_queue("", "amq.fanout", "")
    publish(world.ch, "amq.fanout", "")
    assert world.ch.purge_queue("") == 1
    assert world.vhost.queues[ok.queue].message_count == 0
    ch, _ = world.channel()
    with pytest.raises(ChannelError, match="no previously declared queue"):
        ch.purge_queue("")


def test_invalid_queue_arguments_name_the_argument(world: World) -> None:
    cases = {
        "x-max-length": -1,
        "x-message-ttl": "soon",
        "x-expires": 0,
        "x-max-length-bytes": -5,
        "x-overflow": "explode",
        "x-max-priority": 256,
        "x-single-active-consumer": "yes",
        "x-delivery-limit": -1,
        "x-queue-type": "lazy",
        "x-dead-letter-exchange": 5,
    }
    for arg, value in cases.items():
        with pytest.raises(ChannelError) as exc:
            world.vhost.declare_queue("q", arguments={arg: value})
        assert code(exc) == ReplyCode.PRECONDITION_FAILED
        assert f"invalid arg '{arg}' for queue 'q' in vhost '/'" in exc.value.reply_text
    with pytest.raises(ChannelError, match=r"\{value_negative,-1\}"):
        world.vhost.declare_queue("q", arguments={"x-max-length": -1})
    assert "q" not in world.vhost.queues


def test_dead_letter_routing_key_needs_an_exchange(world: World) -> None:
    with pytest.raises(ChannelError, match="x-dead-letter-routing-key"):
        world.ch.declare_queue("q", arguments={"x-dead-letter-routing-key": "k"})


def test_quorum_queue_is_durable_and_cannot_be_exclusive(world: World) -> None:
    world.ch.declare_queue("qq", durable=True, arguments={"x-queue-type": "quorum"})
    assert world.vhost.queues["qq"].durable
    with pytest.raises(ChannelError, match="non-durable"):
        world.ch.declare_queue("qq2", arguments={"x-queue-type": "quorum"})
    world.ch.declare_queue("cq", arguments={"x-queue-type": "classic"})
    world.ch.declare_queue("cq")  # classic is the default: equivalent


def test_bind_with_invalid_x_match_is_precondition_failed(world: World) -> None:
    world.ch.declare_queue("q")
    with pytest.raises(ChannelError, match="x-match") as exc:
        world.ch.bind_queue("q", "amq.headers", "", {"x-match": "some"})
    assert code(exc) == ReplyCode.PRECONDITION_FAILED


def test_redeclare_resets_nothing_but_x_expires_timer(world: World) -> None:
    world.ch.declare_queue("q", arguments={"x-expires": 1000})
    world.clock.advance(0.9)
    world.ch.declare_queue("q", arguments={"x-expires": 1000})
    world.clock.advance(0.9)
    world.broker.tick()
    assert "q" in world.vhost.queues
    world.clock.advance(0.2)
    world.broker.tick()
    assert "q" not in world.vhost.queues
