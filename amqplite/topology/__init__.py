"""YAML config and topology: load with line numbers, validate everything, apply to a broker.

Layer: topology (imports the broker core, never the server).  A file loads into a
:class:`Config`: server settings plus the core's one definitions model
(:mod:`amqplite.broker.definitions`).  Typical use::

    config = load_config("config/amqplite.yaml")   # TopologyError lists every problem
    report = apply(config, broker)                  # all-or-nothing; ApplyConflict if the
                                                    # broker holds something different
"""

from __future__ import annotations

from amqplite.broker.definitions import (
    ApplyReport,
    BindingSpec,
    Definitions,
    ExchangeSpec,
    PermissionSpec,
    Plan,
    PlanItem,
    QueueSpec,
    UserSpec,
    VHostSpec,
)
from amqplite.topology.loader import load_config, load_string
from amqplite.topology.local import apply, plan
from amqplite.topology.model import Config, ServerSettings
from amqplite.topology.problems import ApplyConflict, Position, Problem, TopologyError

__all__ = [
    "ApplyConflict",
    "ApplyReport",
    "BindingSpec",
    "Config",
    "Definitions",
    "ExchangeSpec",
    "PermissionSpec",
    "Plan",
    "PlanItem",
    "Position",
    "Problem",
    "QueueSpec",
    "ServerSettings",
    "TopologyError",
    "UserSpec",
    "VHostSpec",
    "apply",
    "load_config",
    "load_string",
    "plan",
]
