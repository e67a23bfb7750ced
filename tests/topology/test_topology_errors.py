"""Every class of error a topology file can have, with its exact file:line:col and key path."""

from __future__ import annotations

from collections.abc import Callable

from amqplite.topology import Config, TopologyError, load_config

Errors = Callable[[str], list[str]]


def test_wrong_type_names_file_line_column_and_key_path(errors: Errors) -> None:
    assert errors(
        """
        queues:
          orders:
            arguments:
              x-max-length: ten
        """
    ) == [
        'topology.yaml:4:21: queues.orders.arguments.x-max-length: expected a non-negative integer, got "ten"'
    ]


def test_every_error_in_the_file_is_reported_at_once_in_file_order(errors: Errors) -> None:
    assert errors(
        """
        server:
          port: 70000
        exchanges:
          orders: {type: topic, durable: "yes"}
        queues:
          q: {arguments: {max_priority: 300}}
        """
    ) == [
        "topology.yaml:2:9: server.port: expected an integer from 0 to 65535, got 70000",
        'topology.yaml:4:34: exchanges.orders.durable: expected true or false, got "yes"',
        "topology.yaml:6:33: queues.q.arguments.max_priority: expected an integer from 1 to 255, got 300",
    ]


def test_unknown_key_suggests_the_closest_known_one(errors: Errors) -> None:
    assert errors(
        """
        queus:
          q: {}
        exchanges:
          x: {type: direct, duarble: true}
        """
    ) == [
        "topology.yaml:1:1: queus: unknown key 'queus'; did you mean 'queues'?",
        "topology.yaml:4:21: exchanges.x.duarble: unknown key 'duarble'; did you mean 'durable'?",
    ]


def test_unknown_key_with_no_close_match_lists_the_known_keys(errors: Errors) -> None:
    (line,) = errors("policies: {}\n")
    assert line == (
        "topology.yaml:1:1: policies: unknown key 'policies' "
        "(expected one of: server, users, exchanges, queues, bindings, limits, vhosts)"
    )


def test_unknown_queue_argument_is_an_error_with_suggestion(errors: Errors) -> None:
    assert errors(
        """
        queues:
          q:
            arguments: {x-max-lenght: 5}
        """
    ) == [
        "topology.yaml:3:17: queues.q.arguments.x-max-lenght: unknown argument 'x-max-lenght'; "
        "did you mean 'x-max-length'?"
    ]


def test_friendly_and_raw_name_for_the_same_argument_is_an_error(errors: Errors) -> None:
    assert errors(
        """
        queues:
          q:
            arguments:
              message_ttl: 1000
              x-message-ttl: 2000
        """
    ) == [
        "topology.yaml:5:7: queues.q.arguments.x-message-ttl: 'x-message-ttl' and 'message_ttl' "
        "set the same argument (x-message-ttl); keep one"
    ]


def test_out_of_range_and_wrong_kind_of_values(errors: Errors) -> None:
    assert errors(
        """
        queues:
          q:
            arguments:
              expires: 0
              overflow: drop-tail
              single_active_consumer: 1
              max_length: true
              message_ttl: soon
        """
    ) == [
        "topology.yaml:4:16: queues.q.arguments.expires: expected a positive integer (milliseconds), got 0",
        "topology.yaml:5:17: queues.q.arguments.overflow: expected one of drop-head, reject-publish, "
        "reject-publish-dlx, got \"drop-tail\"; did you mean 'drop-head'?",
        "topology.yaml:6:31: queues.q.arguments.single_active_consumer: expected true or false, got 1",
        "topology.yaml:7:19: queues.q.arguments.max_length: expected a non-negative integer, got true",
        "topology.yaml:8:20: queues.q.arguments.message_ttl: expected milliseconds (or a duration such as "
        '30s, 5m, 1h), got "soon"',
    ]


def test_binding_to_undeclared_queue_and_exchange(errors: Errors) -> None:
    assert errors(
        """
        exchanges:
          orders: {type: topic}
        queues:
          created: {}
        bindings:
          - {source: order, destination: created}
          - {source: orders, destination: craeted}
          - {source: orders, destination: audit, destination_type: exchange}
        """
    ) == [
        "topology.yaml:6:14: bindings[0].source: no exchange 'order' is declared; did you mean 'orders'?",
        "topology.yaml:7:35: bindings[1].destination: no queue 'craeted' is declared; did you mean 'created'?",
        "topology.yaml:8:35: bindings[2].destination: no exchange 'audit' is declared",
    ]


