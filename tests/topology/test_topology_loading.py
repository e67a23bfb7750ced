"""What a valid file turns into: normalised arguments, defaults, users, vhosts, shipped configs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs

from amqplite.broker.passwords import verify_password
from amqplite.topology import (
    BindingSpec,
    Config,
    ExchangeSpec,
    QueueSpec,
    ServerSettings,
    load_config,
    load_string,
)

Load = Callable[[str], Config]
REPO = Path(__file__).resolve().parents[2]


def test_friendly_and_raw_arguments_normalise_to_rabbitmq_x_arguments(load: Load) -> None:
    config = load(
        """
        exchanges:
          dlx: {type: direct}
        queues:
          orders:
            queue_type: quorum
            arguments:
              message_ttl: 30s
              expires: 1h
              max_length: 1000
              max_length_bytes: 1MiB
              overflow: reject-publish
              dead_letter_exchange: dlx
              dead_letter_routing_key: dead
              single_active_consumer: true
              delivery_limit: 5
          prio:
            queue_type: classic
            arguments: {x-max-priority: 10, x-message-ttl: 60000}
        """
    )
    (vhost,) = config.vhosts
    assert vhost.queues == (
        QueueSpec(
            name="orders",
            arguments={
                "x-queue-type": "quorum",
                "x-message-ttl": 30_000,
                "x-expires": 3_600_000,
                "x-max-length": 1000,
                "x-max-length-bytes": 1_048_576,
                "x-overflow": "reject-publish",
                "x-dead-letter-exchange": "dlx",
                "x-dead-letter-routing-key": "dead",
                "x-single-active-consumer": True,
                "x-delivery-limit": 5,
            },
        ),
        # classic is the default queue type, so it is not spelled out as an argument
        QueueSpec(name="prio", arguments={"x-max-priority": 10, "x-message-ttl": 60000}),
    )


def test_defaults_make_exchanges_and_queues_durable_and_vhost_slash(load: Load) -> None:
    config = load(
        """
        exchanges:
          e: {type: fanout, alternate_exchange: amq.fanout}
        queues:
          q:
        bindings:
          - {source: e, destination: q}
          - {source: e, destination: amq.direct, destination_type: exchange, routing_key: k}
        """
    )
    assert config.server == ServerSettings(data_dir=Path.cwd() / "data")
    (vhost,) = config.vhosts
    assert vhost.name == "/"
    assert vhost.exchanges == (
        ExchangeSpec("e", "fanout", durable=True, arguments={"alternate-exchange": "amq.fanout"}),
    )
    assert vhost.queues == (QueueSpec("q", durable=True, auto_delete=False),)
    assert vhost.bindings == (
        BindingSpec("e", "q"),
        BindingSpec("e", "amq.direct", destination_type="exchange", routing_key="k"),
    )


def test_server_settings_units_and_data_dir_relative_to_the_file(
    load: Load, tmp_path: Path
) -> None:
    config = load(
        """
        server:
          port: 0
          data_dir: state/broker
          disk_free_limit: 2GiB
          default_vhost: main
          handshake_timeout: 2500
        queues: {q: {}}
        """
    )
    assert config.server.port == 0
    assert config.server.handshake_timeout == 2.5  # RabbitMQ's milliseconds, held in seconds
    assert config.server.data_dir == tmp_path.resolve() / "state" / "broker"
    assert config.server.disk_free_limit == 2 * 1024**3
    assert [v.name for v in config.vhosts] == ["main"]


def test_plain_password_is_hashed_at_load_and_not_kept(load: Load) -> None:
    config = load(
        """
        users:
          app:
            password: s3cret-value
            tags: "monitoring, management"
            permissions: {"/": {configure: "^app\\\\.", write: ".*", read: ".*"}}
        """
    )
    (user,) = config.users
    assert verify_password("s3cret-value", user.password_hash)
    assert user.tags == ("monitoring", "management")
    assert config.permissions_of("app")[0].configure == "^app\\."
    assert "s3cret-value" not in repr(config)
    assert "s3cret-value" not in repr(attrs.asdict(config))  # not in any field, repr or not


def test_password_hash_is_taken_as_given(load: Load) -> None:
    config = load(
        """
        users:
          svc: {password_hash: "scrypt$16384$8$1$c2FsdA==$aGFzaA==", tags: [administrator]}
        """
    )
    assert config.users[0].password_hash == "scrypt$16384$8$1$c2FsdA==$aGFzaA=="
    assert config.users[0].tags == ("administrator",)


def test_other_vhosts_hold_their_own_topology(load: Load) -> None:
    config = load(
        """
        users:
          guest:
            password: guest
            permissions:
              /: {configure: ".*", write: ".*", read: ".*"}
              /other: {configure: ".*", write: ".*", read: ".*"}
        vhosts:
          /other:
            exchanges: {x: {type: headers}}
            queues: {q: {}}
            bindings: [{source: x, destination: q, arguments: {x-match: any, a: 1}}]
        """
    )
    assert [v.name for v in config.vhosts] == ["/", "/other"]
    other = config.vhost("/other")
    assert other is not None
    assert other.bindings == (BindingSpec("x", "q", arguments={"x-match": "any", "a": 1}),)
    assert config.warnings == ()


def test_yaml_anchors_and_merge_keys_work_without_false_duplicates(load: Load) -> None:
    config = load(
        """
        queues:
          a: &bounded
            durable: false
            arguments: {max_length: 10}
          b:
            <<: *bounded
            durable: true
        """
    )
    a, b = config.vhosts[0].queues
    assert (a.durable, a.arguments) == (False, {"x-max-length": 10})
    assert (b.durable, b.arguments) == (True, {"x-max-length": 10})


def test_vhost_nobody_may_use_is_a_warning(load: Load) -> None:
    config = load(
        """
        users:
          u: {password: p, permissions: {"/": {configure: "", write: "", read: ".*"}}}
        vhosts:
          /lonely: {}
        """
    )
    assert [str(w) for w in config.warnings] == [
        "topology.yaml:4:3: warning: vhosts./lonely: no user has permissions on vhost '/lonely'; "
        "no client can use it"
    ]


def test_load_string_names_the_given_file() -> None:
    config = load_string("queues: {q: {}}\n", file="inline.yaml")
    assert config.source == "inline.yaml"
    assert config.vhosts[0].queues[0].position.file == "inline.yaml"


def test_shipped_default_config_loads_with_guest_administrator() -> None:
    config = load_config(REPO / "config" / "amqplite.yaml")
    assert config.warnings == ()
    assert config.server.port == 5672
    assert config.server.data_dir == REPO / "config" / "data"
    (guest,) = config.users
    assert guest.name == "guest" and guest.tags == ("administrator",)
    assert verify_password("guest", guest.password_hash)
    assert [(p.vhost, p.configure, p.write, p.read) for p in config.permissions_of("guest")] == [
        ("/", ".*", ".*", ".*")
    ]


def test_shipped_example_topology_shows_each_pattern() -> None:
    config = load_config(REPO / "config" / "topology.example.yaml")
    assert config.warnings == ()
    (vhost,) = config.vhosts
    types = {e.name: e.type for e in vhost.exchanges}
    assert {"direct", "fanout", "topic"} <= set(types.values())
    fanout_queues = [b.destination for b in vhost.bindings if types.get(b.source) == "fanout"]
    assert len(fanout_queues) >= 2
    topic_keys = [b.routing_key for b in vhost.bindings if types.get(b.source) == "topic"]
    assert any("*" in k.split(".") for k in topic_keys)
    assert any("#" in k.split(".") for k in topic_keys)
    dead_lettered = [q for q in vhost.queues if "x-dead-letter-exchange" in q.arguments]
    assert any("x-delivery-limit" in q.arguments for q in dead_lettered)
    assert any("x-message-ttl" in q.arguments for q in vhost.queues)
