"""Write positions for group commit, shared by every store.

Layer: ``amqplite/store``.  A store counts the writes a confirm may wait for
(``position``) and how far the last sync reached (``durable_position``); the server
confirms a publish once ``is_durable(its position)``.  Both stores keep the two counters
the same way, so the bookkeeping lives here once.
"""

from __future__ import annotations


class SyncPositions:
    """Mixin: ``_position`` / ``_durable_position`` and the read-only views of them."""

    __slots__ = ("_durable_position", "_position")

    def __init__(self) -> None:
        self._position = 0
        self._durable_position = 0

    @property
    def position(self) -> int:
        """Writes so far that a confirm may wait for (appends and topology records)."""
        return self._position

    @property
    def durable_position(self) -> int:
        """How far the last completed sync reached."""
        return self._durable_position

    @property
    def needs_sync(self) -> bool:
        return self._durable_position < self._position

    def is_durable(self, position: int) -> bool:
        return position <= self._durable_position
