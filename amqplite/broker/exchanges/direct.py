"""The direct exchange: exact routing-key match (broker layer)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from amqplite.broker.exchanges.base import Destination, Router, add_ref, drop_ref
from amqplite.message import FieldTable

_EMPTY: tuple[Any, ...] = ()


class DirectRouter(Router):
    __slots__ = ("_by_key",)

    def __init__(self) -> None:
        self._by_key: dict[str, dict[Any, int]] = {}

    def bind(self, routing_key: str, arguments: FieldTable, destination: Destination) -> None:
        add_ref(self._by_key.setdefault(routing_key, {}), destination)

    def unbind(self, routing_key: str, arguments: FieldTable, destination: Destination) -> None:
        refs = self._by_key.get(routing_key)
        if refs is not None:
            drop_ref(refs, destination)
            if not refs:
                del self._by_key[routing_key]

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> Collection[Any]:
        # The refcount dict's keys are the destination set; no copy on the hot path.
        return self._by_key.get(routing_key, _EMPTY)
