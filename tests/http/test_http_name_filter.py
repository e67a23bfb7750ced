"""The ``?name=`` listing filter: RabbitMQ's substring / ``use_regex`` semantics, and a
hostile pattern can never keep the broker busy (a linear-time matcher, a work budget)."""

from __future__ import annotations

import random
import re
import time

import pytest
import trio
from http_support import Stack

from amqplite.http.name_filter import MAX_PATTERN, PatternError, compile_filter

PATTERNS = [
    "abc", "a.c", "^abc$", "a|b", "(ab)+c", "[a-c]+x", "\\d{2,3}", "x(?:y|z)*w", "^$",
    "a{0}b", "[^ab]", "colou?r", "a*", "(a|a)*b", "(a*)*b", "a*a*a*a*a*a*a*a*c", "b$",
    "^a|c$", "x$|^y", "[\\d.]+", "A.C", "\\.", "a{2,}", "(x|)y", "[-a]", "\\W",
]  # fmt: skip


@pytest.mark.parametrize("pattern", PATTERNS)
def test_regex_filter_answers_like_a_case_insensitive_re_search(pattern: str) -> None:
    rng = random.Random(pattern)
    names = ["".join(rng.choice("abcxyzABC019 .-_") for _ in range(rng.randint(0, 14)))]
    names += [
        "".join(rng.choice("abcxy019.") for _ in range(rng.randint(0, 14))) for _ in range(800)
    ]
    match = compile_filter(pattern, use_regex=True)
    reference = re.compile(pattern, re.IGNORECASE)
    for name in names:
        assert match(name) == bool(reference.search(name)), (pattern, name)


def test_plain_filter_is_a_case_insensitive_substring() -> None:
    match = compile_filter("Or.D", use_regex=False)
    assert match("new-or.ders") and match("OR.Dx") and not match("orders")


@pytest.mark.parametrize(
    "pattern", ["(", "a**", "\\1", "(?=a)", "(?i)a", "*a", "a{5,2}", "x" * (MAX_PATTERN + 1)]
)
def test_unsupported_or_oversized_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(PatternError):
        compile_filter(pattern, use_regex=True)


def test_catastrophic_patterns_stay_fast_or_are_cut_off() -> None:
    # Python's re needs about a second for (a|aa)*b on 30 characters; these run over
    # 2,000 names of 255 characters each (the longest AMQP name) in well under that.
    names = ["a" * 254 + str(i % 10) for i in range(2000)]
    start = time.perf_counter()
    for pattern in ("(a|a)*b", "(a*)*b", "a*a*a*a*a*a*a*a*c", "(a|aa)+$x"):
        match = compile_filter(pattern, use_regex=True)
        assert not any(match(n) for n in names)
    assert time.perf_counter() - start < 10  # generous for a loaded CI machine
    # A pattern whose automaton keeps meeting new state sets is cut off by the work
    # budget instead of running on.
    rng = random.Random(1)
    match = compile_filter("(.*.*.*.*){1,30}q", use_regex=True)
    with pytest.raises(PatternError, match="too expensive"):
        for _ in range(10_000):
            match("".join(rng.choice("abcdefghij") for _ in range(255)))


async def test_listings_filter_by_name_and_refuse_bad_patterns(stack: Stack) -> None:
    vhost = stack.broker.vhosts["/"]
    for name in ("orders.eu", "orders.us", "invoices", "a" * 200):
        vhost.declare_queue(name)
    with trio.fail_after(20):
        got = await stack.get_json("/api/queues?name=ORDERS")
        assert sorted(q["name"] for q in got) == ["orders.eu", "orders.us"]
        got = await stack.get_json("/api/queues/%2F?name=%5Eorders%5C.e&use_regex=true")
        assert [q["name"] for q in got] == ["orders.eu"]
        got = await stack.get_json("/api/exchanges?name=amq.t")
        assert [x["name"] for x in got] == ["amq.topic"]
        reply = await stack.request("GET", "/api/queues?name=(a%7Ca)*%5C1&use_regex=true")
        assert reply.status == 400 and "invalid name filter" in reply.json()["reason"]
        started = trio.current_time()
        got = await stack.get_json("/api/queues?name=(a%7Caa)*b&use_regex=true")
        assert got == [] and trio.current_time() - started < 5
