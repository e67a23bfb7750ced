"""Heartbeat timing as a pure helper: the caller passes ``now``; nothing here reads a clock (protocol layer).

The server sends a heartbeat frame when it has sent nothing for half the negotiated
interval, and drops a peer it has heard nothing from for two intervals, as RabbitMQ
does.  Any bytes count, not only heartbeat frames.  An interval of 0 disables both.
"""

from __future__ import annotations

import attrs


@attrs.define(slots=True, eq=False)
class HeartbeatMonitor:
    """Tracks last send/receive times for one connection; all times are caller seconds."""

    interval: float
    last_received: float = 0.0
    last_sent: float = 0.0

    def start(self, now: float) -> None:
        self.last_received = self.last_sent = now

    def data_received(self, now: float) -> None:
        self.last_received = now

    def data_sent(self, now: float) -> None:
        self.last_sent = now

    def send_due(self, now: float) -> bool:
        """True when a heartbeat frame should go out now."""
        return bool(self.interval) and now - self.last_sent >= self.interval / 2

    def peer_timed_out(self, now: float) -> bool:
        """True when the peer has been silent for two intervals."""
        return bool(self.interval) and now - self.last_received >= self.interval * 2

    def next_deadline(self) -> float | None:
        """When :meth:`send_due` or :meth:`peer_timed_out` may next become true."""
        if not self.interval:
            return None
        return min(self.last_sent + self.interval / 2, self.last_received + self.interval * 2)
