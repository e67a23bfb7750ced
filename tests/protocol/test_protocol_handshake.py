"""connection.start contents and SASL response parsing (PLAIN, AMQPLAIN)."""

from __future__ import annotations

import pytest

from amqplite.errors import ConnectionError, ReplyCode
from amqplite.protocol import connection_start, encode_table, parse_sasl_response


def test_start_advertises_rabbitmqs_capabilities_and_mechanisms() -> None:
    start = connection_start()
    caps = start.server_properties["capabilities"]
    for cap in (
        "publisher_confirms",
        "basic.nack",
        "consumer_cancel_notify",
        "exchange_exchange_bindings",
        "connection.blocked",
        "authentication_failure_close",
        "per_consumer_qos",
        "consumer_priorities",
    ):
        assert caps[cap] is True
    assert (start.version_major, start.version_minor) == (0, 9)
    assert start.mechanisms == b"PLAIN AMQPLAIN"


def test_plain_response_yields_user_and_password() -> None:
    assert parse_sasl_response("PLAIN", b"\x00guest\x00se\x00cret") is None
    assert parse_sasl_response("PLAIN", b"\x00guest\x00secret") == ("guest", "secret")
    assert parse_sasl_response("PLAIN", b"authz\x00guest\x00secret") == ("guest", "secret")
    assert parse_sasl_response("PLAIN", b"guest") is None


def test_amqplain_response_yields_user_and_password() -> None:
    response = encode_table({"LOGIN": "guest", "PASSWORD": "pw"})[4:]
    assert parse_sasl_response("AMQPLAIN", response) == ("guest", "pw")
    assert parse_sasl_response("AMQPLAIN", encode_table({"LOGIN": "guest"})[4:]) is None
    assert parse_sasl_response("AMQPLAIN", b"\x05garbage") is None


def test_unknown_mechanism_is_command_invalid() -> None:
    with pytest.raises(ConnectionError) as info:
        parse_sasl_response("EXTERNAL", b"")
    assert info.value.reply_code == ReplyCode.COMMAND_INVALID
    assert "unknown authentication mechanism 'EXTERNAL'" in info.value.reply_text
