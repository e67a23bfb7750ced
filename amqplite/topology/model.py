"""The parsed config/topology as frozen values: what the loader produces, apply consumes.

Layer: topology.  Every spec remembers where it was written (``position``, excluded
from equality so two files declaring the same thing compare equal), so apply-time
conflicts can still name ``file:line``.  Queue and exchange arguments are already
normalised to RabbitMQ's ``x-...`` argument tables, exactly what a client would send in
``queue.declare`` / ``exchange.declare``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from amqplite.topology.problems import Position, Problem

#: Exchanges every vhost has from birth (RabbitMQ's predeclared set); "" is the default exchange.
PREDECLARED_EXCHANGES: Mapping[str, str] = {
    "": "direct",
    "amq.direct": "direct",
    "amq.fanout": "fanout",
    "amq.topic": "topic",
    "amq.headers": "headers",
    "amq.match": "headers",
}

EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")

_NOWHERE = Position("<defaults>", 0, 0)


@attrs.frozen
class ServerSettings:
    """The ``server:`` section; every field has a default."""

    host: str = "0.0.0.0"
    port: int = 5672
    http_host: str = "127.0.0.1"
    http_port: int = 15672
    data_dir: Path = Path("data")  # absolute after loading from a file
    heartbeat: int = 60
    frame_max: int = 131072
    channel_max: int = 2047
    max_message_size: int = 134217728
    disk_free_limit: int = 50_000_000  # bytes
    default_vhost: str = "/"


@attrs.frozen
class PermissionSpec:
    """A user's configure/write/read regular expressions on one vhost."""

    vhost: str
    configure: str
    write: str
    read: str
    position: Position = attrs.field(default=_NOWHERE, eq=False, repr=False)


@attrs.frozen
class UserSpec:
    """A user; the plain password (if the file had one) is hashed at load and not kept."""

    name: str
    password_hash: str = attrs.field(repr=False)
    tags: tuple[str, ...] = ()
    permissions: tuple[PermissionSpec, ...] = ()
    #: True when the file gave ``password`` (so the hash is freshly salted at each load).
    hashed_at_load: bool = attrs.field(default=False, eq=False)
    position: Position = attrs.field(default=_NOWHERE, eq=False, repr=False)


@attrs.frozen
class ExchangeSpec:
    name: str
    type: str
    durable: bool = True
    auto_delete: bool = False
    internal: bool = False
    arguments: Mapping[str, Any] = attrs.field(factory=dict)
    position: Position = attrs.field(default=_NOWHERE, eq=False, repr=False)


@attrs.frozen
class QueueSpec:
    name: str
    durable: bool = True
    auto_delete: bool = False
    arguments: Mapping[str, Any] = attrs.field(factory=dict)
    position: Position = attrs.field(default=_NOWHERE, eq=False, repr=False)
    #: Where each x-argument was written, so a conflict names the exact line.
    argument_positions: Mapping[str, Position] = attrs.field(factory=dict, eq=False, repr=False)
    #: The key path of each x-argument as written (``queues.q.arguments.max_length``).
    argument_paths: Mapping[str, str] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen
class BindingSpec:
    source: str
    destination: str
    destination_type: Literal["queue", "exchange"] = "queue"
    routing_key: str = ""
    arguments: Mapping[str, Any] = attrs.field(factory=dict)
    position: Position = attrs.field(default=_NOWHERE, eq=False, repr=False)


@attrs.frozen
class VHostSpec:
    name: str
    exchanges: tuple[ExchangeSpec, ...] = ()
    queues: tuple[QueueSpec, ...] = ()
    bindings: tuple[BindingSpec, ...] = ()
    position: Position = attrs.field(default=_NOWHERE, eq=False, repr=False)


@attrs.frozen
class Config:
    """A whole file: server settings, users and the topology of every vhost.

    ``vhosts`` always contains ``server.default_vhost`` (first).  ``warnings`` holds
    problems that do not stop loading (printed by ``amqplite topology validate``).
    """

    source: str
    server: ServerSettings = ServerSettings()
    users: tuple[UserSpec, ...] = ()
    vhosts: tuple[VHostSpec, ...] = ()
    warnings: tuple[Problem, ...] = attrs.field(default=(), eq=False)

    def vhost(self, name: str) -> VHostSpec | None:
        for v in self.vhosts:
            if v.name == name:
                return v
        return None
