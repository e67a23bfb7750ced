"""Problems found in a config/topology file, and the error that carries them.

Layer: topology (no I/O; ``Position`` is the definitions model's).  Every check in the loader, the validator and the
apply dry run reports a :class:`Problem` with the file, 1-based line and column and the
key path of the offending node; they are collected and raised together as one
:class:`TopologyError`, so a user fixes a whole file in one round trip.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import attrs

from amqplite.broker.definitions.model import Position

__all__ = ["ApplyConflict", "Position", "Problem", "Severity", "TopologyError"]

Severity = Literal["error", "warning"]


@attrs.frozen
class Problem:
    """One error (or warning) at a position in a file.

    ``str(problem)`` is the compiler-style line users see:
    ``topology.yaml:14:7: queues.orders.arguments.x-max-length: expected ...``.
    """

    file: str
    line: int
    column: int
    path: str
    message: str
    severity: Severity = "error"

    @property
    def position(self) -> Position:
        return Position(self.file, self.line, self.column)

    def __str__(self) -> str:
        head = f"{self.file}:{self.line}:{self.column}: "
        if self.severity == "warning":
            head += "warning: "
        if self.path:
            head += f"{self.path}: "
        return head + self.message


def _sort_key(p: Problem) -> tuple[str, int, int]:
    return (p.file, p.line, p.column)


class TopologyError(Exception):
    """Raised with *every* error found, never only the first.

    ``problems`` is sorted by file, line and column; ``str()`` gives one problem per line.
    """

    def __init__(self, problems: Iterable[Problem], *, undeclared: int = 0) -> None:
        self.problems: list[Problem] = sorted(problems, key=_sort_key)
        #: How many of them are names used but not declared (a broker may have them).
        self.undeclared = undeclared
        super().__init__("\n".join(str(p) for p in self.problems))


class ApplyConflict(TopologyError):
    """The broker's current state contradicts the file; nothing was applied."""
