"""The broker core: vhosts, exchanges, queues, consumers, acks, TTL, dead-lettering, users.

Synchronous, deterministic, no I/O (see docs/architecture.md, "Broker core API").  The
session layer drives it through :class:`Channel`; deliveries come back through the
:class:`DeliverySink` each channel was opened with.
"""

from __future__ import annotations

from amqplite.broker.auth import User, UserDB
from amqplite.broker.broker import Broker, BrokerConnection, ConnectionInfo
from amqplite.broker.channel import Channel
from amqplite.broker.clock import FakeClock
from amqplite.broker.exchange import Binding, Exchange
from amqplite.broker.passwords import hash_password, verify_password
from amqplite.broker.queue import Queue, QueueEntry
from amqplite.broker.results import DeclareOk, DeliverySink, GetResult, PublishResult
from amqplite.broker.vhost import VHost

__all__ = [
    "Binding",
    "Broker",
    "BrokerConnection",
    "Channel",
    "ConnectionInfo",
    "DeclareOk",
    "DeliverySink",
    "Exchange",
    "FakeClock",
    "GetResult",
    "PublishResult",
    "Queue",
    "QueueEntry",
    "User",
    "UserDB",
    "VHost",
    "hash_password",
    "verify_password",
]
