"""pika's callback-style SelectConnection against amqplite."""

from __future__ import annotations

from typing import Any

import pika
from pika.channel import Channel
from pika.spec import Basic, BasicProperties


class Scenario:
    """Topic routing, confirms, a mandatory return, prefetch, ack / nack / reject,
    dead-lettering and a 404, all driven by pika's callbacks."""

    def __init__(self, url: str) -> None:
        self.events: list[Any] = []
        self.confirms: list[tuple[str, int]] = []
        self.returned: list[bytes] = []
        self.received: list[bytes] = []
        self.dead: list[tuple[bytes, dict[str, Any]]] = []
        self.closed_with: tuple[int, str] | None = None
        self.connection = pika.SelectConnection(
            pika.URLParameters(url),
            on_open_callback=self.on_open,
            on_close_callback=lambda *_: self.connection.ioloop.stop(),
        )
        self.channel: Channel
        self.connection.ioloop.call_later(10, self.connection.ioloop.stop)

    def run(self) -> None:
        self.connection.ioloop.start()

    def on_open(self, connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=self.on_channel)

    def on_channel(self, channel: Channel) -> None:
        self.channel = channel
        channel.add_on_return_callback(self.on_return)
        channel.confirm_delivery(self.on_confirm, callback=lambda _: self.declare())

    def declare(self) -> None:
        ch = self.channel
        ch.exchange_declare("events", "topic")
        ch.queue_declare("dead")
        ch.queue_declare(
            "audit",
            arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"},
        )
        ch.queue_bind("audit", "events", "user.*.created")
        ch.queue_bind("audit", "events", "billing.#", callback=lambda _: self.publish())

    def publish(self) -> None:
        ch = self.channel
        for key in ["user.42.created", "billing.invoice.paid", "user.created", "billing"]:
            ch.basic_publish("events", key, key.encode())
        ch.basic_publish("events", "nobody.listens", b"returned", mandatory=True)
        ch.basic_qos(prefetch_count=2, callback=lambda _: self.consume())

    def consume(self) -> None:
        self.channel.basic_consume("audit", self.on_message)

    def on_confirm(self, frame: Any) -> None:
        method = frame.method
        self.confirms.append((method.NAME, method.delivery_tag))

    def on_return(
        self, ch: Channel, method: Basic.Return, props: BasicProperties, body: bytes
    ) -> None:
        self.returned.append(body)

    def on_message(
        self, ch: Channel, method: Basic.Deliver, props: BasicProperties, body: bytes
    ) -> None:
        self.received.append(body)
        n = len(self.received)
        if n == 1:
            ch.basic_ack(method.delivery_tag)
        elif n == 2:
            ch.basic_nack(method.delivery_tag, requeue=False)
        elif n == 3:
            ch.basic_reject(method.delivery_tag, requeue=False)
        if n == 3:
            ch.basic_get("dead", self.on_dead, auto_ack=True)

    def on_dead(
        self, ch: Channel, method: Basic.GetOk, props: BasicProperties, body: bytes
    ) -> None:
        self.dead.append((body, props.headers))
        if len(self.dead) < 2:
            ch.basic_get("dead", self.on_dead, auto_ack=True)
        else:
            ch.add_on_close_callback(self.on_channel_closed)
            ch.queue_declare("missing", passive=True)

    def on_channel_closed(self, ch: Channel, reason: Exception) -> None:
        self.closed_with = (reason.reply_code, reason.reply_text)  # type: ignore[attr-defined]
        self.connection.close()


def test_select_connection_full_flow(amqplite_url: str) -> None:
    scenario = Scenario(amqplite_url)
    scenario.run()
    assert scenario.received == [b"user.42.created", b"billing.invoice.paid", b"billing"]
    assert scenario.returned == [b"returned"]
    # Every publish confirmed, the return included; acks may be folded (multiple).
    assert scenario.confirms and scenario.confirms[-1] == ("Basic.Ack", 5)
    bodies = [body for body, _ in scenario.dead]
    assert bodies == [b"billing.invoice.paid", b"billing"]
    reasons = [headers["x-death"][0]["reason"] for _, headers in scenario.dead]
    assert reasons == ["rejected", "rejected"]
    assert scenario.dead[0][1]["x-death"][0]["queue"] == "audit"
    assert scenario.closed_with == (404, "NOT_FOUND - no queue 'missing' in vhost '/'")
