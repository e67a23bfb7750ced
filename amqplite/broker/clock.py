"""A controllable clock for driving the broker core's timers in tests (broker layer).

The core never reads the system clock: ``Broker(clock=...)`` takes any zero-argument
callable returning wall-clock seconds as a float.  ``FakeClock`` is that callable with a
hand on the dial, so TTL and x-expires tests run in microseconds without sleeping.
"""

from __future__ import annotations


class FakeClock:
    """``FakeClock(start)()`` returns ``start`` until :meth:`advance` moves it forward."""

    __slots__ = ("now",)

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` and return the new time."""
        if seconds < 0:
            raise ValueError("a clock does not run backwards")
        self.now += seconds
        return self.now
