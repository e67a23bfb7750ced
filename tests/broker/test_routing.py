"""Exchange types, exchange-to-exchange bindings, alternate exchanges, internal exchanges, CC/BCC."""

from __future__ import annotations

from typing import Any

import pytest
from broker_helpers import World, publish

from amqplite.errors import ChannelError, ReplyCode


def counts(world: World) -> dict[str, int]:
    return {name: q.message_count for name, q in world.vhost.queues.items()}


def test_default_exchange_routes_by_queue_name(world: World) -> None:
    world.ch.declare_queue("q")
    assert publish(world.ch, "", "q").queues == 1
    assert publish(world.ch, "", "other").routed is False
    assert counts(world) == {"q": 1}


def test_direct_exchange_routes_on_exact_key(world: World) -> None:
    ch = world.ch
    for q in ("a", "b"):
        ch.declare_queue(q)
    ch.bind_queue("a", "amq.direct", "k1")
    ch.bind_queue("b", "amq.direct", "k1")
    ch.bind_queue("b", "amq.direct", "k2")
    assert publish(ch, "amq.direct", "k1").queues == 2
    assert publish(ch, "amq.direct", "k2").queues == 1
    assert publish(ch, "amq.direct", "k3").routed is False
    assert counts(world) == {"a": 1, "b": 2}


def test_fanout_ignores_the_key(world: World) -> None:
    ch = world.ch
    for q in ("a", "b"):
        ch.declare_queue(q)
        ch.bind_queue(q, "amq.fanout", "whatever")
    assert publish(ch, "amq.fanout", "zzz").queues == 2


def headers_routes(world: World, binding: dict[str, Any], headers: dict[str, Any] | None) -> bool:
    ch, _ = world.channel()
    name = f"h{len(world.vhost.queues)}"
    ch.declare_queue(name)
    ch.bind_queue(name, "amq.headers", "", binding)
    routed: bool = publish(ch, "amq.headers", "", headers=headers).routed
    ch.delete_queue(name)
    return routed


@pytest.mark.parametrize(
    ("binding", "headers", "routed"),
    [
        ({"a": 1, "b": "x"}, {"a": 1, "b": "x", "c": 3}, True),
        ({"a": 1, "b": "x"}, {"a": 1}, False),
        ({"x-match": "all", "a": 1}, {"a": 2}, False),
        ({"x-match": "any", "a": 1, "b": 2}, {"b": 2}, True),
        ({"x-match": "any", "a": 1, "b": 2}, {"c": 2}, False),
        ({"x-match": "any", "a": 1}, None, False),
        ({}, None, True),  # all with nothing to match matches everything
        ({"x-match": "all", "x-foo": "1"}, {}, True),  # x- keys ignored by all
        ({"x-match": "any", "x-foo": "1"}, {"x-foo": "1"}, False),  # ...and by any
        ({"x-match": "all-with-x", "x-foo": "1"}, {"x-foo": "1"}, True),
        ({"x-match": "all-with-x", "x-foo": "1"}, {}, False),
        ({"x-match": "any-with-x", "x-foo": "1", "a": 1}, {"x-foo": "1"}, True),
        ({"a": None}, {"a": "anything"}, True),  # void binding value: presence only
        ({"a": None}, {"b": 1}, False),
        ({"a": "1"}, {"a": 1}, False),  # types must match
        ({"a": True}, {"a": 1}, False),
    ],
)
def test_headers_exchange_matching(
    world: World, binding: dict[str, Any], headers: Any, routed: bool
) -> None:
    assert headers_routes(world, binding, headers) is routed


def test_exchange_to_exchange_binding_delivers_once_per_queue(world: World) -> None:
    ch = world.ch
    ch.declare_exchange("src", "topic")
    ch.declare_exchange("mid", "fanout")
    ch.declare_queue("q")
    ch.bind_exchange("mid", "src", "a.#")
    ch.bind_queue("q", "mid", "")
    ch.bind_queue("q", "src", "a.b")  # a second path to the same queue
    result = publish(ch, "src", "a.b")
    assert (result.routed, result.queues) == (True, 1)
    assert counts(world) == {"q": 1}
    ch.unbind_exchange("mid", "src", "a.#")
    assert publish(ch, "src", "a.c").routed is False


def test_exchange_binding_loops_terminate(world: World) -> None:
    ch = world.ch
    ch.declare_exchange("x1", "fanout")
    ch.declare_exchange("x2", "fanout")
    ch.declare_queue("q")
    ch.bind_exchange("x2", "x1", "")
    ch.bind_exchange("x1", "x2", "")
    ch.bind_exchange("x1", "x1", "")
    ch.bind_queue("q", "x2", "")
    assert publish(ch, "x1", "").queues == 1
    assert counts(world) == {"q": 1}


def test_deleting_an_exchange_removes_bindings_where_it_is_destination(world: World) -> None:
    ch = world.ch
    ch.declare_exchange("src", "fanout")
    ch.declare_exchange("dst", "fanout")
    ch.bind_exchange("dst", "src", "")
    ch.delete_exchange("dst")
    assert world.vhost.bindings() == []
    assert publish(ch, "src", "").routed is False


