"""Exchange types: one small router per type behind one interface (broker layer).

A router knows only routing: it maps (routing key, headers) to the destinations bound to
it.  Destinations are opaque hashable objects (the core passes ``Queue`` and
``Exchange`` entities).  Binding bookkeeping, auto-delete and permissions live in the
vhost; a router is told about each distinct binding exactly once.
"""

from __future__ import annotations

from amqplite.broker.exchanges.base import Router
from amqplite.broker.exchanges.default import DefaultRouter
from amqplite.broker.exchanges.direct import DirectRouter
from amqplite.broker.exchanges.fanout import FanoutRouter
from amqplite.broker.exchanges.headers import HeadersRouter
from amqplite.broker.exchanges.topic import TopicRouter

ROUTERS: dict[str, type[Router]] = {
    "direct": DirectRouter,
    "fanout": FanoutRouter,
    "topic": TopicRouter,
    "headers": HeadersRouter,
}

__all__ = [
    "ROUTERS",
    "DefaultRouter",
    "DirectRouter",
    "FanoutRouter",
    "HeadersRouter",
    "Router",
    "TopicRouter",
]
