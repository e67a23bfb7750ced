"""The headers exchange: match on message headers with x-match (broker layer).

``x-match`` is ``all`` (default), ``any``, ``all-with-x`` or ``any-with-x``.  Plain
``all``/``any`` ignore binding keys starting with ``x-``.  A binding value of void
(``None``) matches any value as long as the header is present, as in RabbitMQ.  Values
compare as RabbitMQ 3.10 compares them: by value whatever the field type (the integer 1
matches a long 1 or a byte-array "s" a string "s"), but the string "1" is not the integer
1 and a boolean matches only a boolean.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from amqplite.broker.arguments import wire_type
from amqplite.broker.exchanges.base import Destination, Router
from amqplite.errors import precondition_failed
from amqplite.message import FieldTable

X_MATCH_MODES = ("all", "any", "all-with-x", "any-with-x")


def _same(a: Any, b: Any) -> bool:
    # RabbitMQ 3.10 compares values only (Erlang ==): an int matches the same long or
    # float, a longstr matches the same bytes, but a boolean matches only a boolean.
    if a == b:
        return isinstance(a, bool) is isinstance(b, bool)
    if isinstance(a, str) and isinstance(b, bytes):
        return a.encode("utf-8") == b
    if isinstance(a, bytes) and isinstance(b, str):
        return a == b.encode("utf-8")
    return False


class _HeadersBinding:
    __slots__ = ("destination", "items", "match_all", "source_args")

    def __init__(self, arguments: FieldTable, destination: Destination) -> None:
        mode = arguments.get("x-match", "all")
        if isinstance(mode, bytes):
            mode = mode.decode()
        with_x = mode.endswith("-with-x")
        self.match_all = mode.startswith("all")
        # x-match itself is never a header to match, even in the -with-x modes.
        self.items = [
            (k, v)
            for k, v in arguments.items()
            if k != "x-match" and (with_x or not k.startswith("x-"))
        ]
        self.destination = destination
        self.source_args = arguments

    def matches(self, headers: dict[str, Any]) -> bool:
        if self.match_all:
            for key, want in self.items:
                if key not in headers:
                    return False
                if want is not None and not _same(headers[key], want):
                    return False
            return True
        for key, want in self.items:
            if key in headers and (want is None or _same(headers[key], want)):
                return True
        return False


class HeadersRouter(Router):
    __slots__ = ("_bindings",)

    def __init__(self) -> None:
        self._bindings: list[_HeadersBinding] = []

    def validate_binding(self, routing_key: str, arguments: FieldTable) -> None:
        mode = arguments.get("x-match", "all")
        if isinstance(mode, bytes):
            mode = mode.decode("utf-8", "replace")
        if not isinstance(mode, str):
            raise precondition_failed(
                f"Invalid x-match field type {wire_type(mode)} (value {mode}); expected longstr"
            )
        if mode not in X_MATCH_MODES:
            # RabbitMQ prints the value as an Erlang binary.
            raise precondition_failed(
                f'Invalid x-match field value <<"{mode}">>; '
                "expected all, any, all-with-x, or any-with-x"
            )

    def bind(self, routing_key: str, arguments: FieldTable, destination: Destination) -> None:
        self._bindings.append(_HeadersBinding(arguments, destination))

    def unbind(self, routing_key: str, arguments: FieldTable, destination: Destination) -> None:
        for i, binding in enumerate(self._bindings):
            if binding.destination is destination and binding.source_args == arguments:
                del self._bindings[i]
                return

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> Collection[Any]:
        out: dict[Any, None] = {}
        data = headers or {}
        for binding in self._bindings:
            if binding.destination not in out and binding.matches(data):
                out[binding.destination] = None
        return out
