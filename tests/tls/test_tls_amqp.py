"""AMQPS with real clients: pika and aio-pika over TLS with password and EXTERNAL logins,
and every way a TLS client can be refused (no certificate when one is required, a
certificate from another CA, an expired one, TLS 1.1, a handshake that never comes,
plain AMQP on the TLS port, TLS on the plain port).  Each refusal is one log line and a
closed socket, and a connection that was already open keeps working."""

from __future__ import annotations

import asyncio
import datetime
import json
import socket
import ssl
import time
import urllib.request
import warnings
from typing import Any

import aio_pika
import pika
import pika.exceptions
import pytest
import trustme
from cryptography import x509
from tlskit import LogWatch, Pki, round_trip, tls_params

from amqplite.app import RunningBroker
from amqplite.protocol import methods
from amqplite.protocol.frames import PROTOCOL_HEADER, decode_frame

REFUSED_EXTERNAL = (
    "ACCESS_REFUSED - Login was refused using authentication mechanism EXTERNAL. "
    "For details see the broker logfile."
)


def mechanisms(port: int, context: ssl.SSLContext | None = None) -> list[str]:
    """The mechanisms connection.start offers on ``port`` (over TLS with ``context``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        sock = raw if context is None else context.wrap_socket(raw, server_hostname="127.0.0.1")
        sock.sendall(PROTOCOL_HEADER)
        buf = bytearray()
        while (decoded := decode_frame(buf, 0)) is None:
            chunk = sock.recv(65536)
            assert chunk, "closed before connection.start"
            buf += chunk
        payload = decoded[0].payload
        start = methods.DECODERS[10 << 16 | 10](payload, 4, len(payload))
        assert isinstance(start, methods.ConnectionStart)
        return start.mechanisms.decode().split()


def test_password_login_over_tls_beside_the_plain_port(tls_broker: RunningBroker, pki: Pki) -> None:
    with pika.BlockingConnection(tls_params(tls_broker, pki.context())) as secure:
        round_trip(secure, "over-tls", b"secret")
        # The plain port serves the same broker at the same time.
        plain = pika.BlockingConnection(pika.URLParameters(tls_broker.url))
        with plain:
            channel = plain.channel()
            channel.basic_publish("", "over-tls", b"from plain")
            assert channel.basic_get("over-tls", auto_ack=True)[2] == b"from plain"
        round_trip(secure, "over-tls", b"still fine")


def test_external_is_offered_only_with_a_verified_client_certificate(
    tls_broker: RunningBroker, pki: Pki
) -> None:
    assert tls_broker.tls_port is not None
    assert mechanisms(tls_broker.port) == ["PLAIN", "AMQPLAIN"]
    assert mechanisms(tls_broker.tls_port, pki.context()) == ["PLAIN", "AMQPLAIN"]
    with_cert = pki.context(pki.client_cert("alice"))
    assert mechanisms(tls_broker.tls_port, with_cert) == ["PLAIN", "AMQPLAIN", "EXTERNAL"]
    # Asking for EXTERNAL where it is not offered is refused like any unknown mechanism.
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(
            tls_params(tls_broker, pki.context(), pika.credentials.ExternalCredentials())
        )


def test_external_login_takes_the_user_from_the_certificate(
    tls_broker: RunningBroker, pki: Pki
) -> None:
    context = pki.context(pki.client_cert("alice"))
    params = tls_params(tls_broker, context, pika.credentials.ExternalCredentials())
    with pika.BlockingConnection(params) as connection:
        round_trip(connection, "alice-q", b"hello alice")
        # The API (over HTTPS) shows who logged in, and how.
        request = urllib.request.Request(f"{tls_broker.http_url}api/connections")
        request.add_header("authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=")  # guest:guest
        with urllib.request.urlopen(request, context=pki.context(), timeout=10) as reply:
            listed = json.load(reply)
    [conn] = [c for c in listed if c["user"] == "alice"]
    assert conn["auth_mechanism"] == "EXTERNAL"
    assert conn["ssl"] is True and conn["ssl_protocol"] in ("tlsv1.2", "tlsv1.3")
    assert conn["peer_cert_subject"].startswith("CN=alice,")


def test_aio_pika_external_login(tls_broker: RunningBroker, pki: Pki) -> None:
    context = pki.context(pki.client_cert("alice"))

    async def main() -> bytes:
        url = f"amqps://127.0.0.1:{tls_broker.tls_port}/?auth=external"
        connection = await aio_pika.connect(url, ssl_context=context, timeout=10)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue("aio-external")
            await channel.default_exchange.publish(
                aio_pika.Message(b"via aio-pika"), "aio-external"
            )
            message = await queue.get(timeout=10)
            await message.ack()
            return message.body

    assert asyncio.run(asyncio.wait_for(main(), 20)) == b"via aio-pika"


def test_external_login_of_an_unknown_user_is_refused_with_rabbitmqs_text(
    tls_broker: RunningBroker, pki: Pki, broker_log: LogWatch
) -> None:
    context = pki.context(pki.client_cert("mallory"))
    params = tls_params(tls_broker, context, pika.credentials.ExternalCredentials())
    with pytest.raises(pika.exceptions.AMQPConnectionError) as refused:
        pika.BlockingConnection(params)
    assert REFUSED_EXTERNAL in str(refused.value)
    broker_log.wait_for(r"login refused for user 'mallory' \(EXTERNAL\)")


def test_distinguished_name_as_the_user(start_broker: Any, pki: Pki) -> None:
    cert = pki.client_cert("carol", organization_unit_name="Ops, Team")
    dn = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes()).subject.rfc4514_string()
    assert dn.startswith("CN=carol,OU=Ops\\, Team,O=")
    users = f"""
  '{dn}':
    password: unused
    permissions:
      "/": {{configure: ".*", write: ".*", read: ".*"}}
