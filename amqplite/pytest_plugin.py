"""pytest plugin (entry point ``amqplite``): a real broker per test, for any test suite.

On the composition root (:mod:`amqplite.app`).  Fixtures:

- ``amqplite_broker``: function scope; a fresh broker on an ephemeral 127.0.0.1 port in a
  background thread (works for sync, trio and asyncio tests alike); yields a
  :class:`~amqplite.app.RunningBroker` (``.url``, ``.port``, ``.broker``,
  ``.call(fn, *args)`` to touch the broker from the test's thread).  It serves every queue
  type, stream queues included (kept in memory).
- ``amqplite_url``: its URL, ``amqp://guest:guest@127.0.0.1:PORT/``.
- ``amqplite_clock``: ask for it (alongside either of the above) and the test's broker runs on
  a :class:`BrokerClock` instead of the system clock: time starts at the real time and moves
  only when the test calls ``amqplite_clock.advance(seconds)``, which also runs everything
  that became due at once (message TTL, queue expiry, stream retention and segment roll by
  age).  A test of "events older than 7 days are gone" then takes milliseconds::

      def test_retention(amqplite_clock, amqplite_url):
          ...publish to a stream declared with x-max-age: 7D...
          amqplite_clock.advance(8 * 86400)
          ...a consumer from "first" now gets only what came later...

- ``amqplite_http_url``: the management HTTP API of this test's broker,
  ``http://127.0.0.1:PORT/`` (asking for it starts the API; guest/guest as Basic auth).

The marker ``@pytest.mark.amqplite(topology="topology.yaml", http=True)`` shapes the
test's broker: ``topology`` is a YAML topology/config file (relative to the test file's
folder) whose vhosts, users, exchanges, queues and bindings exist before the test starts;
``http=True`` also starts the management HTTP API (``running.http_url``).

Starting one takes a few milliseconds (a thread, a trio run and a listening socket).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from amqplite.broker.clock import FakeClock

if TYPE_CHECKING:
    from amqplite.app import RunningBroker


class BrokerClock:
    """The clock of a test's broker: ``advance(seconds)`` moves it and runs what is due."""

    def __init__(self, start: float) -> None:
        self._clock = FakeClock(start)
        self._running: RunningBroker | None = None

    def __call__(self) -> float:
        return self._clock()

    @property
    def now(self) -> float:
        return self._clock.now

    def attach(self, running: RunningBroker) -> None:
        self._running = running

    def advance(self, seconds: float) -> float:
        """Move the broker's time forward and, in the broker's thread, run every deadline
        that passed (the ticker would only notice on its next wake-up); returns the new
        time.  Deliveries it causes are sent before this returns."""
        running = self._running
        if running is None:  # no broker yet: only the dial moves
            return self._clock.advance(seconds)

        def move() -> float:
            now = self._clock.advance(seconds)
            running.broker.tick()
            return now

        return running.call(move)


@pytest.fixture
def amqplite_clock() -> BrokerClock:
    """The broker's clock for this test (see the module docstring)."""
    return BrokerClock(time.time())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "amqplite(topology=None, http=False): the amqplite_broker fixture's topology "
        "file (relative to the test file) and whether it also serves the HTTP API",
    )


def _marker_options(request: pytest.FixtureRequest) -> tuple[Path | None, bool]:
    """The test's ``amqplite`` marker: (topology file, start the HTTP API)."""
    marker = request.node.get_closest_marker("amqplite")
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    unknown = set(kwargs) - {"topology", "http"}
    if unknown:
        raise pytest.UsageError(f"@pytest.mark.amqplite: unknown option(s) {sorted(unknown)}")
    topology: Path | None = None
    if kwargs.get("topology") is not None:
        topology = Path(request.path).parent / Path(kwargs["topology"])
    http = bool(kwargs.get("http", False)) or "amqplite_http_url" in request.fixturenames
    return topology, http


@pytest.fixture
def amqplite_broker(request: pytest.FixtureRequest) -> Iterator[RunningBroker]:
    """A fresh amqplite broker for this test (guest/guest, vhost ``/``, or the marker's
    topology), with the HTTP API when the marker or ``amqplite_http_url`` asks for it."""
    # Imported when used, so merely having the plugin installed costs nothing.
    from amqplite.app import build_broker, load, run_in_thread

    topology, http = _marker_options(request)
    config = load(topology)
    clock: BrokerClock | None = None
    if "amqplite_clock" in request.fixturenames:
        clock = request.getfixturevalue("amqplite_clock")
    broker = build_broker(config, clock=clock) if clock is not None else None
    # Clients a test leaves open get a short grace period to answer the 320 close.
    with run_in_thread(
        config, broker=broker, shutdown_timeout=0.2, http_port=0 if http else None
    ) as running:
        if clock is not None:
            clock.attach(running)
        yield running


@pytest.fixture
def amqplite_url(amqplite_broker: RunningBroker) -> str:
    """The AMQP URL of this test's broker."""
    return amqplite_broker.url


@pytest.fixture
def amqplite_http_url(amqplite_broker: RunningBroker) -> str:
    """The management HTTP API of this test's broker, ``http://127.0.0.1:PORT/``."""
    url = amqplite_broker.http_url
    assert url is not None  # asking for this fixture starts the API
    return url
