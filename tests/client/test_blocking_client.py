"""The blocking AMQP client against a real amqplite broker (the ``amqplite_url`` fixture)."""

from __future__ import annotations

import socket

import pytest

from amqplite.client import (
    AmqpUrl,
    ChannelClosed,
    ClientError,
    ConnectionClosed,
    TlsOptions,
    connect,
    parse_url,
)
from amqplite.message import BasicProperties


def test_publish_with_confirm_then_get_round_trips_properties_headers_and_body(
    amqplite_url: str,
) -> None:
    body = bytes(range(256)) * 1200  # ~300 kB: spans several body frames
    props = BasicProperties(
        content_type="application/octet-stream",
        delivery_mode=2,
        message_id="m-1",
        headers={"attempt": 3, "tenant": "acme", "flag": True},
    )
    with connect(amqplite_url) as conn, conn.channel() as ch:
        ch.queue_declare("jobs", durable=True)
        ch.confirm_select()
        ch.publish("", "jobs", body, props)
        report = ch.wait_for_confirms(timeout=5)
        assert report.ok and report.acked == 1
        got = ch.basic_get("jobs")
        assert got is not None
        assert got.body == body
        assert got.properties == props
        assert got.message_count == 0
        ch.basic_ack(got.delivery_tag)
        assert ch.basic_get("jobs") is None


def test_unroutable_mandatory_publish_is_reported_as_returned(amqplite_url: str) -> None:
    with connect(amqplite_url) as conn, conn.channel() as ch:
        ch.confirm_select()
        ch.publish("amq.direct", "nobody-listens", b"x", mandatory=True)
        ch.publish("", "nobody-either", b"y", mandatory=False)
        report = ch.wait_for_confirms(timeout=5)
    assert report.acked == 2
    assert [(r.reply_code, r.routing_key, r.body) for r in report.returned] == [
        (312, "nobody-listens", b"x")
    ]
    assert not report.ok


def test_passive_declare_of_missing_queue_closes_only_that_channel_with_404(
    amqplite_url: str,
) -> None:
    with connect(amqplite_url) as conn:
        probe = conn.channel()
        with pytest.raises(ChannelClosed) as info:
            probe.queue_declare("missing", passive=True)
        assert info.value.reply_code == 404
        assert "no queue 'missing'" in info.value.reply_text
        assert not probe.is_open
        with pytest.raises(ChannelClosed):  # a closed channel keeps saying why
            probe.queue_declare("missing", passive=True)
        ok = conn.channel().queue_declare("", exclusive=True)  # the connection lives on
        assert ok.queue.startswith("amq.gen-")


def test_redeclare_with_other_arguments_is_a_406_naming_the_argument(amqplite_url: str) -> None:
    with connect(amqplite_url) as conn:
        conn.channel().queue_declare("q", durable=True, arguments={"x-message-ttl": 1000})
        same = conn.channel()
        assert same.queue_declare("q", durable=True, arguments={"x-message-ttl": 1000}).queue == "q"
        with pytest.raises(ChannelClosed) as info:
            conn.channel().queue_declare("q", durable=True, arguments={"x-message-ttl": 2000})
    assert info.value.reply_code == 406
    assert "x-message-ttl" in info.value.reply_text


def test_exchange_to_exchange_binding_routes_and_unbind_stops_it(amqplite_url: str) -> None:
    with connect(amqplite_url) as conn, conn.channel() as ch:
        ch.exchange_declare("front", "topic")
        ch.exchange_declare("back", "fanout", auto_delete=False)
        ch.queue_declare("sink")
        ch.queue_bind("sink", "back")
        ch.exchange_bind("back", "front", "orders.#")
        ch.confirm_select()
        ch.publish("front", "orders.eu", b"1", mandatory=True)
        assert ch.wait_for_confirms(5).ok
        ch.exchange_unbind("back", "front", "orders.#")
        ch.publish("front", "orders.eu", b"2", mandatory=True)
        assert len(ch.wait_for_confirms(5).returned) == 1
        first = ch.basic_get("sink", no_ack=True)
        assert first is not None and first.body == b"1"
        assert ch.basic_get("sink") is None


