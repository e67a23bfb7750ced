"""Exchange entities and binding values (broker layer).

An :class:`Exchange` pairs its declared properties with the router of its type and the
set of bindings it is the source of.  A :class:`Binding` is a value: RabbitMQ treats
two bindings with the same source, destination, key and arguments as one.
"""

from __future__ import annotations

from typing import Any

import attrs

from amqplite.broker.exchanges import Router
from amqplite.message import FieldTable


def freeze(value: Any) -> Any:
    """A hashable, order-insensitive (for tables) form of a field value."""
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return (type(value).__name__, value)


@attrs.frozen
class Binding:
    """source --routing_key/arguments--> destination (a queue or an exchange)."""

    source: str
    destination: str
    destination_type: str  # "queue" | "exchange"
    routing_key: str
    arguments: FieldTable = attrs.field(factory=dict, eq=False, hash=False)
    arguments_key: Any = attrs.field(default=None, repr=False)

    @classmethod
    def make(
        cls,
        source: str,
        destination: str,
        destination_type: str,
        routing_key: str,
        arguments: FieldTable,
    ) -> Binding:
        args = dict(arguments)
        return cls(source, destination, destination_type, routing_key, args, freeze(args))


class ExchangeStats:
    """Counters for the HTTP API: messages published in, and routed out to something."""

    __slots__ = ("publish_in", "publish_out", "unroutable")

    def __init__(self) -> None:
        self.publish_in = 0
        self.publish_out = 0
        self.unroutable = 0


class Exchange:
    """An exchange entity (slotted: looked at for every publish)."""

    __slots__ = (
        "alternate",
        "arguments",
        "auto_delete",
        "bindings",
        "deleted",
        "durable",
        "e2e_bindings",
        "incoming",
        "internal",
        "name",
        "router",
        "stats",
        "type",
    )

    def __init__(
        self,
        name: str,
        type: str,
        router: Router,
        *,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    ) -> None:
        self.name = name
        self.type = type
        self.router = router
        self.durable = durable
        self.auto_delete = auto_delete
        self.internal = internal
        self.arguments = dict(arguments)
        alternate = arguments.get("alternate-exchange")
        if isinstance(alternate, bytes):
            alternate = alternate.decode("utf-8", "replace")
        self.alternate: str | None = alternate if isinstance(alternate, str) else None
        self.bindings: dict[Binding, None] = {}  # this exchange is the source
        self.incoming: dict[Binding, None] = {}  # this exchange is the destination
        self.e2e_bindings = 0  # how many of ``bindings`` lead to exchanges
        self.deleted = False
        self.stats = ExchangeStats()

    def __repr__(self) -> str:
        return f"<Exchange {self.name!r} ({self.type})>"
