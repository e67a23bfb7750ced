"""The topic exchange: wildcard patterns in a trie, with a per-routing-key cache (broker layer).

Most applications publish with a small set of routing keys, so the result of a trie walk
is cached by key and the cache is dropped whenever a binding changes.  The cache is
bounded, and its bound grows with the number of bindings (an exchange with 100,000
bindings usually sees about as many distinct keys; a bound below the working set would
make every publish a miss).  When full, the older half is dropped (dicts keep insertion
order), which keeps the hit path a single dict lookup and costs O(1) per miss amortised.
"""

from __future__ import annotations

from collections.abc import Collection
from itertools import islice
from typing import Any

from amqplite.broker.exchanges.base import Destination, Router
from amqplite.broker.topic_trie import MAX_KEY_BYTES, TopicTrie, key_too_long
from amqplite.errors import precondition_failed
from amqplite.message import FieldTable

#: Cached routing keys at least (a few hundred KB at most)...
CACHE_LIMIT = 4096
#: ...and at most (~20 MB with long keys): twice the bindings in between.
CACHE_MAX = 131_072


class TopicRouter(Router):
    __slots__ = ("_cache", "_limit", "_trie")

    def __init__(self) -> None:
        self._trie: TopicTrie[Any] = TopicTrie()
        self._cache: dict[str, tuple[Any, ...]] = {}
        self._limit = CACHE_LIMIT

    def _bindings_changed(self) -> None:
        self._cache.clear()
        self._limit = min(CACHE_MAX, max(CACHE_LIMIT, 2 * len(self._trie)))

    def validate_binding(self, routing_key: str, arguments: FieldTable) -> None:
        # Over AMQP a binding key is a short string; the HTTP API and the YAML topology
        # must not be a way around that bound (it also bounds a pattern to 128 words).
        if key_too_long(routing_key):
            raise precondition_failed(
                f"binding key longer than {MAX_KEY_BYTES} bytes: {routing_key[:64]!r}..."
            )

    def bind(self, routing_key: str, arguments: FieldTable, destination: Destination) -> None:
        self._trie.add(routing_key, destination)
        self._bindings_changed()

    def unbind(self, routing_key: str, arguments: FieldTable, destination: Destination) -> None:
        self._trie.remove(routing_key, destination)
        self._bindings_changed()

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> Collection[Any]:
        cache = self._cache
        cached = cache.get(routing_key)
        if cached is not None:
            return cached
        result = tuple(self._trie.match(routing_key))
        if len(cache) >= self._limit:
            for key in list(islice(cache, len(cache) // 2)):
                del cache[key]
        cache[routing_key] = result
        return result