def test_alternate_exchange_takes_unroutable_messages(world: World) -> None:
    ch = world.ch
    ch.declare_exchange("ae", "fanout")
    ch.declare_queue("unrouted")
    ch.bind_queue("unrouted", "ae", "")
    ch.declare_exchange("main", "direct", arguments={"alternate-exchange": "ae"})
    ch.declare_queue("q")
    ch.bind_queue("q", "main", "known")
    assert publish(ch, "main", "known").queues == 1
    result = publish(ch, "main", "unknown")
    assert (result.routed, result.queues) == (True, 1)
    assert counts(world) == {"unrouted": 1, "q": 1}


def test_missing_alternate_exchange_leaves_message_unroutable(world: World) -> None:
    world.ch.declare_exchange("main", "direct", arguments={"alternate-exchange": "nope"})
    assert publish(world.ch, "main", "k").routed is False


def test_alternate_exchange_cycles_terminate(world: World) -> None:
    ch = world.ch
    ch.declare_exchange("a", "direct", arguments={"alternate-exchange": "b"})
    ch.declare_exchange("b", "direct", arguments={"alternate-exchange": "a"})
    assert publish(ch, "a", "k").routed is False


def test_publishing_to_internal_exchange_is_refused_but_it_routes_for_others(world: World) -> None:
    ch = world.ch
    ch.declare_exchange("inner", "fanout", internal=True)
    ch.declare_exchange("outer", "fanout")
    ch.bind_exchange("inner", "outer", "")
    ch.declare_queue("q")
    ch.bind_queue("q", "inner", "")
    assert publish(ch, "outer", "").queues == 1
    with pytest.raises(ChannelError) as exc:
        publish(ch, "inner", "")
    assert exc.value.reply_code == ReplyCode.ACCESS_REFUSED


def test_publishing_to_missing_exchange_is_not_found(world: World) -> None:
    with pytest.raises(ChannelError, match="no exchange 'nope' in vhost '/'"):
        publish(world.ch, "nope", "")


def test_cc_and_bcc_add_routing_keys_and_bcc_is_stripped(world: World) -> None:
    ch = world.ch
    for q in ("a", "b", "c"):
        ch.declare_queue(q)
        ch.bind_queue(q, "amq.direct", q)
    result = publish(ch, "amq.direct", "a", headers={"CC": ["b"], "BCC": ["c"], "keep": 1})
    assert result.queues == 3
    for q in ("a", "b", "c"):
        (entry,) = world.vhost.queues[q].browse()
        assert entry.message.headers == {"CC": ["b"], "keep": 1}
        assert entry.message.routing_key == "a"


def test_cc_through_the_default_exchange(world: World) -> None:
    ch = world.ch
    ch.declare_queue("a")
    ch.declare_queue("b")
    assert publish(ch, "", "a", headers={"CC": ["b", "missing"]}).queues == 2


def test_exchange_counters(world: World) -> None:
    ch = world.ch
    ch.declare_queue("q")
    ch.bind_queue("q", "amq.direct", "k")
    publish(ch, "amq.direct", "k")
    publish(ch, "amq.direct", "nope")
    stats = world.vhost.exchanges["amq.direct"].stats
    assert (stats.publish_in, stats.publish_out, stats.unroutable) == (2, 1, 1)


def test_a_route_walk_records_the_hops_the_router_takes_and_routes_the_same(world: World) -> None:
    from amqplite.broker.routing import RouteWalk
    from amqplite.message import BasicProperties, Message

    vhost = world.vhost
    vhost.declare_exchange("in", "fanout")
    vhost.declare_exchange("topic", "topic", arguments={"alternate-exchange": "lost"})
    vhost.declare_exchange("lost", "fanout", arguments={"alternate-exchange": "in"})
    for q in ("a", "b", "c"):
        vhost.declare_queue(q)
    vhost.bind_exchange("topic", "in", "")
    vhost.bind_queue("a", "topic", "x.*")
    vhost.bind_queue("a", "topic", "#.y")
    vhost.bind_queue("b", "topic", "z")
    vhost.bind_queue("c", "lost", "")
    for key, cc, expected in (("x.y", None, ["a"]), ("q", None, ["c"]), ("q", ["z"], ["b"])):
        message = Message("in", key, BasicProperties(headers={"CC": cc} if cc else None), b"")
        walk = RouteWalk()
        routed = vhost.route_recorded(vhost.exchanges["in"], message, walk)
        assert sorted(q.name for q in routed) == expected
        assert sorted(q.name for q in vhost.route(vhost.exchanges["in"], message)) == expected
        hops = {h.exchange: h for h in walk.hops}
        assert [h.exchange for h in walk.hops][:2] == ["in", "topic"]
        assert (hops["in"].via, hops["topic"].via) == ("published", "binding from 'in'")
        if key == "x.y":  # both bindings to "a" matched; the alternate was not needed
            assert [b.routing_key for b in hops["topic"].matched] == ["x.*", "#.y"]
            assert (hops["topic"].queues, hops["topic"].alternate_outcome) == (("a",), None)
            assert "lost" not in hops
        elif cc is None:  # nothing matched: on to the alternate, whose own alternate is visited
            assert hops["topic"].alternate_outcome == "taken"
            assert hops["lost"].via == "alternate of 'topic'"
            assert hops["lost"].queues == ("c",) and hops["lost"].alternate_outcome is None
        else:  # the CC key matched
            assert [b.routing_key for b in hops["topic"].matched] == ["z"]
            assert hops["topic"].unmatched == 2
