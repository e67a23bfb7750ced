"""A Celery app with a real worker thread, brokered by amqplite (rpc:// results over AMQP).

Dead-lettering is checked with a task that waits out its queue's TTL: Celery's own
``Reject(requeue=False)`` path occasionally never sends basic.reject (seen 3 times in 40
runs against RabbitMQ 3.10 as well), so it cannot be asserted on reliably.
"""

from __future__ import annotations

import threading

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from kombu import Connection, Consumer, Exchange, Queue
from kombu.message import Message

DEAD_LETTERS = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "celery.dead"}


@pytest.fixture
def app(amqplite_url: str) -> Celery:
    app = Celery("amqplite_tests", broker=amqplite_url, backend="rpc://")
    app.conf.update(
        task_queues=[
            Queue(
                "celery",
                Exchange("celery", type="direct"),
                routing_key="celery",
                queue_arguments=DEAD_LETTERS,
            )
        ],
        task_acks_late=True,
        worker_prefetch_multiplier=2,
        broker_connection_retry_on_startup=False,
        broker_transport_options={"confirm_publish": True},
    )
    return app


def test_celery_worker_runs_tasks_and_expired_ones_are_dead_lettered(
    app: Celery, amqplite_url: str
) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def explode() -> None:
        raise ValueError("boom")

    # No worker consumes this queue: tasks sent to it expire into celery.dead.
    parking = Queue(
        "celery.parking",
        Exchange("celery.parking", type="direct"),
        routing_key="celery.parking",
        queue_arguments={"x-message-ttl": 20, **DEAD_LETTERS},
    )
    with Connection(amqplite_url) as conn:
        channel = conn.channel()
        Queue("celery.dead", channel=channel).declare()
        parking(channel).declare()

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        results = [add.delay(i, i) for i in range(5)]
        assert [r.get(timeout=10) for r in results] == [0, 2, 4, 6, 8]
        with pytest.raises(ValueError, match="boom"):
            explode.delay().get(timeout=10)
        parked = add.apply_async((1, 1), queue=parking)
        with Connection(amqplite_url) as conn:
            dead: list[Message] = []
            with Consumer(conn, [Queue("celery.dead")], callbacks=[lambda _, m: dead.append(m)]):
                conn.drain_events(timeout=10)
        # The worker notices it should stop only when its event loop wakes up, which
        # without traffic takes up to 10 s (kombu's longest timer sleep): send one task
        # right after start_worker asks it to stop.
        threading.Timer(0.1, lambda: add.apply_async((0, 0), ignore_result=True)).start()
    (message,) = dead
    assert message.headers["id"] == parked.id
    (death,) = message.headers["x-death"]
    assert (death["queue"], death["reason"], death["count"]) == ("celery.parking", "expired", 1)
    assert death["routing-keys"] == ["celery.parking"]
