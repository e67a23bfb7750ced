"""Topic matching: RabbitMQ's own topic test table, and the trie against a reference matcher."""

from __future__ import annotations

import functools

from broker_helpers import World, publish
from hypothesis import given, settings
from hypothesis import strategies as st

from amqplite.broker.topic_trie import TopicTrie, split_words

# rabbit_exchange_type_topic's test bindings and expectations (t27 is bound twice with
# different arguments and must still be matched once).
BINDINGS = [
    ("a.b.c", "t1"),
    ("a.*.c", "t2"),
    ("a.#.b", "t3"),
    ("a.b.b.c", "t4"),
    ("#", "t5"),
    ("#.#", "t6"),
    ("#.b", "t7"),
    ("*.*", "t8"),
    ("a.*", "t9"),
    ("*.b.c", "t10"),
    ("a.#", "t11"),
    ("a.#.#", "t12"),
    ("b.b.c", "t13"),
    ("a.b.b", "t14"),
    ("a.b", "t15"),
    ("b.c", "t16"),
    ("", "t17"),
    ("*.*.*", "t18"),
    ("vodka.martini", "t19"),
    ("a.b.c", "t20"),
    ("*.#", "t21"),
    ("#.*.#", "t22"),
    ("*.#.#", "t23"),
    ("#.#.#", "t24"),
    ("*", "t25"),
    ("#.b.#", "t26"),
    ("args-test", "t27"),
    ("args-test", "t27"),
]

EXPECTED = {
    "a.b.c": [
        "t1",
        "t2",
        "t5",
        "t6",
        "t10",
        "t11",
        "t12",
        "t18",
        "t20",
        "t21",
        "t22",
        "t23",
        "t24",
        "t26",
    ],
    "a.b": [
        "t3",
        "t5",
        "t6",
        "t7",
        "t8",
        "t9",
        "t11",
        "t12",
        "t15",
        "t21",
        "t22",
        "t23",
        "t24",
        "t26",
    ],
    "a.b.b": [
        "t3",
        "t5",
        "t6",
        "t7",
        "t11",
        "t12",
        "t14",
        "t18",
        "t21",
        "t22",
        "t23",
        "t24",
        "t26",
    ],
    "": ["t5", "t6", "t17", "t24"],
    "b.c.c": ["t5", "t6", "t18", "t21", "t22", "t23", "t24", "t26"],
    "a.a.a.a.a": ["t5", "t6", "t11", "t12", "t21", "t22", "t23", "t24"],
    "vodka.gin": ["t5", "t6", "t8", "t21", "t22", "t23", "t24"],
    "vodka.martini": ["t5", "t6", "t8", "t19", "t21", "t22", "t23", "t24"],
    "b.b.c": ["t5", "t6", "t10", "t13", "t18", "t21", "t22", "t23", "t24", "t26"],
    "nothing.here.at.all": ["t5", "t6", "t21", "t22", "t23", "t24"],
    "oneword": ["t5", "t6", "t21", "t22", "t23", "t24", "t25"],
    "args-test": ["t5", "t6", "t21", "t22", "t23", "t24", "t25", "t27"],
}


def test_rabbitmq_topic_table_through_a_topic_exchange(world: World) -> None:
    ch = world.ch
    ch.declare_exchange("t", "topic")
    for i, (pattern, queue) in enumerate(BINDINGS):
        ch.declare_queue(queue)
        ch.bind_queue(queue, "t", pattern, {"n": i})
    for key, expected in EXPECTED.items():
        before = {name: q.message_count for name, q in world.vhost.queues.items()}
        result = publish(ch, "t", key)
        got = sorted(
            (name for name, q in world.vhost.queues.items() if q.message_count > before[name]),
            key=lambda n: int(n[1:]),
        )
        assert got == expected, key
        assert result.queues == len(expected)


def test_unbinding_removes_only_that_pattern(world: World) -> None:
    ch = world.ch
    ch.declare_exchange("t", "topic")
    ch.declare_queue("q")
    ch.bind_queue("q", "t", "a.*")
    ch.bind_queue("q", "t", "a.#")
    assert publish(ch, "t", "a.b").queues == 1
    ch.unbind_queue("q", "t", "a.*")
    assert publish(ch, "t", "a.b").queues == 1  # cache invalidated, still via a.#
    ch.unbind_queue("q", "t", "a.#")
    assert publish(ch, "t", "a.b").routed is False


def test_empty_words_are_words(world: World) -> None:
    trie: TopicTrie[str] = TopicTrie()
    for pattern in ("a..b", "a.*.b", "*", "#.", "."):
        trie.add(pattern, pattern)
    assert set(trie.match("a..b")) == {"a..b", "a.*.b"}
    assert set(trie.match(".")) == {"#.", "."}
    assert set(trie.match("a.")) == {"#."}
    assert set(trie.match("x")) == {"*"}
    assert split_words("") == []
    assert split_words("a..b") == ["a", "", "b"]


def reference_match(pattern: str, key: str) -> bool:
    """A plain recursive matcher written straight from the rules."""
    p = split_words(pattern)
    k = split_words(key)

    @functools.cache
    def go(i: int, j: int) -> bool:
        if i == len(p):
            return j == len(k)
        if p[i] == "#":
            return any(go(i + 1, jj) for jj in range(j, len(k) + 1))
        if j == len(k):
            return False
        return (p[i] == "*" or p[i] == k[j]) and go(i + 1, j + 1)

    return go(0, 0)


WORDS = st.sampled_from(["a", "b", "", "c"])
PATTERN_WORDS = st.sampled_from(["a", "b", "", "*", "#"])
patterns = st.lists(PATTERN_WORDS, max_size=5).map(".".join)
keys = st.lists(WORDS, max_size=6).map(".".join)


@settings(max_examples=200, deadline=None)
@given(st.lists(patterns, min_size=1, max_size=12), st.lists(keys, min_size=1, max_size=8))
def test_trie_agrees_with_reference_matcher(pattern_list: list[str], key_list: list[str]) -> None:
    trie: TopicTrie[int] = TopicTrie()
    for i, pattern in enumerate(pattern_list):
        trie.add(pattern, i)
    for key in key_list:
        expected = {i for i, pattern in enumerate(pattern_list) if reference_match(pattern, key)}
        assert set(trie.match(key)) == expected, key


@settings(max_examples=100, deadline=None)
@given(st.lists(patterns, min_size=1, max_size=10), st.data())
def test_trie_removal_leaves_exactly_the_remaining_patterns(
    pattern_list: list[str], data: st.DataObject
) -> None:
    trie: TopicTrie[int] = TopicTrie()
    for i, pattern in enumerate(pattern_list):
        trie.add(pattern, i)
    removed = data.draw(st.sets(st.sampled_from(range(len(pattern_list)))))
    for i in removed:
        assert trie.remove(pattern_list[i], i)
    assert len(trie) == len(pattern_list) - len(removed)
    key = data.draw(keys)
    expected = {
        i for i, p in enumerate(pattern_list) if i not in removed and reference_match(p, key)
    }
    assert set(trie.match(key)) == expected
