"""The default exchange "": routes to the queue named by the routing key (broker layer).

Every queue is implicitly bound to it; explicit bind/unbind is refused by the vhost.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from amqplite.broker.exchanges.base import Destination, Router
from amqplite.errors import access_refused
from amqplite.message import FieldTable

_EMPTY: tuple[Any, ...] = ()


class DefaultRouter(Router):
    __slots__ = ("_queues",)

    def __init__(self, queues: dict[str, Any]) -> None:
        self._queues = queues

    def validate_binding(self, routing_key: str, arguments: FieldTable) -> None:
        raise access_refused("operation not permitted on the default exchange")

    def bind(self, routing_key: str, arguments: FieldTable, destination: Destination) -> None:
        raise access_refused("operation not permitted on the default exchange")

    def unbind(self, routing_key: str, arguments: FieldTable, destination: Destination) -> None:
        raise access_refused("operation not permitted on the default exchange")

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> Collection[Any]:
        queue = self._queues.get(routing_key)
        return (queue,) if queue is not None else _EMPTY
