"""The interface every exchange type's router implements (broker layer)."""

from __future__ import annotations

from collections.abc import Collection, Hashable
from typing import Any

from amqplite.message import FieldTable

Destination = Hashable


class Router:
    """Base router: subclasses override the four operations."""

    __slots__ = ()

    def validate_binding(self, routing_key: str, arguments: FieldTable) -> None:
        """Raise a 406 ChannelError if the binding cannot be made (e.g. a bad x-match)."""

    def bind(self, routing_key: str, arguments: FieldTable, destination: Destination) -> None:
        raise NotImplementedError

    def unbind(self, routing_key: str, arguments: FieldTable, destination: Destination) -> None:
        raise NotImplementedError

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> Collection[Any]:
        """The destinations for one routing key, each at most once."""
        raise NotImplementedError


def add_ref(refs: dict[Any, int], destination: Destination) -> None:
    refs[destination] = refs.get(destination, 0) + 1


def drop_ref(refs: dict[Any, int], destination: Destination) -> None:
    count = refs.get(destination)
    if count is None:
        return
    if count > 1:
        refs[destination] = count - 1
    else:
        del refs[destination]
