"""Conformance fixtures: every scenario runs against amqplite and, when
AMQPLITE_RABBITMQ_URL names one, against a real RabbitMQ (the reference)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel

RABBITMQ_URL = os.environ.get("AMQPLITE_RABBITMQ_URL")


@pytest.fixture(
    params=[
        "amqplite",
        pytest.param(
            "rabbitmq",
            marks=[
                pytest.mark.rabbitmq,
                pytest.mark.skipif(not RABBITMQ_URL, reason="AMQPLITE_RABBITMQ_URL is not set"),
            ],
        ),
    ]
)
def broker_url(request: pytest.FixtureRequest) -> str:
    if request.param == "rabbitmq":
        assert RABBITMQ_URL is not None
        return RABBITMQ_URL
    url: str = request.getfixturevalue("amqplite_url")
    return url


@pytest.fixture
def name() -> Callable[[str], str]:
    """Unique resource names, so runs against a shared RabbitMQ never collide."""
    run = uuid.uuid4().hex[:8]
    return lambda base: f"conf.{run}.{base}"


@pytest.fixture
def connect(broker_url: str) -> Iterator[Callable[[], pika.BlockingConnection]]:
    opened: list[pika.BlockingConnection] = []

    def open_connection() -> pika.BlockingConnection:
        connection = pika.BlockingConnection(pika.URLParameters(broker_url))
        opened.append(connection)
        return connection

    yield open_connection
    for connection in opened:
        if connection.is_open:
            connection.close()


@pytest.fixture
def channel(connect: Callable[[], pika.BlockingConnection]) -> BlockingChannel:
    return connect().channel()
