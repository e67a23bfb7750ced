"""A loaded config file: server settings plus the definitions it declares.

Layer: topology.  The definitions themselves are the broker core's one model
(:mod:`amqplite.broker.definitions.model`, re-exported here); this module adds only what
is particular to a file: the ``server:`` section (the one
:class:`~amqplite.settings.ServerSettings` both listeners read), where the file came from, its warnings
and the problems that only a running broker can settle (names the file uses but does not
declare).
"""

from __future__ import annotations

import attrs

from amqplite.broker.definitions.model import (
    EXCHANGE_TYPES,
    PREDECLARED_EXCHANGES,
    BindingSpec,
    Definitions,
    ExchangeSpec,
    PermissionSpec,
    QueueSpec,
    TopicPermissionSpec,
    UserSpec,
    VHostSpec,
)
from amqplite.settings import ServerSettings
from amqplite.topology.problems import Problem

__all__ = [
    "EXCHANGE_TYPES",
    "PREDECLARED_EXCHANGES",
    "BindingSpec",
    "Config",
    "Definitions",
    "ExchangeSpec",
    "PermissionSpec",
    "QueueSpec",
    "ServerSettings",
    "TopicPermissionSpec",
    "UserSpec",
    "VHostSpec",
]


@attrs.frozen
class Config:
    """A whole file: server settings and the definitions (users and every vhost's topology).

    ``definitions.vhosts`` always contains ``server.default_vhost`` (first).  ``warnings``
    holds problems that do not stop loading (printed by ``amqplite topology validate``).
    ``unresolved`` holds the names the file uses without declaring them: errors for a file
    on its own, but a file applied to a running broker may use what the broker has
    (``definitions.requires`` lists them for the plan).
    """

    source: str
    server: ServerSettings = attrs.field(factory=ServerSettings)
    definitions: Definitions = attrs.field(factory=Definitions)
    warnings: tuple[Problem, ...] = attrs.field(default=(), eq=False)
    unresolved: tuple[Problem, ...] = attrs.field(default=(), eq=False)

    @property
    def vhosts(self) -> tuple[VHostSpec, ...]:
        return self.definitions.vhosts

    @property
    def users(self) -> tuple[UserSpec, ...]:
        return self.definitions.users

    def vhost(self, name: str) -> VHostSpec | None:
        return self.definitions.vhost(name)

    def permissions_of(self, user: str) -> tuple[PermissionSpec, ...]:
        return self.definitions.permissions_of(user)
