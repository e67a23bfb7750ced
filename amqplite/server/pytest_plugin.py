"""pytest plugin (entry point ``amqplite``): a real broker per test, for any test suite.

Server layer.  Fixtures:

- ``amqplite_broker``: function scope; a fresh broker on an ephemeral 127.0.0.1 port in a
  background thread (works for sync, trio and asyncio tests alike); yields a
  :class:`~amqplite.server.app.RunningBroker` (``.url``, ``.port``, ``.broker``,
  ``.call(fn, *args)`` to touch the broker from the test's thread).
- ``amqplite_url``: its URL, ``amqp://guest:guest@127.0.0.1:PORT/``.

Starting one takes a few milliseconds (a thread, a trio run and a listening socket).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from amqplite.server.app import RunningBroker


@pytest.fixture
def amqplite_broker() -> Iterator[RunningBroker]:
    """A fresh amqplite broker for this test (guest/guest, vhost ``/``)."""
    # Imported when used, so merely having the plugin installed costs nothing.
    from amqplite.server.app import run_in_thread

    # Clients a test leaves open get a short grace period to answer the 320 close.
    with run_in_thread(shutdown_timeout=0.2) as running:
        yield running


@pytest.fixture
def amqplite_url(amqplite_broker: RunningBroker) -> str:
    """The AMQP URL of this test's broker."""
    return amqplite_broker.url