def test_predeclared_exchanges_can_be_bound_but_the_default_exchange_cannot(errors: Errors) -> None:
    assert errors(
        """
        queues:
          q: {}
        bindings:
          - {source: amq.topic, destination: q, routing_key: "a.#"}
          - {source: "", destination: q}
        """
    ) == [
        'topology.yaml:5:14: bindings[1].source: the default exchange ("") cannot be bound to; '
        "every queue is already bound to it by name"
    ]


def test_dead_letter_and_alternate_exchanges_must_exist(errors: Errors) -> None:
    assert errors(
        """
        exchanges:
          orders: {type: direct, alternate_exchange: unrouted}
        queues:
          q: {arguments: {dead_letter_exchange: dlx}}
          retry: {arguments: {x-dead-letter-exchange: "", x-dead-letter-routing-key: q}}
          bad: {arguments: {dead_letter_routing_key: q}}
        """
    ) == [
        "topology.yaml:2:46: exchanges.orders.alternate_exchange: no exchange 'unrouted' is declared in vhost '/'",
        "topology.yaml:4:41: queues.q.arguments.dead_letter_exchange: no exchange 'dlx' is declared in vhost '/'",
        "topology.yaml:6:46: queues.bad.arguments.dead_letter_routing_key: a dead-letter routing key needs a "
        "dead_letter_exchange (x-dead-letter-exchange) too",
    ]


def test_binding_key_longer_than_255_bytes_is_an_error(errors: Errors) -> None:
    key = "a." * 128
    (line,) = errors(
        f"""
        exchanges: {{t: {{type: topic}}}}
        queues: {{q: {{}}}}
        bindings:
          - {{source: t, destination: q, routing_key: "{key}"}}
        """
    )
    assert (
        line
        == "topology.yaml:4:46: bindings[0].routing_key: is 256 bytes long; AMQP allows at most 255 bytes"
    )


def test_wildcard_inside_a_topic_word_is_a_warning_not_an_error(
    load: Callable[[str], Config],
) -> None:
    config = load(
        """
        exchanges: {t: {type: topic}}
        queues: {q: {}}
        bindings:
          - {source: t, destination: q, routing_key: "order.*created"}
          - {source: t, destination: q, routing_key: "#.a.*.#"}
        """
    )
    assert [str(w) for w in config.warnings] == [
        "topology.yaml:4:46: warning: bindings[0].routing_key: '*created' is not a wildcard: '*' and '#' "
        "are wildcards only as a whole word between dots, so this matches only the literal word '*created'"
    ]


def test_invalid_x_match_on_a_headers_binding(errors: Errors) -> None:
    assert errors(
        """
        exchanges: {h: {type: headers}}
        queues: {q: {}}
        bindings:
          - {source: h, destination: q, arguments: {x-match: some, kind: a}}
          - {source: amq.match, destination: q, arguments: {x-match: any-with-x}}
        """
    ) == [
        "topology.yaml:4:54: bindings[0].arguments.x-match: expected one of all, any, all-with-x, "
        'any-with-x, got "some"'
    ]


def test_names_too_long_or_with_reserved_prefix(errors: Errors) -> None:
    long_name = "q" * 256
    assert errors(
        f"""
        exchanges:
          amq.mine: {{type: direct}}
        queues:
          {long_name}: {{}}
          amq.q: {{}}
        """
    ) == [
        "topology.yaml:2:3: exchanges.amq.mine: exchange name 'amq.mine' starts with the reserved prefix 'amq.'",
        f"topology.yaml:4:3: queues.{long_name}: queue name is 256 bytes long; AMQP allows at most 255",
        "topology.yaml:5:3: queues.amq.q: queue name 'amq.q' starts with the reserved prefix 'amq.'",
    ]


def test_duplicate_yaml_keys_are_reported_not_silently_overwritten(errors: Errors) -> None:
    assert errors(
        """
        queues:
          orders: {durable: true}
          audit: {}
          orders: {durable: false}
        """
    ) == [
        "topology.yaml:4:3: queues.orders: duplicate key 'orders' (first defined at line 2); "
        "YAML would silently keep only the last one"
    ]


def test_duplicate_bindings_are_reported(errors: Errors) -> None:
    assert errors(
        """
        exchanges: {x: {type: direct}}
        queues: {q: {}}
        bindings:
          - {source: x, destination: q, routing_key: k}
          - {source: x, destination: q, routing_key: other}
          - {routing_key: k, source: x, destination: q}
        """
    ) == ["topology.yaml:6:5: bindings[2]: duplicate binding: same as the binding at line 4"]


