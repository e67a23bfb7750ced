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

#: Routing and binding keys are AMQP short strings: at most 255 bytes of UTF-8, so at
#: most 128 words.  Keys that reach the broker another way (HTTP API, YAML) are held to
#: the same bound, which with the walk below bounds the cost of routing one message.
MAX_KEY_BYTES = 255


def key_too_long(key: str) -> bool:
    """Whether ``key`` is over :data:`MAX_KEY_BYTES` once encoded (as it would be on the wire)."""
    return len(key) > MAX_KEY_BYTES // 4 and len(key.encode("utf-8")) > MAX_KEY_BYTES


def split_words(key: str) -> list[str]:
    """RabbitMQ's ``split_topic_key``: "" is no words at all, otherwise split on '.'."""
    return key.split(".") if key else []


class _Node(Generic[T]):
    __slots__ = ("children", "hash", "star", "values")

    def __init__(self) -> None:
        self.children: dict[str, _Node[T]] = {}
        self.values: dict[T, int] = {}
        # children["*"] and children["#"], kept as attributes so that a walk does not
        # look them up in the dict at every node (almost every node has neither).
        self.star: _Node[T] | None = None
        self.hash: _Node[T] | None = None

    def set_child(self, word: str, child: _Node[T] | None) -> None:
        if child is None:
            del self.children[word]
        else:
            self.children[word] = child
        if word == "*":
            self.star = child
        elif word == "#":
            self.hash = child


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
                child = _Node()
                node.set_child(word, child)
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
            parent.set_child(word, None)
            node = parent
        return True

    def match(self, routing_key: str) -> dict[T, None]:
        """Every value whose pattern matches ``routing_key``, each once, as an ordered set.

        An explicit stack of (node, words consumed) states instead of recursion: no
        Python call per trie node.  Each state is walked at most once, so a walk costs
        at most (words + 1) x (trie nodes), whatever the bindings (100,000 keys like
        ``#.#.#.#`` cost seconds per key when ``#`` states were re-entered).  Only a
        node under a ``#`` edge can be reached twice at the same position (by ``#``
        matching zero words from its parent, or one more word from itself), and the
        positions already entered at such a node are always a suffix ``[low, n]``: so
        ``entered[node] = low`` is the whole memo, and entering at ``i < low`` pushes
        only the positions ``i .. low - 1``.  Paths without ``#`` do no bookkeeping.
        """
        out: dict[T, None] = {}
        words = split_words(routing_key)
        n = len(words)
        stack: list[tuple[_Node[T], int]] = [(self._root, 0)]
        pop = stack.pop
        push = stack.append
        entered: dict[_Node[T], int] | None = None
        while stack:
            node, i = pop()
            if i == n:
                if node.values:
                    for value in node.values:
                        out[value] = None
            else:
                # Pushed in reverse so that literal words are walked first.
                star = node.star
                if star is not None:
                    push((star, i + 1))
                child = node.children.get(words[i])
                if child is not None:
                    push((child, i + 1))
            hash_node = node.hash
            if hash_node is not None:
                if entered is None:
                    entered = {}
                low = entered.get(hash_node, n + 1)
                if i < low:
                    entered[hash_node] = i
                    for j in range(low - 1, i - 1, -1):
                        push((hash_node, j))
        return out
