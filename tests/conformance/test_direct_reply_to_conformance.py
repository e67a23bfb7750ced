"""Direct reply-to (``amq.rabbitmq.reply-to``) beyond the round trip: declares of the
pseudo-queue and of reply addresses, and mandatory publishes to addresses that lead
nowhere.  Checked against amqplite and, when AMQPLITE_RABBITMQ_URL is set, RabbitMQ.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel

Name = Callable[[str], str]
Connect = Callable[[], pika.BlockingConnection]

RABBITMQ_URL = os.environ.get("AMQPLITE_RABBITMQ_URL")
REPLY_TO = "amq.rabbitmq.reply-to"


def _reply_address(connect: Connect, name: Name) -> tuple[pika.BlockingConnection, str]:
    """A client connection with a reply consumer, and the address a server sees."""
    server = connect().channel()
    server.confirm_delivery()
    rpc = name("rpc")
    server.queue_declare(rpc, exclusive=True)
    client_connection = connect()
    client = client_connection.channel()
    client.confirm_delivery()
    client.basic_consume(REPLY_TO, lambda *_: None, auto_ack=True)
    client.basic_publish("", rpc, b"request", pika.BasicProperties(reply_to=REPLY_TO))
    method, props, _ = server.basic_get(rpc, auto_ack=True)
    assert method is not None
    address: str = props.reply_to
    assert address.startswith(REPLY_TO + ".")
    return client_connection, address


def test_declaring_the_pseudo_queue_succeeds_passive_or_not(channel: BlockingChannel) -> None:
    for passive in (True, False):
        ok = channel.queue_declare(REPLY_TO, passive=passive).method
        assert (ok.queue, ok.message_count, ok.consumer_count) == (REPLY_TO, 0, 1)


def test_a_live_reply_address_can_be_declared_from_another_connection(
    connect: Connect, name: Name
) -> None:
    _, address = _reply_address(connect, name)
    ok = connect().channel().queue_declare(address, passive=True).method
    assert (ok.queue, ok.message_count, ok.consumer_count) == (address, 0, 1)


def test_mandatory_replies_to_a_gone_consumer_are_returned(
    connect: Connect, name: Name, broker_url: str
) -> None:
    client_connection, address = _reply_address(connect, name)
    replier = connect().channel()
    replier.confirm_delivery()
    try:
        replier.basic_publish("", address, b"on time", mandatory=True)
    except pika.exceptions.UnroutableError:
        # RabbitMQ 3.10 bug: it returns mandatory replies even though it delivered them.
        assert broker_url == RABBITMQ_URL
    client_connection.close()
    with pytest.raises(pika.exceptions.UnroutableError) as info:
        replier.basic_publish("", address, b"too late", mandatory=True)
    [returned] = info.value.messages
    assert (returned.method.reply_code, returned.method.reply_text) == (312, "NO_ROUTE")
    with pytest.raises(pika.exceptions.UnroutableError):
        replier.basic_publish("", REPLY_TO + ".not-a-token", b"nowhere", mandatory=True)


def test_a_second_reply_consumer_on_a_channel_is_406(channel: BlockingChannel) -> None:
    channel.basic_consume(REPLY_TO, lambda *_: None, auto_ack=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        channel.basic_consume(REPLY_TO, lambda *_: None, auto_ack=True)
    assert (info.value.reply_code, info.value.reply_text) == (
        406,
        "PRECONDITION_FAILED - reply consumer already set",
    )


def test_basic_get_from_the_pseudo_queue_is_404(channel: BlockingChannel) -> None:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        channel.basic_get(REPLY_TO)
    assert (info.value.reply_code, info.value.reply_text) == (
        404,
        f"NOT_FOUND - no queue '{REPLY_TO}' in vhost '/'",
    )
