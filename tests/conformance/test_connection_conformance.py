"""Connection-level behaviour as RabbitMQ shows it on the wire: server properties, tune
values, unsupported qos, update-secret and the order of replies and notifications.

Checked against amqplite always and against RabbitMQ when AMQPLITE_RABBITMQ_URL is set.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator

import pytest
from conformance_wire import WireClient

from amqplite.protocol import methods as m
from amqplite.protocol.frames import encode_frame, encode_method_frame

Name = Callable[[str], str]

RABBITMQ_URL = os.environ.get("AMQPLITE_RABBITMQ_URL")

#: The capabilities RabbitMQ 3.x advertises in connection.start (all true).
RABBITMQ_CAPABILITIES = {
    "publisher_confirms",
    "exchange_exchange_bindings",
    "basic.nack",
    "consumer_cancel_notify",
    "connection.blocked",
    "consumer_priorities",
    "authentication_failure_close",
    "per_consumer_qos",
    "direct_reply_to",
}


@pytest.fixture
def wire(broker_url: str) -> Iterator[WireClient]:
    client = WireClient(broker_url)
    yield client
    client.close()


def _opened(wire: WireClient) -> WireClient:
    wire.handshake({"consumer_cancel_notify": True, "connection.blocked": True})
    wire.open_channel(1)
    return wire


def test_server_properties_have_rabbitmqs_keys_and_capabilities(wire: WireClient) -> None:
    start = wire.start()
    assert (start.version_major, start.version_minor) == (0, 9)
    props = start.server_properties
    assert {"product", "version", "platform", "copyright", "information", "capabilities"} <= set(
        props
    )
    assert props["capabilities"] == dict.fromkeys(RABBITMQ_CAPABILITIES, True)
    assert set(start.mechanisms.split()) >= {b"PLAIN", b"AMQPLAIN"}
    assert start.locales == b"en_US"


def test_tune_proposes_rabbitmqs_defaults(wire: WireClient) -> None:
    wire.start()
    tune = wire.login()
    assert (tune.channel_max, tune.frame_max, tune.heartbeat) == (2047, 131072, 60)


def test_tune_ok_below_the_minimum_frame_max_is_refused(wire: WireClient, broker_url: str) -> None:
    wire.start()
    tune = wire.login()
    wire.send_method(0, m.ConnectionTuneOk(tune.channel_max, 1024, 0))
    try:
        close = wire.expect(m.ConnectionClose)
    except ConnectionResetError:
        # RabbitMQ 3.10 resets the socket right after writing its close (the text, the
        # same as ours, is in its log), so the frame is often lost; ours must arrive.
        assert broker_url == RABBITMQ_URL
        return
    assert close.reply_code == 530
    assert close.reply_text == (
        "NOT_ALLOWED - negotiated frame_max = 1024 is lower than the minimum allowed value (4096)"
    )
    assert (close.class_id, close.method_id) == (10, 31)


def test_qos_with_a_prefetch_size_is_540_not_implemented(wire: WireClient) -> None:
    _opened(wire)
    wire.send_method(1, m.BasicQos(4096, 10, False))
    close = wire.expect(m.ConnectionClose)
    assert (close.reply_code, close.reply_text) == (
        540,
        "NOT_IMPLEMENTED - prefetch_size!=0 (4096)",
    )
    assert (close.class_id, close.method_id) == (60, 10)


def test_update_secret_is_answered_with_update_secret_ok(wire: WireClient) -> None:
    _opened(wire)
    wire.send_method(0, m.ConnectionUpdateSecret(wire.password.encode(), "refresh"))
    channel, method = wire.read_method()
    assert channel == 0
    assert isinstance(method, m.ConnectionUpdateSecretOk)
    # The connection goes on working.
    wire.send_method(1, m.QueueDeclare(0, "", False, False, True, True, False, {}))
    assert wire.expect(m.QueueDeclareOk).queue.startswith("amq.gen-")


def test_queue_delete_ok_comes_before_the_cancel_of_its_consumer(
    wire: WireClient, name: Name
) -> None:
    # py-amqp (kombu, Celery) fails if the cancel arrives while it awaits delete-ok.
    q = name("deleted")
    _opened(wire)
    wire.send_method(1, m.QueueDeclare(0, q, False, False, False, True, False, {}))
    wire.expect(m.QueueDeclareOk)
    wire.send_method(1, m.BasicConsume(0, q, "c1", False, False, False, False, {}))
    wire.expect(m.BasicConsumeOk)
    wire.send_method(1, m.QueueDelete(0, q, False, False, False))
    assert wire.expect(m.QueueDeleteOk).message_count == 0
    cancel = wire.expect(m.BasicCancel)
    assert cancel.consumer_tag == "c1"


def test_mandatory_return_precedes_the_confirm_ack(wire: WireClient, name: Name) -> None:
    _opened(wire)
    wire.send_method(1, m.ConfirmSelect(False))
    wire.expect(m.ConfirmSelectOk)
    wire.publish(1, "", name("nowhere"), b"lost", mandatory=True)
    returned = wire.expect(m.BasicReturn)
    assert (returned.reply_code, returned.reply_text) == (312, "NO_ROUTE")
    ack = wire.expect(m.BasicAck)
    assert (ack.delivery_tag, ack.multiple) == (1, False)


def test_publish_with_immediate_is_540_not_implemented(wire: WireClient, name: Name) -> None:
    _opened(wire)
    wire.send(
        encode_method_frame(1, m.BasicPublish(0, "", name("q"), False, True))
        + encode_frame(2, 1, struct.pack(">HHQ", 60, 0, 1) + b"\x00\x00")
        + encode_frame(3, 1, b"x")
    )
    close = wire.expect(m.ConnectionClose)
    assert (close.reply_code, close.reply_text) == (540, "NOT_IMPLEMENTED - immediate=true")
    assert (close.class_id, close.method_id) == (60, 40)


def test_channel_flow_inactive_is_540_not_implemented(wire: WireClient) -> None:
    _opened(wire)
    wire.send_method(1, m.ChannelFlow(True))
    assert wire.expect(m.ChannelFlowOk).active
    wire.send_method(1, m.ChannelFlow(False))
    close = wire.expect(m.ConnectionClose)
    assert (close.reply_code, close.reply_text) == (540, "NOT_IMPLEMENTED - active=false")
    assert (close.class_id, close.method_id) == (20, 20)


def test_opening_more_channels_than_channel_max_is_530(wire: WireClient) -> None:
    wire.start()
    tune = wire.login()
    wire.send_method(0, m.ConnectionTuneOk(2, tune.frame_max, 0))
    wire.send_method(0, m.ConnectionOpen(wire.vhost, "", False))
    wire.expect(m.ConnectionOpenOk)
    wire.open_channel(1)
    wire.open_channel(2)
    wire.send_method(3, m.ChannelOpen(""))
    close = wire.expect(m.ConnectionClose)
    assert (close.reply_code, close.reply_text) == (
        530,
        "NOT_ALLOWED - number of channels opened (2) has reached the negotiated channel_max (2)",
    )


def test_channel_max_limits_open_channels_not_channel_numbers(wire: WireClient) -> None:
    # aiormq's own suite opens channel 65535 (test_bad_channel): RabbitMQ counts open
    # channels against channel_max, whatever their numbers.
    wire.start()
    tune = wire.login()
    wire.send_method(0, m.ConnectionTuneOk(2, tune.frame_max, 0))
    wire.send_method(0, m.ConnectionOpen(wire.vhost, "", False))
    wire.expect(m.ConnectionOpenOk)
    wire.open_channel(65535)
    wire.open_channel(3)
    wire.send_method(1, m.ChannelOpen(""))
    close = wire.expect(m.ConnectionClose)
    assert (close.reply_code, close.reply_text) == (
        530,
        "NOT_ALLOWED - number of channels opened (2) has reached the negotiated channel_max (2)",
    )


def test_channel_open_on_channel_zero_is_504(wire: WireClient) -> None:
    wire.handshake()
    wire.send_method(0, m.ChannelOpen(""))
    close = wire.expect(m.ConnectionClose)
    assert (close.reply_code, close.reply_text) == (
        504,
        "CHANNEL_ERROR - unexpected method in connection state running",
    )
    assert (close.class_id, close.method_id) == (20, 10)


@pytest.mark.parametrize(
    "method",
    [m.ChannelCloseOk(), m.BasicGetEmpty(), m.TxCommitOk(), m.QueueDeclareOk("q", 0, 0)],
    ids=lambda method: method.NAME,
)
def test_a_method_only_the_server_may_send_is_503(wire: WireClient, method: m.Method) -> None:
    _opened(wire)
    wire.send_method(1, method)
    close = wire.expect(m.ConnectionClose)
    assert (close.reply_code, close.reply_text) == (503, "COMMAND_INVALID - unimplemented method")
    assert (close.class_id, close.method_id) == (method.CLASS_ID, method.METHOD_ID)


@pytest.mark.parametrize(
    "method",
    [
        m.BasicDeliver("ctag", 1, False, "", "q"),
        m.BasicReturn(312, "NO_ROUTE", "", "q"),
        m.BasicGetOk(1, False, "", "q", 0),
    ],
    ids=lambda method: method.NAME,
)
def test_a_content_method_only_the_server_may_send_is_503(
    wire: WireClient, method: m.Method
) -> None:
    # With its header and body after it, as a confused client would send it: refused at
    # the method, with the method named, not taken for a publish.
    _opened(wire)
    header = struct.pack(">HHQ", 60, 0, 3) + b"\x00\x00"
    wire.send(
        encode_method_frame(1, method) + encode_frame(2, 1, header) + encode_frame(3, 1, b"abc")
    )
    close = wire.expect(m.ConnectionClose)
    assert (close.reply_code, close.reply_text) == (503, "COMMAND_INVALID - unimplemented method")
    assert (close.class_id, close.method_id) == (60, method.METHOD_ID)


def test_a_content_header_without_a_publish_is_505(wire: WireClient) -> None:
    _opened(wire)
    wire.send(encode_frame(2, 1, struct.pack(">HHQ", 60, 0, 1) + b"\x00\x00"))
    close = wire.expect(m.ConnectionClose)
    assert (close.reply_code, close.reply_text) == (
        505,
        "UNEXPECTED_FRAME - expected method frame, got non method frame instead",
    )


@pytest.mark.parametrize(
    ("frame", "code", "text"),
    [
        (
            encode_frame(9, 1, b"x"),
            501,
            'FRAME_ERROR - type 9, all octets = <<"x">>: unknown_frame',
        ),
        (
            encode_frame(9, 1, bytes(range(20))),
            501,
            "FRAME_ERROR - type 9, first 16 octets = <<0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15>>: "
            "unknown_frame",
        ),
        (
            encode_frame(1, 1, b"\x00" * 200000),
            501,
            "FRAME_ERROR - type 1, all octets = <<>>: {frame_too_large,200000,131064}",
        ),
        (encode_frame(8, 1, b""), 505, "UNEXPECTED_FRAME - type 8, all octets = <<>>"),
        # Found by the fuzzer's differential run (docs/reliability.md).
        (
            encode_frame(2, 2, struct.pack(">HHQ", 60, 0, 3) + b"\x00\x00"),
            505,
            "UNEXPECTED_FRAME - expected method frame, got non method frame instead",
        ),
        (
            encode_frame(3, 2, b"abc"),
            505,
            "UNEXPECTED_FRAME - expected method frame, got non method frame instead",
        ),
        (
            encode_frame(1, 1, b"\x00\x32"),
            501,
            "FRAME_ERROR - type 1, all octets = <<0,50>>: unknown_frame",
        ),
    ],
    ids=[
        "unknown-type",
        "unknown-type-long",
        "too-large",
        "heartbeat-on-channel",
        "header-on-unopened-channel",
        "body-on-unopened-channel",
        "method-shorter-than-its-ids",
    ],
)
def test_bad_frames_are_refused_with_rabbitmqs_texts(
    wire: WireClient, frame: bytes, code: int, text: str
) -> None:
    _opened(wire)
    try:
        wire.send(frame)
    except ConnectionResetError:
        pass  # the broker may hang up while an oversized frame is still being sent
    close = wire.expect(m.ConnectionClose)
    assert (close.reply_code, close.reply_text) == (code, text)
