"""Fixtures for the TLS tests: a CA and certificates made by ``trustme`` in the test, and
a broker with an AMQPS listener and an HTTPS API, started from a YAML config naming them.

The broker runs in a background thread (:func:`amqplite.run_in_thread`) so the tests can
use pika's blocking client, aio-pika's own event loop and raw ``ssl`` sockets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tlskit import LogWatch, Pki, write_config

import amqplite
from amqplite.app import RunningBroker


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


Starter = Callable[..., Any]


@pytest.fixture
def start_broker(pki: Pki) -> Iterator[Starter]:
    """``with start_broker(**server_keys) as running:`` a broker with AMQPS and HTTPS."""

    @contextmanager
    def start(extra_users: str = "", **server: Any) -> Iterator[RunningBroker]:
        server.setdefault("http_tls", "true")
        config = write_config(pki, extra_users, **server)
        with amqplite.run_in_thread(config, http_port=0, shutdown_timeout=0.5) as running:
            yield running

    yield start


@pytest.fixture
def tls_broker(start_broker: Starter) -> Iterator[RunningBroker]:
    with start_broker() as running:
        yield running


@pytest.fixture
def broker_log() -> Iterator[LogWatch]:
    watch = LogWatch()
    logger = logging.getLogger("amqplite")
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(watch)
    yield watch
    logger.removeHandler(watch)
    logger.setLevel(old_level)
