"""Every example in examples/ runs against an embedded amqplite with its own topology."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from amqplite.app import run_in_thread
from amqplite.client import ChannelClosed, connect

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

EXPECTED = {
    "work_queue": ["published 20 tasks (all confirmed)", "all 20 tasks done"],
    "pubsub_fanout": [
        "published 3 headlines",
        "news.email got 3: broker written in Python, fanout works, subscribers rejoice",
        "news.sms got 3:",
        "temporary got 3:",
    ],
    "topic_routing": [
        "logs.eu-errors (eu.*.error) got: eu.payments.error, eu.search.error",
        "logs.payments (*.payments.#) got: eu.payments.error, us.payments.info, "
        "us.payments.refunds.warning",
        "logs.all (#) got: "
        + ", ".join(
            [
                "eu.payments.error",
                "eu.search.error",
                "us.payments.info",
                "us.payments.refunds.warning",
                "eu.search.info",
            ]
        ),
    ],
    "dead_letters": [
        "consumer rejects order 17",
        "dead-letter queue got order 17 (routing key orders.dead)",
        "x-death: reason=rejected queue=orders count=1 exchange='' routing-keys=['orders']",
    ],
    "event_stream": [
        "audit replayed 6 events from the first offset: offsets 0..5 (order.created, "
        "order.paid, order.created, order.shipped, order.paid, order.cancelled)",
        "dashboard saw only the 2 new events: offsets 4..5 (order.paid, order.cancelled)",
        "a reader starting at offset 4 got: offsets 4..5 (order.paid, order.cancelled)",
    ],
}


def _run_example(name: str, url: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name / "main.py")],
        env={**os.environ, "AMQP_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for line in EXPECTED[name]:
        assert line in result.stdout, result.stdout


def _skip_without_streams(url: str) -> None:
    with connect(url) as conn:
        try:
            conn.channel().queue_declare(
                "probe.stream", durable=True, arguments={"x-queue-type": "stream"}
            )
        except ChannelClosed as exc:
            pytest.skip(f"no stream queues in this broker yet: {exc.reply_text}")
        conn.channel().queue_delete("probe.stream")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_and_prints_what_happened(name: str) -> None:
    with run_in_thread(EXAMPLES / name / "topology.yaml") as running:
        if name == "event_stream":
            _skip_without_streams(running.url)
        _run_example(name, running.url)


@pytest.mark.rabbitmq
def test_event_stream_example_runs_the_same_on_rabbitmq() -> None:
    url = os.environ.get("AMQPLITE_RABBITMQ_URL")
    if not url:
        pytest.skip("set AMQPLITE_RABBITMQ_URL to run the example against RabbitMQ")

    def clean() -> None:
        with connect(url) as conn, conn.channel() as ch:
            ch.queue_delete("events.log")
            ch.exchange_delete("events")

    clean()  # the example uses fixed names; start from an empty stream
    try:
        _run_example("event_stream", url)
    finally:
        clean()
