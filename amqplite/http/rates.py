"""Message rates (``*_details.rate``) computed from the broker's monotonically growing counters.

Layer: ``amqplite/http``.  Pure.  The broker keeps plain counters and nothing else, so the
per-message path stays cheap; rates are derived here, lazily, only when somebody asks:
each request records at most one sample per key per ``min_interval`` and the rate is the
counter's growth over the samples kept within ``window`` seconds.  Nobody looking costs
nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

import attrs


@attrs.define(slots=True, eq=False)
class RateTracker:
    window: float = 10.0
    min_interval: float = 0.5
    _samples: dict[Hashable, deque[tuple[float, int]]] = attrs.Factory(dict)

    def rate(self, key: Hashable, count: int, now: float) -> float:
        """Per-second rate of ``count`` for ``key``; 0.0 until two samples exist."""
        samples = self._samples.get(key)
        if samples is None:
            samples = self._samples[key] = deque()
        if not samples or now - samples[-1][0] >= self.min_interval:
            samples.append((now, count))
        while len(samples) > 2 and now - samples[0][0] > self.window:
            samples.popleft()
        first_t, first_count = samples[0]
        if now - first_t <= 0 or count < first_count:
            return 0.0
        return round((count - first_count) / (now - first_t), 1)

    def forget_missing(self, live: set[Hashable]) -> None:
        """Drop samples of objects that no longer exist (called now and then)."""
        for key in [k for k in self._samples if k not in live]:
            del self._samples[key]
