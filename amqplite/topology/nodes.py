"""Reading a YAML node tree while keeping line and column of every key and value.

Layer: topology.  PyYAML's constructor loses positions and silently keeps the last of
duplicate keys, so the loader works on the composed node tree instead (SafeLoader rules:
no arbitrary Python objects).  :class:`NodeReader` turns nodes into plain values with
type and range checks and records a :class:`~amqplite.topology.problems.Problem` for
each thing wrong, then returns ``None`` so the caller simply skips that item and keeps
going: all problems of a file are found in one pass.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection, Iterator
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from amqplite.topology.problems import Position, Problem, Severity

_MERGE_TAG = "tag:yaml.org,2002:merge"
_NULL_TAG = "tag:yaml.org,2002:null"
_STR_TAG = "tag:yaml.org,2002:str"

# A key path segment is written bare unless that would be ambiguous or invisible.
_BARE_SEGMENT = re.compile(r"^[^\s\[\]\"]+$")


def join(path: str, key: str) -> str:
    """``join("queues", "orders") == "queues.orders"``.

    Names with dots (``orders.created``) are common and stay bare so the usual case
    reads naturally; empty names or names with spaces/brackets/quotes are JSON-quoted.
    """
    seg = key if _BARE_SEGMENT.match(key) else json.dumps(key, ensure_ascii=False)
    return f"{path}.{seg}" if path else seg


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def describe(node: Node, value: Any = None) -> str:
    """How a wrong value is shown in a message: ``"ten"``, ``1.5``, ``a mapping``."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL_TAG:
        return "nothing (null)"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(node.value)


