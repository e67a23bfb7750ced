"""The fanout exchange: every bound destination, whatever the key (broker layer)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from amqplite.broker.exchanges.base import Destination, Router, add_ref, drop_ref
from amqplite.message import FieldTable


class FanoutRouter(Router):
    __slots__ = ("_refs",)

    def __init__(self) -> None:
        self._refs: dict[Any, int] = {}

    def bind(self, routing_key: str, arguments: FieldTable, destination: Destination) -> None:
        add_ref(self._refs, destination)

    def unbind(self, routing_key: str, arguments: FieldTable, destination: Destination) -> None:
        drop_ref(self._refs, destination)

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> Collection[Any]:
        return self._refs
