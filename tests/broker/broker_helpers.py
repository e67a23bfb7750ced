"""Test helpers for driving the broker core directly: a recording sink and message builders."""

from __future__ import annotations

from typing import Any

from sinks import RecordingSink  # re-exported for the broker tests

from amqplite.broker import Broker, Channel, FakeClock
from amqplite.message import BasicProperties, Message


def msg(
    body: bytes | str = b"x", *, exchange: str = "", routing_key: str = "", **props: Any
) -> Message:
    if isinstance(body, str):
        body = body.encode()
    return Message(
        exchange=exchange, routing_key=routing_key, properties=BasicProperties(**props), body=body
    )


def publish(
    ch: Channel, exchange: str, routing_key: str, body: bytes | str = b"x", **props: Any
) -> Any:
    return ch.publish(
        exchange, routing_key, msg(body, exchange=exchange, routing_key=routing_key, **props)
    )


class World:
    """A broker on a fake clock with one vhost "/" and helpers to open channels."""

    def __init__(self) -> None:
        self.clock = FakeClock(1_700_000_000.0)
        self.broker = Broker(clock=self.clock)
        self.vhost = self.broker.add_vhost("/")
        self.conn = self.broker.open_connection("/")
        self.sink = RecordingSink()
        self.ch = self.conn.open_channel(1, self.sink)
        self._n = 1

    def channel(self, conn: Any = None) -> tuple[Channel, RecordingSink]:
        self._n += 1
        sink = RecordingSink()
        return (conn or self.conn).open_channel(self._n, sink), sink

    def connection(self) -> Any:
        return self.broker.open_connection("/")