def did_you_mean(word: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def unknown_key(key: str, allowed: Collection[str]) -> str:
    hint = did_you_mean(key, allowed)
    return f"unknown key '{key}'" + (hint or f" (expected one of: {', '.join(allowed)})")


class NodeReader:
    """Collects problems for one file while converting nodes to values."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()

    # -- reporting ---------------------------------------------------------------

    def position(self, node: Node) -> Position:
        mark = node.start_mark
        return Position(self.file, mark.line + 1, mark.column + 1)

    def report(self, node: Node, path: str, message: str, severity: Severity = "error") -> None:
        pos = self.position(node)
        self.problems.append(Problem(self.file, pos.line, pos.column, path, message, severity))

    def warn(self, node: Node, path: str, message: str) -> None:
        self.report(node, path, message, "warning")

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    # -- structure ---------------------------------------------------------------

    def is_null(self, node: Node) -> bool:
        return isinstance(node, ScalarNode) and node.tag == _NULL_TAG

    def mapping(
        self,
        node: Node,
        path: str,
        allowed: Collection[str] | None = None,
        *,
        null_ok: bool = True,
        what: str = "a mapping",
    ) -> dict[str, tuple[ScalarNode, Node]] | None:
        """Return ``{key: (key_node, value_node)}`` or ``None`` after reporting.

        Reports duplicate keys (YAML would silently keep the last) and, when
        ``allowed`` is given, unknown keys with a did-you-mean suggestion.  ``<<``
        merge keys are honoured; explicit keys override merged ones, as in YAML.
        """
        if null_ok and self.is_null(node):
            return {}
        if not isinstance(node, MappingNode):
            self.report(node, path, f"expected {what}, got {describe(node, self._value(node))}")
            return None
        out: dict[str, tuple[ScalarNode, Node]] = {}
        for key_node, value_node in self._explicit_pairs(node, path):
            key = key_node.value
            if key in out:
                first = self.position(out[key][0])
                self.report(
                    key_node,
                    join(path, key),
                    f"duplicate key '{key}' (first defined at line {first.line}); "
                    "YAML would silently keep only the last one",
                )
                continue
            if allowed is not None and key not in allowed:
                self.report(key_node, join(path, key), unknown_key(key, allowed))
                continue
            out[key] = (key_node, value_node)
        for key_node, value_node in self._merged_pairs(node, path):
            key = key_node.value
            if key in out:
                continue
            if allowed is not None and key not in allowed:
                self.report(
                    key_node, join(path, key), unknown_key(key, allowed) + " (merged by '<<')"
                )
                continue
            out[key] = (key_node, value_node)
        return out

    def _explicit_pairs(self, node: MappingNode, path: str) -> Iterator[tuple[ScalarNode, Node]]:
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            if not isinstance(key_node, ScalarNode):
                self.report(key_node, path, "keys must be plain names, not " + describe(key_node))
                continue
            yield key_node, value_node

    def _merged_pairs(self, node: MappingNode, path: str) -> Iterator[tuple[ScalarNode, Node]]:
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode):
                    self.report(source, path, "'<<' must merge a mapping (or a list of mappings)")
                    continue
                yield from self._explicit_pairs(source, path)
                yield from self._merged_pairs(source, path)

    def sequence(self, node: Node, path: str, *, null_ok: bool = True) -> list[Node] | None:
        if null_ok and self.is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.report(node, path, f"expected a list, got {describe(node, self._value(node))}")
            return None
        return list(node.value)

    # -- scalars -----------------------------------------------------------------

    def _value(self, node: Node) -> Any:
        if not isinstance(node, ScalarNode):
            return None
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError:
            return node.value

    def plain(self, node: Node, path: str) -> Any:
        """Any YAML value (scalar, list or mapping) as Python data, for free-form tables."""
        if isinstance(node, MappingNode):
            pairs = self.mapping(node, path)
            if pairs is None:
                return None
            return {k: self.plain(v, join(path, k)) for k, (_, v) in pairs.items()}
        if isinstance(node, SequenceNode):
            return [self.plain(v, index(path, i)) for i, v in enumerate(node.value)]
        return self._value(node)

    def string(
        self, node: Node, path: str, *, allow_empty: bool = True, max_bytes: int | None = None
    ) -> str | None:
        value = self._value(node)
        if not isinstance(value, str) or not isinstance(node, ScalarNode):
            hint = ""
            if isinstance(node, ScalarNode) and node.tag != _NULL_TAG:
                hint = f' (quote it: "{node.value}")'
            self.report(node, path, f"expected a string, got {describe(node, value)}{hint}")
            return None
        if not allow_empty and not value:
            self.report(node, path, "must not be empty")
            return None
        if max_bytes is not None and len(value.encode()) > max_bytes:
            self.report(
                node,
                path,
                f"is {len(value.encode())} bytes long; AMQP allows at most {max_bytes} bytes",
            )
            return None
        return value

    def boolean(self, node: Node, path: str) -> bool | None:
        value = self._value(node)
        if not isinstance(value, bool):
            self.report(node, path, f"expected true or false, got {describe(node, value)}")
            return None
        return value

    def integer(
        self,
        node: Node,
        path: str,
        *,
        minimum: int = 0,
        maximum: int | None = None,
        what: str | None = None,
    ) -> int | None:
        value = self._value(node)
        expected = what or _int_words(minimum, maximum)
        # bool is an int subclass in Python; in a config file it is never meant as one.
        if not isinstance(value, int) or isinstance(value, bool):
            self.report(node, path, f"expected {expected}, got {describe(node, value)}")
            return None
        if value < minimum or (maximum is not None and value > maximum):
            self.report(node, path, f"expected {expected}, got {value}")
            return None
        return value

    def choice(self, node: Node, path: str, choices: Collection[str]) -> str | None:
        value = self._value(node)
        if not isinstance(value, str) or value not in choices:
            shown = describe(node, value)
            hint = did_you_mean(value, choices) if isinstance(value, str) else ""
            self.report(
                node,
                path,
                f"expected one of {', '.join(choices)}, got {shown}{hint}",
            )
            return None
        return value

    def scalar_value(self, node: Node) -> Any:
        return self._value(node)


def _int_words(minimum: int, maximum: int | None) -> str:
    if maximum is None:
        if minimum == 0:
            return "a non-negative integer"
        if minimum == 1:
            return "a positive integer"
        return f"an integer >= {minimum}"
    return f"an integer from {minimum} to {maximum}"
