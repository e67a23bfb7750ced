"""Clients of a running broker: a minimal blocking AMQP 0-9-1 client on a plain socket
(stdlib + our codec) and the management HTTP API client (:mod:`amqplite.client.http`).

Client layer.  Used by the ``amqplite`` CLI and by ``topology plan/apply`` against any
AMQP 0-9-1 broker, RabbitMQ included.  One thread, no background reader: each call blocks until
its reply arrives.  Typical use::

    with connect("amqp://guest:guest@127.0.0.1:5672/") as conn, conn.channel() as ch:
        ch.queue_declare("jobs", durable=True)
        ch.confirm_select()
        ch.publish("", "jobs", b"hello")
        assert ch.wait_for_confirms().ok
        msg = ch.basic_get("jobs")

A broker-side channel close (404, 406, ...) raises :class:`ChannelClosed` and leaves the
channel closed, so probes such as a passive declare use a channel of their own.
"""

from __future__ import annotations

from amqplite.client.channel import Channel, ConfirmReport, DeclareOk, Delivery, Returned
from amqplite.client.connection import Connection, connect
from amqplite.client.errors import (
    ApiError,
    BrokerClosed,
    ChannelClosed,
    ClientError,
    ConnectionClosed,
)
from amqplite.client.url import AmqpUrl, TlsOptions, parse_url

__all__ = [
    "AmqpUrl",
    "ApiError",
    "BrokerClosed",
    "Channel",
    "ChannelClosed",
    "ClientError",
    "ConfirmReport",
    "Connection",
    "ConnectionClosed",
    "DeclareOk",
    "Delivery",
    "Returned",
    "TlsOptions",
    "connect",
    "parse_url",
]
