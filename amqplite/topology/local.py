"""A config file against a broker in this process: plan, and apply all or nothing.

Layer: topology.  The work is the definitions model's (:func:`~amqplite.broker.definitions.plan`
over a :func:`~amqplite.broker.definitions.snapshot`, then the one
:func:`~amqplite.broker.definitions.apply`); this module only turns its refusals into
file problems (``file:line:col: key.path: message``), the way a file's errors are shown.
Used at startup (``amqplite serve --config``), by ``route --config`` and by embedders.
"""

from __future__ import annotations

import logging

from amqplite.broker import Broker
from amqplite.broker.definitions import (
    AMQPLITE,
    ApplyFailed,
    ApplyReport,
    Plan,
    PlanItem,
    PlanRefused,
    Target,
    snapshot,
)
from amqplite.broker.definitions import apply as apply_plan
from amqplite.broker.definitions import plan as plan_definitions
from amqplite.topology.model import Config
from amqplite.topology.problems import ApplyConflict, Problem, TopologyError

log = logging.getLogger(__name__)


def problem_of(item: PlanItem, detail: str | None = None) -> Problem:
    """The plan item as a problem at the place its spec was written."""
    p = item.position
    return Problem(p.file, p.line, p.column, item.path, item.detail if detail is None else detail)


def plan(config: Config, broker: Broker, target: Target = AMQPLITE) -> Plan:
    """Compare ``config`` with ``broker`` without changing anything."""
    return plan_definitions(snapshot(broker), config.definitions, target)


def apply(config: Config, broker: Broker, target: Target = AMQPLITE) -> ApplyReport:
    """Make ``broker`` hold everything ``config`` declares, or change nothing at all.

    Raises :class:`ApplyConflict` (every conflict with file:line) when existing entities
    differ from the file, and :class:`TopologyError` if the broker refused an operation
    half-way (after undoing what this call had created).
    """
    p = plan(config, broker, target)
    try:
        report = apply_plan(broker, p)
    except PlanRefused as exc:
        raise ApplyConflict(problem_of(item) for item in exc.plan.conflicts) from None
    except ApplyFailed as exc:
        raise TopologyError([problem_of(exc.item, str(exc))]) from exc
    log.info("applied %s: %s", config.source, p.summary())
    return report
