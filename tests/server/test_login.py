"""Logins: PLAIN and AMQPLAIN, one refusal text for every failure, guest on loopback only."""

from __future__ import annotations

import struct

import pytest
import trio
from addresses import non_loopback_address
from rawamqp import RawClient

from amqplite.app import RunningBroker, build_broker, serve
from amqplite.broker.passwords import hash_password
from amqplite.errors import ReplyCode
from amqplite.protocol import methods as m
from amqplite.protocol.fields import encode_table
from amqplite.protocol.frames import PROTOCOL_HEADER
from amqplite.server.auth import is_loopback
from amqplite.server.session.sasl import parse_response

REFUSED = (
    "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
    "For details see the broker logfile."
)


def _amqplain(user: str, password: str) -> bytes:
    table = encode_table({"LOGIN": user, "PASSWORD": password})
    return table[4:]  # AMQPLAIN sends the table without its length prefix


def test_parse_plain_and_amqplain_responses() -> None:
    assert parse_response("PLAIN", b"\x00bob\x00secret") == ("bob", "secret")
    assert parse_response("PLAIN", b"admin\x00bob\x00secret") == ("bob", "secret")
    assert parse_response("PLAIN", b"bob:secret") is None
    assert parse_response("AMQPLAIN", _amqplain("bob", "secret")) == ("bob", "secret")
    assert parse_response("AMQPLAIN", b"\xff\xff") is None
    assert parse_response("AMQPLAIN", b"\x05garbage") is None
    assert parse_response("AMQPLAIN", encode_table({"LOGIN": "bob"})[4:]) is None
    assert parse_response("PLAIN", b"\x00bob\x00se\x00cret") is None
    assert parse_response("AMQPLAIN", struct.pack(">I", 0)[:0]) is None
    with pytest.raises(ValueError):
        parse_response("EXTERNAL", b"")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("192.0.2.7", False),
        ("::ffff:192.0.2.7", False),
        ("fe80::1%eth0", False),
        ("not an address", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


async def _login(port: int, mechanism: str, response: bytes, host: str = "127.0.0.1") -> m.Method:
    client = RawClient(await trio.open_tcp_stream(host, port))
    await client.send(PROTOCOL_HEADER)
    await client.expect(m.ConnectionStart)
    await client.send_method(0, m.ConnectionStartOk({}, mechanism, response, "en_US"))
    _, reply = await client.read_method()
    await client.aclose()
    return reply


async def test_amqplain_login_is_accepted(running: RunningBroker) -> None:
    with trio.fail_after(5):
        reply = await _login(running.port, "AMQPLAIN", _amqplain("guest", "guest"))
        assert isinstance(reply, m.ConnectionTune)


@pytest.mark.parametrize(
    "response",
    [b"\x00guest\x00wrong", b"\x00nobody\x00guest", b"\x00\x00", b"garbage"],
    ids=["wrong-password", "unknown-user", "empty", "malformed"],
)
async def test_every_login_failure_gets_the_same_403(
    running: RunningBroker, response: bytes
) -> None:
    with trio.fail_after(5):
        reply = await _login(running.port, "PLAIN", response)
        assert isinstance(reply, m.ConnectionClose)
        assert (reply.reply_code, reply.reply_text) == (ReplyCode.ACCESS_REFUSED, REFUSED)


async def test_guest_may_only_log_in_from_loopback() -> None:
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    broker = build_broker(None)
    broker.users.add_user("alice", hash_password("wonderland"))
    broker.users.set_permissions("alice", "/", ".*", ".*", ".*")
    with trio.fail_after(10):
        async with serve(broker=broker, host="0.0.0.0") as running:
            remote = await _login(running.port, "PLAIN", b"\x00guest\x00guest", host=address)
            assert isinstance(remote, m.ConnectionClose)
            assert remote.reply_text == REFUSED
            local = await _login(running.port, "PLAIN", b"\x00guest\x00guest")
            assert isinstance(local, m.ConnectionTune)
            alice = await _login(running.port, "PLAIN", b"\x00alice\x00wonderland", host=address)
            assert isinstance(alice, m.ConnectionTune)
