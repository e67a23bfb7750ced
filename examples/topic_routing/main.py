"""Topic routing with `*` and `#` (pika).

Run a broker with examples/topic_routing/topology.yaml, then:
python examples/topic_routing/main.py   (AMQP_URL overrides the broker URL)
"""

from __future__ import annotations

import os

import pika

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")
KEYS = [
    "eu.payments.error",
    "eu.search.error",
    "us.payments.info",
    "us.payments.refunds.warning",
    "eu.search.info",
]
QUEUES = {"logs.eu-errors": "eu.*.error", "logs.payments": "*.payments.#", "logs.all": "#"}


def main() -> None:
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()
    channel.confirm_delivery()
    for key in KEYS:
        channel.basic_publish("logs", key, f"log line for {key}".encode())
        print(f"published {key}")
    for queue, pattern in QUEUES.items():
        keys = []
        while True:
            method, _, _ = channel.basic_get(queue, auto_ack=True)
            if method is None:
                break
            keys.append(method.routing_key)
        print(f"{queue} ({pattern}) got: {', '.join(keys)}")
    connection.close()


if __name__ == "__main__":
    main()