def test_yaml_syntax_error_reports_pyyaml_position(errors: Errors) -> None:
    (line,) = errors(
        """
        queues:
          q: {durable: true
        bindings: []
        """
    )
    assert line.startswith("topology.yaml:3:9: YAML syntax error: ")
    assert "expected ',' or '}'" in line


def test_empty_file_is_an_error(errors: Errors) -> None:
    assert errors("# only a comment\n") == [
        "topology.yaml:1:1: file is empty; expected a mapping with any of: "
        "server, users, exchanges, queues, bindings, limits, vhosts"
    ]


def test_top_level_must_be_a_mapping(errors: Errors) -> None:
    assert errors("- queues\n- exchanges\n") == [
        "topology.yaml:1:1: expected a mapping at the top level, got a list"
    ]


def test_exclusive_queue_is_refused_with_the_reason(errors: Errors) -> None:
    (line,) = errors("queues:\n  q: {exclusive: true}\n")
    assert line.startswith(
        "topology.yaml:2:18: queues.q.exclusive: exclusive queues belong to the connection"
    )


def test_exchange_without_type_or_with_unknown_type(errors: Errors) -> None:
    assert errors(
        """
        exchanges:
          a: {durable: true}
          b: {type: topik}
        """
    ) == [
        "topology.yaml:2:3: exchanges.a: missing 'type' (direct, fanout, topic, headers)",
        'topology.yaml:3:13: exchanges.b.type: expected one of direct, fanout, topic, headers, got "topik"; '
        "did you mean 'topic'?",
    ]


def test_permissions_on_an_undeclared_vhost(errors: Errors) -> None:
    assert errors(
        """
        users:
          app:
            password: secret
            permissions:
              /prod: {configure: "", write: ".*", read: ".*"}
        vhosts:
          /prd: {}
        """
    ) == [
        "topology.yaml:5:7: users.app.permissions./prod: no vhost '/prod' is declared in this file; "
        "did you mean '/prd'? (declare it under 'vhosts:')"
    ]


def test_user_password_rules(errors: Errors) -> None:
    assert errors(
        """
        users:
          a: {tags: [administrator]}
          b: {password: x, password_hash: "scrypt$1"}
          c: {password: 1234}
          d: {password_hash: plaintext}
          e:
            password: p
            permissions: {"/": {configure: "(", write: "", read: ""}}
        """
    ) == [
        "topology.yaml:2:3: users.a: missing 'password' (plain, hashed at load) or 'password_hash'",
        "topology.yaml:3:20: users.b.password_hash: give either 'password' or 'password_hash', not both",
        'topology.yaml:4:17: users.c.password: expected a string, got 1234 (quote it: "1234")',
        "topology.yaml:5:22: users.d.password_hash: expected a hash such as 'scrypt$...'; "
        "for a plain password use 'password:'",
        "topology.yaml:8:36: users.e.permissions./.configure: invalid regular expression: "
        "missing ), unterminated subpattern at position 0",
    ]


def test_errors_inside_another_vhost_carry_its_key_path(errors: Errors) -> None:
    assert errors(
        """
        vhosts:
          /other:
            queues:
              q: {arguments: {max_length: -1}}
            bindings:
              - {source: nowhere, destination: q}
        """
    ) == [
        "topology.yaml:4:35: vhosts./other.queues.q.arguments.max_length: "
        "expected a non-negative integer, got -1",
        "topology.yaml:6:18: vhosts./other.bindings[0].source: no exchange 'nowhere' is declared",
    ]


def test_default_vhost_topology_declared_twice_is_an_error(errors: Errors) -> None:
    assert errors(
        """
        queues: {a: {}}
        vhosts:
          /: {queues: {b: {}}}
        """
    ) == [
        "topology.yaml:3:3: vhosts./: '/' is the default vhost, whose exchanges, queues and bindings "
        "are the top-level ones; declare them in one place"
    ]


def test_quorum_queue_cannot_be_non_durable(errors: Errors) -> None:
    assert errors("queues:\n  q: {queue_type: quorum, durable: false}\n") == [
        "topology.yaml:2:36: queues.q.durable: quorum queues are always durable "
        "(RabbitMQ refuses 'durable: false')"
    ]


def test_missing_file_is_reported_as_a_problem(errors: Errors) -> None:
    try:
        load_config("no-such-file.yaml")
    except TopologyError as exc:
        assert [str(p) for p in exc.problems] == [
            "no-such-file.yaml:1:1: cannot read file: No such file or directory"
        ]
    else:
        raise AssertionError("loading a missing file must fail")
