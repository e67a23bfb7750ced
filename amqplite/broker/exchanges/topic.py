"""The topic exchange: wildcard patterns in a trie, with a per-routing-key cache (broker layer).

Most applications publish with a small set of routing keys, so the result of a trie walk
is cached by key and the cache is dropped whenever a binding changes.  The cache is
bounded: when full it is cleared rather than tracked as an LRU, which keeps the hit path
a single dict lookup.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from amqplite.broker.exchanges.base import Destination, Router
from amqplite.broker.topic_trie import TopicTrie
from amqplite.message import FieldTable

CACHE_LIMIT = 4096


class TopicRouter(Router):
    __slots__ = ("_cache", "_trie")

    def __init__(self) -> None:
        self._trie: TopicTrie[Any] = TopicTrie()
        self._cache: dict[str, tuple[Any, ...]] = {}

    def bind(self, routing_key: str, arguments: FieldTable, destination: Destination) -> None:
        self._trie.add(routing_key, destination)
        self._cache.clear()

    def unbind(self, routing_key: str, arguments: FieldTable, destination: Destination) -> None:
        self._trie.remove(routing_key, destination)
        self._cache.clear()

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> Collection[Any]:
        cached = self._cache.get(routing_key)
        if cached is not None:
            return cached
        result = tuple(self._trie.match(routing_key))
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[routing_key] = result
        return result
