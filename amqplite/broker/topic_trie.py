"""A trie of topic binding patterns with explicit ``*`` and ``#`` edges (broker layer).

Matching follows RabbitMQ exactly: routing keys and patterns are split on ``.`` (the empty
string is zero words, ``a..b`` has an empty middle word), ``*`` matches exactly one word
(which may be empty) and ``#`` matches zero or more words.  Matching walks the trie once
per routing key, so its cost grows with the key's length and the wildcards present, not
with the number of bindings.  Values stored at a pattern are reference-counted so two
bindings with the same pattern and destination (different arguments) route once.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)


def split_words(key: str) -> list[str]:
    """RabbitMQ's ``split_topic_key``: "" is no words at all, otherwise split on '.'."""
    return key.split(".") if key else []


class _Node(Generic[T]):
    __slots__ = ("children", "values")

    def __init__(self) -> None:
        self.children: dict[str, _Node[T]] = {}
        self.values: dict[T, int] = {}


class TopicTrie(Generic[T]):
    """Patterns → values, queried with concrete routing keys."""

    __slots__ = ("_root", "_size")

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, pattern: str, value: T) -> None:
        node = self._root
        for word in split_words(pattern):
            child = node.children.get(word)
            if child is None:
                child = node.children[word] = _Node()
            node = child
        node.values[value] = node.values.get(value, 0) + 1
        self._size += 1

    def remove(self, pattern: str, value: T) -> bool:
        """Drop one reference of ``value`` at ``pattern``; prune empty nodes.  False if absent."""
        path: list[tuple[_Node[T], str]] = []
        node = self._root
        for word in split_words(pattern):
            child = node.children.get(word)
            if child is None:
                return False
            path.append((node, word))
            node = child
        count = node.values.get(value)
        if count is None:
            return False
        if count > 1:
            node.values[value] = count - 1
        else:
            del node.values[value]
        self._size -= 1
        while path and not node.values and not node.children:
            parent, word = path.pop()
            del parent.children[word]
            node = parent
        return True

    def match(self, routing_key: str) -> dict[T, None]:
        """Every value whose pattern matches ``routing_key``, each once, as an ordered set."""
        out: dict[T, None] = {}
        words = split_words(routing_key)
        self._walk(self._root, words, 0, len(words), out, set())
        return out

    def _walk(
        self,
        node: _Node[T],
        words: list[str],
        i: int,
        n: int,
        out: dict[T, None],
        seen: set[tuple[int, int]],
    ) -> None:
        children = node.children
        hash_node = children.get("#")
        if hash_node is not None:
            # '#' may swallow words[i:j] for every j; visiting (node, j) twice can only
            # repeat work (patterns like '#.#.#'), so remember the states already walked.
            for j in range(i, n + 1):
                state = (id(hash_node), j)
                if state not in seen:
                    seen.add(state)
                    self._walk(hash_node, words, j, n, out, seen)
        if i == n:
            for value in node.values:
                out[value] = None
            return
        child = children.get(words[i])
        if child is not None:
            self._walk(child, words, i + 1, n, out, seen)
        star = children.get("*")
        if star is not None:
            self._walk(star, words, i + 1, n, out, seen)
