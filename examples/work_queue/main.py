"""Work queue with competing consumers and prefetch (pika).

Two workers share `tasks.todo`; each has prefetch 1, so a busy worker gets no new task
until it acks its current one and the fast worker ends up doing more of the work.
Run a broker with examples/work_queue/topology.yaml, then: python examples/work_queue/main.py
(AMQP_URL overrides amqp://guest:guest@localhost:5672/).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

import pika

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")
TASKS = 20


def worker(name: str, delay: float, done: Counter[str], finished: threading.Event) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1)
    for method, _, body in channel.consume("tasks.todo", inactivity_timeout=0.2):
        if method is None:
            if finished.is_set():
                break
            continue
        time.sleep(delay)  # pretend to work
        channel.basic_ack(method.delivery_tag)
        done[name] += 1
        print(f"{name} did {body.decode()}")
        if sum(done.values()) == TASKS:
            finished.set()
    channel.cancel()
    connection.close()


def main() -> None:
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()
    channel.confirm_delivery()
    for i in range(TASKS):
        channel.basic_publish(
            "tasks",
            "task",
            f"task {i}".encode(),
            pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
        )
    print(f"published {TASKS} tasks (all confirmed)")
    connection.close()

    done: Counter[str] = Counter()
    finished = threading.Event()
    workers = [
        threading.Thread(target=worker, args=("fast-worker", 0.005, done, finished)),
        threading.Thread(target=worker, args=("slow-worker", 0.05, done, finished)),
    ]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    print(f"fast-worker did {done['fast-worker']}, slow-worker did {done['slow-worker']}")
    print(f"all {sum(done.values())} tasks done")


if __name__ == "__main__":
    main()
