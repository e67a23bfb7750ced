"""The one definitions model: snapshot, pure plan, one all-or-nothing apply, the JSON codec."""

from __future__ import annotations

import pytest

from amqplite.broker import Broker
from amqplite.broker.definitions import (
    ApplyFailed,
    BindingSpec,
    Definitions,
    ExchangeSpec,
    PermissionSpec,
    PlanRefused,
    QueueSpec,
    Target,
    TopicPermissionSpec,
    UserSpec,
    VHostSpec,
    apply,
    plan,
    rabbit_json,
    snapshot,
)
from amqplite.broker.definitions.records import from_records

HASH = "scrypt$16384$8$1$c2FsdA==$aGFzaA=="

WANTED = Definitions(
    vhosts=(
        VHostSpec(
            "/",
            exchanges=(
                ExchangeSpec("orders", "topic", arguments={"alternate-exchange": "unrouted"}),
                ExchangeSpec("unrouted", "fanout", internal=True),
            ),
            queues=(QueueSpec("orders.eu", arguments={"x-max-length": 10}), QueueSpec("lost")),
            bindings=(
                BindingSpec("orders", "orders.eu", "queue", "eu.#"),
                BindingSpec("unrouted", "lost"),
            ),
            limits={"max-queues": 10},
        ),
    ),
    users=(UserSpec("app", HASH, ("monitoring",), limits={"max-connections": 3}),),
    permissions=(PermissionSpec("app", "/", "", ".*", ".*"),),
    topic_permissions=(TopicPermissionSpec("app", "/", "orders", "^eu\\.", ".*"),),
)


def test_apply_then_snapshot_plans_nothing_to_do() -> None:
    broker = Broker(clock=lambda: 0.0)
    first = apply(broker, plan(snapshot(broker), WANTED))
    assert first.created == 1 + 2 + 2 + 2 + 1 + 1 + 1
    again = plan(snapshot(broker), WANTED)
    assert again.conflicts == () and again.creates == () and again.updates == ()
    # ... and the snapshot holds exactly what was wanted (positions aside).
    assert plan(WANTED, snapshot(broker)).creates == ()
    assert broker.users.users["app"].limits == {"max-connections": 3}
    assert broker.vhosts["/"].limits == {"max-queues": 10}


def test_plan_is_pure_and_apply_refuses_a_plan_with_conflicts_whole() -> None:
    broker = Broker(clock=lambda: 0.0)
    broker.add_vhost("/").declare_queue("orders.eu", durable=True)
    p = plan(snapshot(broker), WANTED)
    assert [(i.kind, i.name) for i in p.conflicts] == [("queue", "orders.eu")]
    assert "orders" not in broker.vhosts["/"].exchanges
    with pytest.raises(PlanRefused):
        apply(broker, p)
    assert "orders" not in broker.vhosts["/"].exchanges and broker.users.get("app") is None


def test_a_refusal_half_way_undoes_everything_this_apply_did() -> None:
    broker = Broker(clock=lambda: 0.0)
    bad = Definitions(
        vhosts=(
            VHostSpec(
                "v",
                exchanges=(ExchangeSpec("x", "direct"),),
                queues=(QueueSpec("q", arguments={"x-max-length": -1}),),  # the broker says 406
            ),
        )
    )
    with pytest.raises(ApplyFailed) as info:
        apply(broker, plan(snapshot(broker), bad))
    assert info.value.item.name == "q"
    assert "x-max-length" in str(info.value)
    assert "v" not in broker.vhosts


def test_restoring_skips_what_the_broker_refuses_and_keeps_the_rest() -> None:
    read = from_records(
        [
            (("vhost", ("/",)), {}),
            (("queue", ("/", "q")), {"auto_delete": False, "arguments": {}}),
            (("queue", ("/", "bad")), {"arguments": {"x-max-length": -1}}),
            (("binding", ("/", "amq.direct", "queue", "gone", "k", "0")), {"arguments": {}}),
            (("exchange", ("nowhere", "x")), {"type": "direct"}),
            (("permission", ("ghost", "/")), {"configure": "", "write": "", "read": ""}),
        ]
    )
    assert sorted(key for key, _ in read.unusable) == [
        ("exchange", ("nowhere", "x")),
        ("permission", ("ghost", "/")),
    ]
    broker = Broker(clock=lambda: 0.0)
    refused: list[str] = []
    apply(
        broker,
        plan(snapshot(broker), read.definitions),
        on_refused=lambda i, _e: refused.append(i.name),
    )
    assert sorted(refused) == ["amq.direct -> queue gone ('k')", "bad"]
    assert set(broker.vhosts["/"].queues) == {"q"}


