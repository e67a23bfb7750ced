"""One definitions model: the broker's topology and users as frozen values.

Layer: broker core (pure: no I/O, no clock).  Everything that reads or writes "what a broker
declares" goes through here:

* :mod:`.model` -- the frozen specs (vhosts, exchanges, queues, bindings, users,
  permissions) and :class:`Definitions`, a whole set of them;
* :func:`snapshot` -- what a :class:`~amqplite.broker.Broker` holds now, as definitions;
* :func:`plan` -- a pure comparison of two definitions (current vs wanted) against a
  :class:`Target` (what the broker on the other end can do and refuses);
* :func:`apply` -- the one all-or-nothing applier of a plan to a broker;
* :mod:`.rabbit_json` -- the one codec between RabbitMQ's definitions JSON and definitions;
* :mod:`.records` -- the store's topology records read back as definitions (recovery).

YAML (``amqplite.topology``), the HTTP API, the CLI and recovery are callers around it.
"""

from __future__ import annotations

from amqplite.broker.definitions.apply import ApplyFailed, ApplyReport, PlanRefused, apply
from amqplite.broker.definitions.model import (
    EXCHANGE_TYPES,
    NOWHERE,
    PREDECLARED_EXCHANGES,
    BindingSpec,
    Definitions,
    ExchangeSpec,
    PermissionSpec,
    PlainPassword,
    Position,
    QueueSpec,
    Reference,
    TopicPermissionSpec,
    UserSpec,
    VHostSpec,
)
from amqplite.broker.definitions.plan import AMQPLITE, Plan, PlanItem, Target, plan
from amqplite.broker.definitions.snapshot import snapshot

__all__ = [
    "AMQPLITE",
    "EXCHANGE_TYPES",
    "NOWHERE",
    "PREDECLARED_EXCHANGES",
    "ApplyFailed",
    "ApplyReport",
    "BindingSpec",
    "Definitions",
    "ExchangeSpec",
    "PermissionSpec",
    "PlainPassword",
    "Plan",
    "PlanItem",
    "PlanRefused",
    "Position",
    "QueueSpec",
    "Reference",
    "Target",
    "TopicPermissionSpec",
    "UserSpec",
    "VHostSpec",
    "apply",
    "plan",
    "snapshot",
]
