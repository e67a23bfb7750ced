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
    max_keys: int = 200_000  # bound memory however many objects come and go
    _samples: dict[Hashable, deque[tuple[float, int]]] = attrs.Factory(dict)

    def rate(self, key: Hashable, count: int, now: float) -> float:
        """Per-second rate of ``count`` for ``key``; 0.0 until two samples exist."""
        samples = self._samples.get(key)
        if samples is None:
            if len(self._samples) >= self.max_keys:
                self._samples.clear()  # rates restart from zero; cheaper than tracking deletions
            samples = self._samples[key] = deque()
        if not samples or now - samples[-1][0] >= self.min_interval:
            samples.append((now, count))
        while len(samples) > 2 and now - samples[0][0] > self.window:
            samples.popleft()
        first_t, first_count = samples[0]
        if now - first_t <= 0 or count < first_count:
            return 0.0
        return round((count - first_count) / (now - first_t), 1)