def test_removing_the_callers_own_management_access_is_a_conflict_unless_forced() -> None:
    current = Definitions(users=(UserSpec("guest", HASH, ("administrator",)),))
    wanted = Definitions(users=(UserSpec("guest", HASH, ()),))
    (item,) = plan(current, wanted, Target(caller="guest")).items
    assert item.action == "conflict"
    assert "removes your own administrator tag" in item.detail and "--force" in item.detail
    (forced,) = plan(current, wanted, Target(caller="guest", force=True)).items
    assert forced.action == "update" and "forced" in forced.detail
    (other,) = plan(current, wanted, Target(caller="admin")).items
    assert other.action == "update"


def test_json_codec_round_trips_and_leaves_exclusive_queues_out() -> None:
    broker = Broker(clock=lambda: 0.0)
    apply(broker, plan(snapshot(broker), WANTED))
    conn = broker.open_connection("/")
    broker.vhosts["/"].declare_queue("mine", exclusive=True, owner=conn)
    broker.vhosts["/"].bind_queue("mine", "orders", "#")
    doc = rabbit_json.encode(snapshot(broker))
    assert "mine" not in {q["name"] for q in doc["queues"]}
    assert "mine" not in {b["destination"] for b in doc["bindings"]}
    decoded, warnings = rabbit_json.decode(doc)
    assert warnings == []
    assert rabbit_json.encode(decoded)["queues"] == doc["queues"]
    assert plan(decoded, WANTED).creates == ()


def test_vhost_limits_travel_as_rabbitmq_vhost_limits_parameters() -> None:
    doc = {
        "vhosts": [{"name": "a"}, {"name": "b"}],
        "parameters": [
            {
                "vhost": "a",
                "component": "vhost-limits",
                "name": "limits",
                "value": {"max-queues": 5},
            },
            {"vhost": "b", "component": "vhost-limits", "name": "limits", "value": []},
            {"vhost": "a", "component": "shovel", "name": "s", "value": {}},
        ],
    }
    defs, warnings = rabbit_json.decode(doc)
    limits = {v.name: v.limits for v in defs.vhosts}
    assert limits == {"a": {"max-queues": 5}, "b": {}}  # RabbitMQ writes cleared limits as []
    assert warnings == ["1 parameters not imported (amqplite has no parameters)"]
    assert rabbit_json.encode(defs)["parameters"] == [doc["parameters"][0]]


def test_plan_predicts_what_a_rabbitmq_refuses_from_its_version() -> None:
    quorum_ttl = QueueSpec("q", arguments={"x-queue-type": "quorum", "x-message-ttl": 1000})
    limited = QueueSpec("c", arguments={"x-delivery-limit": 5}, path="queues.c")
    wanted = Definitions(vhosts=(VHostSpec("/", queues=(quorum_ttl, limited)),))
    current = Definitions(vhosts=(VHostSpec("/"),))
    old = plan(current, wanted, Target(product="RabbitMQ", version="3.9.13"))
    assert [(i.name, i.action) for i in old.items[1:]] == [("q", "conflict"), ("c", "conflict")]
    assert "RabbitMQ 3.9.13 refuses x-message-ttl on a quorum queue" in old.items[1].detail
    new = plan(current, wanted, Target(product="RabbitMQ", version="3.10.8"))
    assert [(i.name, i.action) for i in new.items[1:]] == [("q", "create"), ("c", "conflict")]
    assert "add 'queue_type: quorum' to the queue" in new.items[2].detail
    ours = plan(current, wanted)  # amqplite takes both
    assert [i.action for i in ours.items[1:]] == ["create", "create"]