"""
    with start_broker(users, tls_external_identity="dn") as running:
        params = tls_params(running, pki.context(cert), pika.credentials.ExternalCredentials())
        with pika.BlockingConnection(params) as connection:
            round_trip(connection, "carol-q", b"by dn")
        # By DN, the certificate of "alice" (a user that exists) names no user.
        alice = pki.context(pki.client_cert("alice"))
        with pytest.raises(pika.exceptions.AMQPConnectionError):
            pika.BlockingConnection(
                tls_params(running, alice, pika.credentials.ExternalCredentials())
            )


def _refused(running: RunningBroker, context: ssl.SSLContext) -> str:
    """The TLS client is refused: the handshake or the first read fails with the broker's
    TLS alert (returned), and no AMQP session starts."""
    assert running.tls_port is not None
    with (
        socket.create_connection(("127.0.0.1", running.tls_port), timeout=10) as raw,
        pytest.raises(ssl.SSLError) as refused,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        # TLS 1.3 sends the client's certificate after the client's handshake is done:
        # the server's verdict arrives with the first read.
        sock.sendall(PROTOCOL_HEADER)
        data = sock.recv(1024)
        raise AssertionError(f"the broker answered a refused client: {data!r}")
    return str(refused.value)


def test_a_required_client_certificate(start_broker: Any, pki: Pki, broker_log: LogWatch) -> None:
    with (
        start_broker(tls_require_client_cert="true") as running,
        pika.BlockingConnection(pika.URLParameters(running.url)) as witness,
    ):
        assert "alert certificate required" in _refused(running, pki.context())
        broker_log.wait_for(r"AMQP TLS handshake with .* failed: .*CERTIFICATE")
        with pytest.raises(pika.exceptions.AMQPConnectionError):
            pika.BlockingConnection(tls_params(running, pki.context()))
        # With a certificate, a password login works too.
        secure = pika.BlockingConnection(tls_params(running, pki.context(pki.client_cert("x"))))
        with secure:
            round_trip(secure, "required", b"ok")
        round_trip(witness, "witness", b"unaffected")
        # HTTPS never asks for a client certificate: the API logs in with a password.
        request = urllib.request.Request(f"{running.http_url}api/overview")
        request.add_header("authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=")  # guest:guest
        with urllib.request.urlopen(request, context=pki.context(), timeout=10) as reply:
            assert reply.status == 200


def test_a_certificate_from_another_ca_is_refused(
    tls_broker: RunningBroker, pki: Pki, broker_log: LogWatch
) -> None:
    stranger = pki.client_cert("alice", ca=trustme.CA())
    assert "alert unknown ca" in _refused(tls_broker, pki.context(stranger))
    broker_log.wait_for(r"AMQP TLS handshake with .* failed: .*unable to get local issuer")


def test_an_expired_certificate_is_refused(
    tls_broker: RunningBroker, pki: Pki, broker_log: LogWatch
) -> None:
    now = datetime.datetime.now(datetime.UTC)
    expired = pki.client_cert(
        "alice",
        not_before=now - datetime.timedelta(days=30),
        not_after=now - datetime.timedelta(days=1),
    )
    assert "alert certificate expired" in _refused(tls_broker, pki.context(expired))
    broker_log.wait_for(r"AMQP TLS handshake with .* failed: .*certificate has expired")


def test_tls_1_1_is_refused_by_the_broker(
    tls_broker: RunningBroker, pki: Pki, broker_log: LogWatch
) -> None:
    context = pki.context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
    assert tls_broker.tls_port is not None
    with (
        socket.create_connection(("127.0.0.1", tls_broker.tls_port), timeout=10) as raw,
        pytest.raises(ssl.SSLError) as refused,
    ):
        context.wrap_socket(raw, server_hostname="127.0.0.1")
    # The broker said no (an alert from the server), not our own client.
    assert "ALERT_PROTOCOL_VERSION" in str(refused.value)
    broker_log.wait_for(r"AMQP TLS handshake with .* failed: UNSUPPORTED_PROTOCOL")


def test_a_silent_socket_is_closed_at_the_handshake_deadline(
    tls_broker: RunningBroker, broker_log: LogWatch
) -> None:
    assert tls_broker.tls_port is not None
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", tls_broker.tls_port), timeout=30) as raw:
        try:
            closed = raw.recv(1) == b""
        except ConnectionResetError:
            closed = True
    assert closed
    # A generous bound for a loaded machine; the deadline itself is in the log line.
    assert time.monotonic() - started < 20
    broker_log.wait_for(r"AMQP TLS handshake with .* not finished within 5.0s; closed")


def test_plain_amqp_on_the_tls_port_gets_the_header_back_and_nothing_else_notices(
    tls_broker: RunningBroker, pki: Pki, broker_log: LogWatch
) -> None:
    assert tls_broker.tls_port is not None
    with pika.BlockingConnection(tls_params(tls_broker, pki.context())) as witness:
        with socket.create_connection(("127.0.0.1", tls_broker.tls_port), timeout=10) as raw:
            raw.sendall(PROTOCOL_HEADER)
            answer = b""
            while chunk := raw.recv(64):
                answer += chunk
        assert answer == PROTOCOL_HEADER  # then the close
        # pika pointed at the TLS port without TLS fails at once.
        with pytest.raises(pika.exceptions.AMQPConnectionError):
            pika.BlockingConnection(
                pika.URLParameters(f"amqp://guest:guest@127.0.0.1:{tls_broker.tls_port}/")
            )
        round_trip(witness, "witness", b"unaffected")
    assert len(broker_log.matching("plain AMQP client .* connected to the TLS port")) == 2


def test_tls_on_the_plain_port_is_closed_and_nothing_else_notices(
    tls_broker: RunningBroker, pki: Pki, broker_log: LogWatch
) -> None:
    with pika.BlockingConnection(pika.URLParameters(tls_broker.url)) as witness:
        with (
            socket.create_connection(("127.0.0.1", tls_broker.port), timeout=10) as raw,
            pytest.raises(ssl.SSLError),
        ):
            pki.context().wrap_socket(raw, server_hostname="127.0.0.1")
        broker_log.wait_for("a TLS client on the plain AMQP port")
        round_trip(witness, "witness", b"unaffected")
    assert len(broker_log.matching("TLS client on the plain AMQP port")) == 1


def test_pika_over_tls_publishes_and_consumes_many(tls_broker: RunningBroker, pki: Pki) -> None:
    """Enough traffic to cross TLS record and frame boundaries both ways."""
    params = tls_params(tls_broker, pki.context())
    with pika.BlockingConnection(params) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare("bulk")
        bodies = [bytes([i % 251]) * (i * 97 % 70000) for i in range(200)]
        for body in bodies:
            channel.basic_publish("", "bulk", body)
        got: list[bytes] = []

        def on_message(ch: Any, method: Any, _props: Any, body: bytes) -> None:
            got.append(body)
            ch.basic_ack(method.delivery_tag)
            if len(got) == len(bodies):
                ch.stop_consuming()

        channel.basic_qos(prefetch_count=50)
        channel.basic_consume("bulk", on_message)
        channel.start_consuming()
    assert got == bodies


def test_a_certificate_without_a_common_name_names_no_user(
    tls_broker: RunningBroker, pki: Pki, broker_log: LogWatch
) -> None:
    nameless = pki.ca.issue_cert("nameless.example")  # trustme: no CN unless asked
    params = tls_params(tls_broker, pki.context(nameless), pika.credentials.ExternalCredentials())
    with pytest.raises(pika.exceptions.AMQPConnectionError) as refused:
        pika.BlockingConnection(params)
    assert REFUSED_EXTERNAL in str(refused.value)
    broker_log.wait_for(r"EXTERNAL login refused: no common name in the client certificate")


def test_large_bodies_cross_between_tls_and_plain_connections(
    tls_broker: RunningBroker, pki: Pki
) -> None:
    """Multi-frame bodies: received from TLS records (no direct socket reads) and sent
    through the TLS stream, both ways."""
    big = bytes(range(256)) * (3 * 4096 + 7)  # ~3 MiB, many frames
    with (
        pika.BlockingConnection(tls_params(tls_broker, pki.context())) as secure,
        pika.BlockingConnection(pika.URLParameters(tls_broker.url)) as plain,
    ):
        tls_channel, plain_channel = secure.channel(), plain.channel()
        tls_channel.confirm_delivery()  # confirmed: enqueued before the other side's get
        plain_channel.confirm_delivery()
        tls_channel.queue_declare("big")
        tls_channel.basic_publish("", "big", big)
        assert plain_channel.basic_get("big", auto_ack=True)[2] == big
        plain_channel.basic_publish("", "big", big[::-1])
        assert tls_channel.basic_get("big", auto_ack=True)[2] == big[::-1]


def test_the_bench_runs_over_amqps(tls_broker: RunningBroker, pki: Pki) -> None:
    """`amqplite bench --url amqps://...?cacertfile=` (how docs/tls.md measures TLS)."""
    from amqplite.bench.scenarios import RunConfig, run_scenario

    url = f"amqps://guest:guest@127.0.0.1:{tls_broker.tls_port}/?cacertfile={pki.ca_pem}"
    config = RunConfig("e2e", count=2000, prefetch=100, size=20000, drain_timeout=10.0)
    result = asyncio.run(run_scenario(url, config))
    assert result.error is None, result.error
    assert result.published == result.delivered == 2000
