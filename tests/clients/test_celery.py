"""A Celery app with a real worker thread, brokered by amqplite (rpc:// results over AMQP)."""

from __future__ import annotations

import threading

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.exceptions import Reject
from kombu import Connection, Consumer, Exchange, Queue
from kombu.message import Message


@pytest.fixture
def app(amqplite_url: str) -> Celery:
    app = Celery("amqplite_tests", broker=amqplite_url, backend="rpc://")
    app.conf.update(
        task_queues=[
            Queue(
                "celery",
                Exchange("celery", type="direct"),
                routing_key="celery",
                queue_arguments={
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": "celery.dead",
                },
            )
        ],
        task_acks_late=True,
        worker_prefetch_multiplier=2,
        broker_connection_retry_on_startup=False,
        broker_transport_options={"confirm_publish": True},
    )
    return app


def test_celery_worker_runs_tasks_and_dead_letters_rejected_ones(
    app: Celery, amqplite_url: str
) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def explode() -> None:
        raise ValueError("boom")

    @app.task
    def refuse() -> None:
        raise Reject("not for me", requeue=False)

    with Connection(amqplite_url) as conn:
        Queue("celery.dead", channel=conn.channel()).declare()

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        results = [add.delay(i, i) for i in range(5)]
        assert [r.get(timeout=10) for r in results] == [0, 2, 4, 6, 8]
        with pytest.raises(ValueError, match="boom"):
            explode.delay().get(timeout=10)
        refused = refuse.delay()
        with Connection(amqplite_url) as conn:
            dead: list[Message] = []
            queue = Queue("celery.dead")
            with Consumer(conn, [queue], callbacks=[lambda _, m: dead.append(m)]):
                conn.drain_events(timeout=10)
        (message,) = dead
        # The worker notices it should stop only when its event loop wakes up, which
        # without traffic takes up to 10 s (kombu's longest timer sleep): send one task
        # right after start_worker asks it to stop.
        threading.Timer(0.1, lambda: add.apply_async((0, 0), ignore_result=True)).start()
        assert message.headers["id"] == refused.id
        (death,) = message.headers["x-death"]
        assert (death["queue"], death["reason"]) == ("celery", "rejected")
