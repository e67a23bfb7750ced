"""``amqplite users | vhosts | permissions | topic-permissions | limits`` through the real
entry point, against a running amqplite (the same HTTP API RabbitMQ serves)."""

from __future__ import annotations

import io
import json

import pika  # type: ignore[import-untyped]
import pika.exceptions  # type: ignore[import-untyped]
import pytest
from ops_support import Cli, Stack

from amqplite.client.http import ApiClient


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_users_vhosts_and_permissions_round_trip(
    cli: Cli, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = ("--api", stack.api)
    assert cli("vhosts", "add", "shop", *api).code == 0
    _stdin(monkeypatch, "s3cret\n")
    r = cli("users", "add", "ann", "--tags", "management", "--password-stdin", *api)
    assert (r.code, r.out) == (0, "user 'ann' saved\n"), r.err
    r = cli("permissions", "set", "ann", "^ann\\.", ".*", ".*", "--vhost", "shop", *api)
    assert r.code == 0, r.err
    r = cli("topic-permissions", "set", "ann", "amq.topic", "^eu\\.", ".*", "-p", "shop", *api)
    assert r.code == 0, r.err
    r = cli("limits", "set", "--vhost", "shop", "max-queues=2", "max-connections=5", *api)
    assert r.code == 0, r.err
    r = cli("limits", "set", "--user", "ann", "max-channels=3", *api)
    assert r.code == 0, r.err

    users = json.loads(cli("users", "list", "--json", *api).out)
    assert {"name": "ann", "tags": ["management"]}.items() <= next(
        u for u in users if u["name"] == "ann"
    ).items()
    perms = json.loads(cli("permissions", "list", "--vhost", "shop", "--json", *api).out)
    assert perms == [
        {"user": "ann", "vhost": "shop", "configure": "^ann\\.", "write": ".*", "read": ".*"}
    ]
    table = cli("limits", "list", *api).out
    assert "max-queues" in table and "max-channels" in table
    assert json.loads(cli("limits", "list", "--user", "ann", "--json", *api).out) == [
        {"user": "ann", "value": {"max-channels": 3}}
    ]

    # What the commands set is enforced on AMQP.
    url = stack.url.replace("guest:guest", "ann:s3cret").rstrip("/") + "/shop"
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_declare("ann.one")
    ch.queue_declare("ann.two")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.queue_declare("ann.three")
    assert exc.value.reply_code == 406 and "queue limit in vhost 'shop' (2)" in exc.value.reply_text
    conn.close()

    assert cli("users", "tags", "ann", "monitoring", *api).code == 0
    assert cli("users", "list", *api).out.count("monitoring") == 1
    pika.BlockingConnection(pika.URLParameters(url)).close()  # the password survived
    assert cli("limits", "clear", "--vhost", "shop", *api).code == 0
    assert json.loads(cli("limits", "list", "--vhost", "shop", "--json", *api).out) == []
    assert cli("topic-permissions", "clear", "ann", "-p", "shop", *api).code == 0
    assert cli("permissions", "clear", "ann", "--vhost", "shop", *api).code == 0
    assert cli("users", "delete", "ann", *api).code == 0
    assert cli("vhosts", "delete", "shop", *api).code == 0
    assert "shop" not in cli("vhosts", "list", *api).out


def test_errors_are_one_line_and_passwords_never_come_from_argv(
    cli: Cli, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = ("--api", stack.api)
    r = cli("permissions", "set", "nobody", ".*", ".*", ".*", *api)
    asked = f"{ApiClient(stack.api).base}/api/permissions/%2F/nobody"
    assert r.code == 1 and r.err == (
        f"amqplite: error: 400 Bad Request: vhost_or_user_not_found (asked {asked})\n"
    )
    r = cli("permissions", "set", "guest", "(", ".*", ".*", *api)
    assert r.code == 1 and "invalid regular expression" in r.err
    r = cli("limits", "set", "--vhost", "/", "max-queues=lots", *api)
    assert r.code == 1 and "whole number" in r.err
    r = cli("limits", "set", "--vhost", "/", "max-bogus=1", *api)
    assert r.code == 1 and "Unrecognised terms" in r.err
    _stdin(monkeypatch, "")  # not a terminal and no --password-stdin: refuse
    r = cli("users", "add", "zed", *api)
    assert r.code == 1 and "--password-stdin" in r.err
    with pytest.raises(SystemExit):
        cli("users", "add", "zed", "--password", "visible", *api)
