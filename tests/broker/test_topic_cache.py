"""The topic route cache grows with the bindings and evicts its older half when full."""

from __future__ import annotations

from typing import Any

from amqplite.broker.exchanges.topic import CACHE_LIMIT, CACHE_MAX, TopicRouter
from amqplite.broker.topic_trie import TopicTrie


def bound(n: int) -> TopicRouter:
    router = TopicRouter()
    for i in range(n):
        dest: Any = f"q{i}"
        router.bind(f"k.w{i}.*" if i % 2 else f"#.w{i}.evt", {}, dest)
    return router


def test_every_key_of_a_large_exchange_stays_cached_through_a_full_cycle() -> None:
    router = bound(10_000)
    keys = [f"k.w{i}.evt" for i in range(10_000)]
    first = [router.route(k, None) for k in keys]
    assert first[3] == ("q3",) and first[4] == ("q4",)
    again = [router.route(k, None) for k in keys]
    assert all(a is b for a, b in zip(first, again, strict=True))  # hits: the cached tuples


def test_a_full_cache_drops_its_older_half_and_stays_bounded() -> None:
    router = bound(10)
    routed = [router.route(f"k.w{i}.evt", None) for i in range(CACHE_LIMIT)]
    newest = router.route("k.w1.evt", None)
    assert newest is routed[1]
    router.route("k.other.evt", None)  # overflows: the older half goes
    assert len(router._cache) == CACHE_LIMIT // 2 + 1
    assert router.route(f"k.w{CACHE_LIMIT - 1}.evt", None) is routed[-1]
    assert router.route("k.w1.evt", None) is not routed[1]
    many = bound(CACHE_MAX)  # the bound stops growing at CACHE_MAX
    for i in range(CACHE_MAX + 10):
        many.route(f"x.{i}", None)
    assert len(many._cache) <= CACHE_MAX


def test_binding_change_invalidates_cached_routes() -> None:
    router = bound(10)
    assert router.route("k.w1.evt", None) == ("q1",)
    extra: Any = "extra"
    router.bind("k.#", {}, extra)
    assert set(router.route("k.w1.evt", None)) == {"q1", "extra"}
    router.unbind("k.#", {}, extra)
    assert router.route("k.w1.evt", None) == ("q1",)


def test_many_hashes_against_a_long_key_match_once_without_exponential_walks() -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add(".".join(["#"] * 12 + ["end"]), "hashes")
    trie.add(".".join(["#", "*"] * 6), "mixed")
    key = ".".join(["w"] * 40 + ["end"])
    assert set(trie.match(key)) == {"hashes", "mixed"}
    assert list(trie.match(".".join(["w"] * 40 + ["nope"]))) == ["mixed"]
