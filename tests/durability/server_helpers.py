"""Running a durable broker in-process (a real server on a real store) for pika tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pika

from amqplite.app import RunningBroker, build_broker, run_in_thread
from amqplite.settings import ServerSettings
from amqplite.store import FileStore
from amqplite.store.files import StoreFile


@contextmanager
def durable_broker(
    data_dir: Path,
    *,
    opener: Callable[..., StoreFile] = StoreFile,
    disk_free_limit: int = 0,
    clock: Callable[[], float] = time.time,
) -> Iterator[RunningBroker]:
    """A broker serving AMQP on a file store in ``data_dir``; the store is closed cleanly
    after the server stopped (a graceful shutdown)."""
    store = FileStore.open(data_dir, opener=opener)
    failed = False
    try:
        broker = build_broker(None, store=store, clock=clock)
        settings = ServerSettings(port=0, disk_free_limit=disk_free_limit)
        with run_in_thread(broker=broker, settings=settings, shutdown_timeout=0.5) as running:
            yield running
            failed = running.server.guard is not None and running.server.guard.failure is not None
    finally:
        if failed:
            store.abandon()  # as `amqplite serve` does: never mark a failed store clean
        else:
            store.close()


def connect(running: RunningBroker, **kwargs: Any) -> pika.BlockingConnection:
    params = pika.URLParameters(running.url)
    for key, value in kwargs.items():
        setattr(params, key, value)
    return pika.BlockingConnection(params)


def persistent(**kwargs: Any) -> pika.BasicProperties:
    return pika.BasicProperties(delivery_mode=2, **kwargs)
