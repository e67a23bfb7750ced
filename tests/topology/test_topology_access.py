"""Topic permissions and limits in the YAML topology: loaded with line-numbered errors,
applied to a broker (and enforced), converted from and to RabbitMQ's definitions JSON."""

from __future__ import annotations

from collections.abc import Callable

from amqplite.broker import Broker
from amqplite.broker.definitions import rabbit_json, snapshot
from amqplite.topology import Config, apply
from amqplite.topology.yaml_writer import config_to_yaml, definitions_to_config

Load = Callable[[str], Config]

TOPOLOGY = """
limits: {max-queues: 10, max-connections: -1}
users:
  app:
    password: app-pass
    permissions:
      /: {configure: ".*", write: ".*", read: ".*"}
      /b: {configure: ".*", write: ".*", read: ".*"}
    topic_permissions:
      /:
        amq.topic: {write: "^{username}\\\\.", read: ".*"}
    limits: {max-connections: 5, max-channels: 20}
vhosts:
  /b:
    limits: {max-connections: 0}
"""


def test_yaml_limits_and_topic_permissions_apply_and_are_enforced(load: Load) -> None:
    broker = Broker(clock=lambda: 1_000_000.0)
    broker.add_vhost("/")
    apply(load(TOPOLOGY), broker)
    assert broker.vhosts["/"].limits == {"max-queues": 10, "max-connections": -1}
    assert broker.vhosts["/b"].limits == {"max-connections": 0}
    app = broker.users.users["app"]
    assert app.limits == {"max-connections": 5, "max-channels": 20}
    assert app.can_topic("/", "amq.topic", "write", "app.orders")
    assert not app.can_topic("/", "amq.topic", "write", "other.orders")
    second = apply(load(TOPOLOGY), broker)
    assert (second.created, second.updated) == (0, 0)


def test_bad_limits_and_topic_permissions_are_reported_with_their_lines(
    errors: Callable[[str], list[str]],
) -> None:
    found = errors(
        """
        limits: {max-queues: lots, max-bogus: 1}
        users:
          app:
            password: pw
            topic_permissions:
              /:
                amq.topic: {write: "(", read: ".*"}
                logs: {write: ".*"}
            limits: {max-queues: 3}
        """
    )
    text = "\n".join(found)
    assert "limits.max-queues" in text and "whole number" in text
    assert "max-bogus" in text and "max-queues" in text
    assert "topic_permissions./.amq.topic.write" in text and "invalid regular expression" in text
    assert "missing 'read'" in text
    assert all(line.split(":")[1].isdigit() for line in found)  # file:line:column


def test_rabbitmq_definitions_with_topic_permissions_and_limits_round_trip_through_yaml() -> None:
    defs = {
        "vhosts": [{"name": "/"}],
        "users": [
            {
                "name": "app",
                "password_hash": "",
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": [],
                "limits": {"max-connections": 3},
            }
        ],
        "permissions": [
            {"user": "app", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
        ],
        "topic_permissions": [
            {"user": "app", "vhost": "/", "exchange": "amq.topic", "write": "^a", "read": "^b"}
        ],
        "parameters": [
            {
                "vhost": "/",
                "component": "vhost-limits",
                "name": "limits",
                "value": {"max-queues": 7},
            }
        ],
    }
    defs["users"][0]["password_hash"] = rabbit_json.rabbit_sha256("pw").partition("$")[2]
    config, warnings = definitions_to_config(defs)
    assert not [w for w in warnings if "limit" in w or "topic" in w]
    broker = Broker(clock=lambda: 1_000_000.0)
    broker.add_vhost("/")
    apply(config, broker)
    assert broker.vhosts["/"].limits == {"max-queues": 7}
    assert broker.users.users["app"].limits == {"max-connections": 3}
    assert broker.users.users["app"].topic_permissions["/"]["amq.topic"].write == "^a"
    exported = rabbit_json.encode(snapshot(broker))
    assert exported["topic_permissions"] == defs["topic_permissions"]
    text = config_to_yaml(config)
    assert "topic_permissions:" in text and "max-queues: 7" in text
