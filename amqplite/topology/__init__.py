"""YAML config and topology: load with line numbers, validate everything, apply to a broker.

Layer: topology (imports the broker core, never the server).  Typical use::

    config = load_config("config/amqplite.yaml")   # TopologyError lists every problem
    report = apply(config, broker)                  # all-or-nothing; ApplyConflict if the
                                                    # broker holds something different
"""

from __future__ import annotations

from amqplite.topology.apply import ApplyReport, Plan, PlanItem, apply, plan
from amqplite.topology.loader import load_config, load_string
from amqplite.topology.model import (
    BindingSpec,
    Config,
    ExchangeSpec,
    PermissionSpec,
    QueueSpec,
    ServerSettings,
    UserSpec,
    VHostSpec,
)
from amqplite.topology.problems import ApplyConflict, Position, Problem, TopologyError

__all__ = [
    "ApplyConflict",
    "ApplyReport",
    "BindingSpec",
    "Config",
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
