"""Every example in examples/ runs against an embedded amqplite with its own topology."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from amqplite.server.app import run_in_thread

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
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_and_prints_what_happened(name: str) -> None:
    with run_in_thread(EXAMPLES / name / "topology.yaml") as running:
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / name / "main.py")],
            env={**os.environ, "AMQP_URL": running.url},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    for line in EXPECTED[name]:
        assert line in result.stdout, result.stdout
