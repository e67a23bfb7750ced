"""An event stream (pika): a 7-day log that two readers consume independently.

``events.log`` is a stream queue (``x-queue-type: stream``, ``x-max-age: 7D``): consumers do
not remove what they read, each reader picks where to start with the ``x-stream-offset``
consumer argument, and every delivery carries its offset in the ``x-stream-offset`` header.

- ``audit`` replays the whole history from ``first``, including events published before it
  existed (a new service rebuilding its state);
- ``dashboard`` attaches at ``next`` and sees only what happens from then on (a live view).

Run a broker with examples/event_stream/topology.yaml, then:
python examples/event_stream/main.py   (AMQP_URL overrides the broker URL)
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")
STREAM = "events.log"


def declare(channel: BlockingChannel) -> None:
    """The same topology as topology.yaml (declaring it again with equal arguments is a no-op)."""
    channel.exchange_declare("events", "topic", durable=True)
    channel.queue_declare(
        STREAM, durable=True, arguments={"x-queue-type": "stream", "x-max-age": "7D"}
    )
    channel.queue_bind(STREAM, "events", "order.#")


def publish(channel: BlockingChannel, events: list[tuple[str, int]]) -> None:
    for kind, order in events:
        body = json.dumps({"order": order, "event": kind}).encode()
        channel.basic_publish("events", f"order.{kind}", body)  # confirmed: confirm_delivery


def read(channel: BlockingChannel, start: str | int, count: int) -> list[tuple[int, str]]:
    """``count`` events from a consumer attached at ``start``: (offset, routing key)."""
    channel.basic_qos(prefetch_count=100)  # streams refuse a consumer without a prefetch
    got: list[tuple[int, str]] = []
    consumer = channel.consume(STREAM, arguments={"x-stream-offset": start}, inactivity_timeout=5)
    for method, properties, _ in consumer:
        if method is None:
            raise SystemExit(f"reader at {start!r} got {len(got)} of {count} events")
        got.append((properties.headers["x-stream-offset"], method.routing_key))
        channel.basic_ack(method.delivery_tag)  # a stream ack only returns prefetch credit
        if len(got) == count:
            break
    channel.cancel()
    return got


def main() -> None:
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    producer = connection.channel()
    producer.confirm_delivery()
    declare(producer)
    publish(producer, [("created", 1), ("paid", 1), ("created", 2), ("shipped", 1)])
    print("published 4 events before any reader existed")

    # The dashboard attaches at "next" now, so it will see only what is published after this.
    live: list[tuple[int, str]] = []

    def on_event(ch: BlockingChannel, method: Any, properties: Any, _body: bytes) -> None:
        live.append((properties.headers["x-stream-offset"], method.routing_key))
        ch.basic_ack(method.delivery_tag)

    dashboard = connection.channel()
    dashboard.basic_qos(prefetch_count=100)
    dashboard.basic_consume(STREAM, on_event, arguments={"x-stream-offset": "next"})
    publish(producer, [("paid", 2), ("cancelled", 3)])
    print("published 2 more events")

    history = read(connection.channel(), "first", 6)
    print(f"audit replayed {len(history)} events from the first offset: {_show(history)}")

    deadline = time.monotonic() + 5
    while len(live) < 2 and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.1)
    if len(live) < 2:
        raise SystemExit(f"the dashboard got {len(live)} of 2 new events")
    print(f"dashboard saw only the {len(live)} new events: {_show(live)}")

    late = read(connection.channel(), 4, 2)  # an integer offset: start right there
    print(f"a reader starting at offset 4 got: {_show(late)}")
    connection.close()


def _show(events: list[tuple[int, str]]) -> str:
    first = events[0][0]
    return f"offsets {first}..{events[-1][0]} (" + ", ".join(k for _, k in events) + ")"


if __name__ == "__main__":
    main()
