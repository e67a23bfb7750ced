"""Dead letters (pika): a consumer rejects an order, it lands in the dead-letter queue
with its x-death history, which this prints.

Run a broker with examples/dead_letters/topology.yaml, then:
python examples/dead_letters/main.py   (AMQP_URL overrides the broker URL)
"""

from __future__ import annotations

import json
import os

import pika

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")


def main() -> None:
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()
    channel.confirm_delivery()
    order = {"id": 17, "item": "teapot", "quantity": -1}
    channel.basic_publish(
        "",
        "orders",
        json.dumps(order).encode(),
        pika.BasicProperties(content_type="application/json"),
    )
    print(f"published order {order['id']}")

    for method, _, body in channel.consume("orders", inactivity_timeout=5):
        if method is None:
            raise SystemExit("no order arrived")
        received = json.loads(body)
        print(
            f"consumer rejects order {received['id']}: quantity {received['quantity']} is invalid"
        )
        channel.basic_reject(method.delivery_tag, requeue=False)
        break
    channel.cancel()

    for method, properties, body in channel.consume("orders.dead", inactivity_timeout=5):
        if method is None:
            raise SystemExit("nothing was dead-lettered")
        channel.basic_ack(method.delivery_tag)
        print(
            f"dead-letter queue got order {json.loads(body)['id']} (routing key {method.routing_key})"
        )
        for death in properties.headers["x-death"]:
            print(
                "x-death: reason={reason} queue={queue} count={count} exchange={exchange!r} "
                "routing-keys={keys}".format(keys=death["routing-keys"], **death)
            )
        break
    channel.cancel()
    connection.close()


if __name__ == "__main__":
    main()