def test_consume_acks_some_and_requeued_ones_come_back_redelivered(amqplite_url: str) -> None:
    with connect(amqplite_url) as conn, conn.channel() as ch:
        ch.queue_declare("work")
        for i in range(3):
            ch.publish("", "work", f"m{i}".encode())
        ch.basic_qos(10)
        tag = ch.basic_consume("work")
        seen = [ch.next_delivery(timeout=5) for _ in range(3)]
        assert [d.body for d in seen if d] == [b"m0", b"m1", b"m2"]
        assert all(d is not None and d.consumer_tag == tag for d in seen)
        assert seen[0] is not None and seen[2] is not None
        ch.basic_ack(seen[0].delivery_tag)
        ch.basic_nack(seen[2].delivery_tag, multiple=True, requeue=True)  # m1 and m2 back
        again = [ch.next_delivery(timeout=5) for _ in range(2)]
        assert [(d.body, d.redelivered) for d in again if d] == [(b"m1", True), (b"m2", True)]
        ch.basic_cancel(tag)
        assert ch.next_delivery(timeout=0.05) is None
        assert ch.queue_purge("work") == 0  # both still unacked on this channel


def test_wrong_password_is_refused_with_403(amqplite_url: str) -> None:
    url = parse_url(amqplite_url)
    bad = AmqpUrl(url.host, url.port, "guest", "wrong", "/")
    with pytest.raises(ClientError) as info:
        connect(bad, timeout=5)
    assert isinstance(info.value, ConnectionClosed) and info.value.reply_code == 403


def test_unknown_vhost_is_refused_with_530(amqplite_url: str) -> None:
    with pytest.raises(ConnectionClosed) as info:
        connect(parse_url(amqplite_url).with_vhost("nowhere"), timeout=5)
    assert info.value.reply_code == 530


def test_refused_port_is_a_one_line_client_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: refused
        with pytest.raises(ClientError, match=r"cannot connect to 127\.0\.0\.1:\d+"):
            connect(f"amqp://guest:guest@127.0.0.1:{port}/", timeout=5)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("amqp://u:p@h:1234/", AmqpUrl("h", 1234, "u", "p", "/")),
        ("amqp://h", AmqpUrl("h", 5672, "guest", "guest", "/")),
        ("amqp://u:p%40ss@h/%2F", AmqpUrl("h", 5672, "u", "p@ss", "/")),
        ("amqp://h/staging", AmqpUrl("h", 5672, "guest", "guest", "staging")),
        ("amqp://[::1]:5673/a%2Fb", AmqpUrl("::1", 5673, "guest", "guest", "a/b")),
        (
            "amqps://u:p@h/?cacertfile=/ca.pem&verify=verify_none&heartbeat=5",
            AmqpUrl("h", 5671, "u", "p", "/", TlsOptions(cacertfile="/ca.pem", verify=False)),
        ),
        (
            "amqps://h:5000/v?certfile=c.pem&keyfile=k.pem&auth_mechanism=external",
            AmqpUrl(
                "h",
                5000,
                "guest",
                "guest",
                "v",
                TlsOptions(certfile="c.pem", keyfile="k.pem"),
                auth_mechanism="EXTERNAL",
            ),
        ),
    ],
)
def test_parse_url(url: str, expected: AmqpUrl) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://h/",
        "amqp://h:notaport/",
        "amqps://h/?verify=sometimes",
        "amqps://h/?auth_mechanism=kerberos",
        "amqp://h/?auth_mechanism=external",  # a certificate needs TLS
        "amqps://h/?keyfile=k.pem",
    ],
)
def test_parse_url_refuses_what_it_cannot_use(url: str) -> None:
    with pytest.raises(ClientError):
        parse_url(url)


def test_str_of_url_hides_the_password() -> None:
    assert str(parse_url("amqp://bob:secret@h:1/v")) == "amqp://bob@h:1/v"
    assert str(parse_url("amqps://bob:secret@h/v?certfile=c")) == "amqps://bob@h:5671/v"


def test_consumer_cancelled_by_queue_deletion_ends_the_wait(amqplite_url: str) -> None:
    with connect(amqplite_url) as conn:
        consumer = conn.channel()
        consumer.queue_declare("doomed")
        consumer.basic_consume("doomed")
        conn.channel().queue_delete("doomed")
        with pytest.raises(ClientError, match="cancelled consumer"):
            consumer.next_delivery(timeout=5)
