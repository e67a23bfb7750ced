"""Our YAML <-> RabbitMQ definitions JSON (pure conversion, no broker).

The JSON side is the definitions model's one codec (``amqplite.broker.definitions.rabbit_json``),
the YAML side ``amqplite.topology.yaml_writer``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from ops_support import DATA

from amqplite.broker.definitions import rabbit_json
from amqplite.broker.definitions.rabbit_json import DefinitionsError
from amqplite.topology import Config, load_string
from amqplite.topology.yaml_writer import config_to_yaml, definitions_to_config, document, portable


def config_to_definitions(config: Config) -> dict[str, Any]:
    return rabbit_json.encode(config.definitions)


def definitions_to_document(
    defs: dict[str, Any], *, only_vhost: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    decoded, warnings = rabbit_json.decode(defs, vhost=only_vhost)
    kept, dropped = portable(decoded)
    return document(kept), warnings + dropped


def _sample() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "rabbitmq-definitions.json").read_text())
    return data


def test_password_hashes_keep_their_scheme_both_ways() -> None:
    config, warnings = definitions_to_config(_sample())
    assert warnings == []
    users = {u.name: u.password_hash for u in config.users}
    assert users["shop-app"] == "rabbitsha256$gx1lfnjWBorRDJ4aaxIWOQrdXB/anKHU5TpzOE08wGZ7/i6x"
    back = {u["name"]: u for u in config_to_definitions(config)["users"]}
    assert back["shop-app"]["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    assert back["shop-app"]["password_hash"] == "gx1lfnjWBorRDJ4aaxIWOQrdXB/anKHU5TpzOE08wGZ7/i6x"
    ours = load_string(
        "users:\n  a: {password_hash: 'scrypt$16384$8$1$c2FsdA==$aGFzaA==', "
        "permissions: {/: {configure: '', write: '', read: ''}}}\n"
    )
    (user,) = config_to_definitions(ours)["users"]
    assert (user["hashing_algorithm"], user["password_hash"]) == (
        "amqplite_scrypt",
        "scrypt$16384$8$1$c2FsdA==$aGFzaA==",
    )


def test_quorum_queue_type_is_kept_and_classic_is_the_default() -> None:
    doc, _ = definitions_to_document(_sample())
    queues = doc["vhosts"]["shop"]["queues"]
    assert queues["orders.eu"]["queue_type"] == "quorum"
    assert queues["orders.failed"] == {}  # x-queue-type: classic dropped: it is the default


def test_dangling_dead_letter_and_alternate_exchanges_are_dropped_with_warnings() -> None:
    defs = {
        "vhosts": [{"name": "/"}],
        "exchanges": [
            {"name": "x", "vhost": "/", "type": "topic", "arguments": {"alternate-exchange": "gone"}}
        ],
        "queues": [
            {"name": "q", "vhost": "/", "arguments": {"x-dead-letter-exchange": "gone2",
                                                      "x-dead-letter-routing-key": "k"}},
            {"name": "amq.gen-abc", "vhost": "/", "arguments": {}},
        ],
        "bindings": [
            {"source": "x", "vhost": "/", "destination": "missing", "destination_type": "queue",
             "routing_key": "k", "arguments": {}},
        ],
    }  # fmt: skip
    config, warnings = definitions_to_config(defs)
    assert len(warnings) == 4
    root = config.vhost("/")
    assert root is not None
    assert [(e.name, dict(e.arguments)) for e in root.exchanges] == [("x", {})]
    assert [(q.name, dict(q.arguments)) for q in root.queues] == [("q", {})]
    assert root.bindings == ()


def test_a_per_vhost_export_without_vhost_fields_reads_into_that_vhost() -> None:
    defs = {
        "queues": [{"name": "q", "durable": True, "auto_delete": False, "arguments": {}}],
        "exchanges": [],
        "bindings": [],
    }
    doc, _ = definitions_to_document(defs, only_vhost="staging")
    assert doc == {"vhosts": {"staging": {"queues": {"q": {}}}}}


def test_canonical_yaml_is_a_fixed_point() -> None:
    config, _ = definitions_to_config(_sample())
    text = config_to_yaml(config)
    assert config_to_yaml(load_string(text)) == text


@pytest.mark.parametrize(
    ("defs", "message"),
    [
        ({"queues": {"q": 1}}, "'queues' must be a list of objects"),
        ({"queues": [{"vhost": "/"}]}, "queues[0]: 'name' must be a string"),
        (
            {"bindings": [{"vhost": "/", "source": "a", "destination": "b",
                           "destination_type": "topic"}]},
            "bindings[0]: destination_type must be 'queue' or 'exchange'",
        ),
    ],
)  # fmt: skip
def test_malformed_definitions_name_the_item(defs: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        definitions_to_document(defs)


@pytest.mark.parametrize("value", ["yes", 1, None, "True"])
def test_a_flag_that_is_not_true_or_false_is_an_error_not_false(value: object) -> None:
    defs = {"queues": [{"name": "q", "vhost": "/", "durable": value}]}
    with pytest.raises(DefinitionsError, match=r"queues\[0\]: 'durable' must be true or false"):
        rabbit_json.decode(defs)
    with pytest.raises(DefinitionsError, match="must be true or false"):
        definitions_to_config(defs)


def test_old_exports_true_and_false_strings_are_read_as_flags() -> None:
    defs = {"queues": [{"name": "q", "vhost": "/", "durable": "false", "auto_delete": "true"}]}
    decoded, _ = rabbit_json.decode(defs)
    root = decoded.vhost("/")
    assert root is not None
    (queue,) = root.queues
    assert (queue.durable, queue.auto_delete) == (False, True)
