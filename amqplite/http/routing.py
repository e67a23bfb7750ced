"""Path routing for the management API: ``/api/queues/{vhost}/{name}`` style patterns.

Layer: ``amqplite/http``.  Pure: matches the percent-decoded path segments of a
:class:`~amqplite.http.request.Request` against patterns registered per method.  A path
that matches some pattern under another method answers 405 with ``Allow``; no match at
all is RabbitMQ's 404.  Segments are decoded one by one, so the default vhost ``%2F``
is one segment ``"/"``.
"""

from __future__ import annotations

from typing import Any

import attrs

from amqplite.http.request import HTTPError, Request, not_found

Params = dict[str, str]


@attrs.frozen(slots=True)
class _Route:
    method: str
    parts: tuple[str, ...]  # literal segments, or "{name}" placeholders
    handler: Any  # whatever the app calls; the router only matches
    public: bool = False  # served without credentials

    def match(self, segments: tuple[str, ...]) -> Params | None:
        if len(segments) != len(self.parts):
            return None
        params: Params = {}
        for part, seg in zip(self.parts, segments, strict=True):
            if part.startswith("{"):
                params[part[1:-1]] = seg
            elif part != seg:
                return None
        return params


Route = _Route


@attrs.define(slots=True, eq=False)
class Router:
    routes: list[_Route] = attrs.Factory(list)

    def add(self, method: str, pattern: str, handler: Any, *, public: bool = False) -> None:
        parts = tuple(p for p in pattern.split("/") if p)
        self.routes.append(_Route(method, parts, handler, public))

    def resolve(self, request: Request) -> tuple[Route, Params]:
        segments = request.segments
        method = "GET" if request.method == "HEAD" else request.method
        allowed: list[str] = []
        for route in self.routes:
            params = route.match(segments)
            if params is None:
                continue
            if route.method == method:
                return route, params
            allowed.append(route.method)
        if allowed:
            raise HTTPError(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed here",
                (("allow", ", ".join(sorted(set(allowed)))),),
            )
        raise not_found()
