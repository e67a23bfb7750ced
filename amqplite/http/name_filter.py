"""The ``?name=`` filter of the management API's listings, bounded in time by construction.

Layer: ``amqplite/http``.  Pure.

As RabbitMQ: ``name=`` is a case-insensitive substring by default, and a regular
expression with ``use_regex=true``.  A client-chosen pattern must not be able to keep the
event loop busy for seconds (``(a|a)*b`` or ``a*a*a*a*a*c`` make a backtracking engine
such as Python's ``re`` take exponential or high-polynomial time), so patterns are not
given to ``re``: this module parses the usual subset (literals, ``.``, ``\\d \\w \\s``
and their negations, ``[...]`` classes, groups, ``|``, ``* + ? {m,n}``, ``^ $``) into a
Thompson automaton and simulates it, which costs at most (name length x automaton size)
steps.  Patterns are capped at :data:`MAX_PATTERN` characters and :data:`MAX_STATES`
states; anything else (back-references, look-arounds) is a 400, never a slow request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from amqplite.http.request import Request, bad_request

T = TypeVar("T")
MAX_PATTERN = 256
MAX_STATES = 2048

Pred = Callable[[str], bool]

_CLASSES: dict[str, Pred] = {
    "d": str.isdigit,
    "w": lambda c: c.isalnum() or c == "_",
    "s": str.isspace,
}


class PatternError(ValueError):
    """The pattern is not in the supported subset (or too large)."""


class _State:
    __slots__ = ("kind", "out", "out2", "pred")

    def __init__(self, kind: str, pred: Pred | None = None) -> None:
        self.kind = kind  # "char", "split", "bol", "eol", "match"
        self.pred = pred
        self.out: _State | None = None
        self.out2: _State | None = None


# A fragment: (start state, states whose ``out`` still dangles).
Frag = tuple[_State, list[_State]]


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.src = pattern
        self.pos = 0
        self.count = 0

    def state(self, kind: str, pred: Pred | None = None) -> _State:
        self.count += 1
        if self.count > MAX_STATES:
            raise PatternError("pattern too complex")
        return _State(kind, pred)

    def peek(self) -> str | None:
        return self.src[self.pos] if self.pos < len(self.src) else None

    def take(self) -> str:
        if self.pos >= len(self.src):
            raise PatternError("unexpected end of pattern")
        c = self.src[self.pos]
        self.pos += 1
        return c

    # Grammar: alternation := sequence ('|' sequence)* ; sequence := repeat* ;
    # repeat := atom quantifier? ; each returns a callable that builds a fresh fragment,
    # so that counted repetition can build as many copies as it needs.
    def alternation(self) -> Callable[[], Frag]:
        options = [self.sequence()]
        while self.peek() == "|":
            self.pos += 1
            options.append(self.sequence())
        if len(options) == 1:
            return options[0]

        def build() -> Frag:
            start, dangling = options[0]()
            for option in options[1:]:
                s, d = option()
                split = self.state("split")
                split.out, split.out2 = start, s
                start, dangling = split, dangling + d
            return start, dangling

        return build

    def sequence(self) -> Callable[[], Frag]:
        parts: list[Callable[[], Frag]] = []
        while self.peek() not in (None, "|", ")"):
            parts.append(self.repeat())

        def build() -> Frag:
            if not parts:
                empty = self.state("split")  # an epsilon step
                return empty, [empty]
            start, dangling = parts[0]()
            for part in parts[1:]:
                s, d = part()
                _patch(dangling, s)
                dangling = d
            return start, dangling

        return build

    def repeat(self) -> Callable[[], Frag]:
        atom = self.atom()
        c = self.peek()
        if c in ("*", "+", "?"):
            self.pos += 1
            low, high = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
        elif c == "{" and self._counted():
            low, high = self._bounds()
        else:
            return atom
        if self.peek() == "?":
            self.pos += 1  # lazy: the same yes/no answer for a search
        if self.peek() in ("*", "+", "?", "{"):
            raise PatternError("multiple repeat")
        return lambda: self._repeat(atom, low, high)

    def _repeat(self, atom: Callable[[], Frag], low: int, high: int | None) -> Frag:
        pieces: list[Frag] = [atom() for _ in range(low)]
        if high is None:
            s, d = atom()
            loop = self.state("split")
            loop.out = s
            _patch(d, loop)
            pieces.append((loop, [loop]))  # loop.out2 dangles: leave the loop
        else:
            for _ in range(high - low):
                s, d = atom()
                opt = self.state("split")
                opt.out = s
                pieces.append((opt, [*d, opt]))
        if not pieces:
            empty = self.state("split")
            return empty, [empty]
        start, dangling = pieces[0]
        for s, d in pieces[1:]:
            _patch(dangling, s)
            dangling = d
        return start, dangling

    def _counted(self) -> bool:
        end = self.src.find("}", self.pos)
        body = self.src[self.pos + 1 : end] if end > 0 else ""
        low, _, high = body.partition(",")
        return bool(low.isdigit() and (high.isdigit() or high == ""))

    def _bounds(self) -> tuple[int, int | None]:
        end = self.src.index("}", self.pos)
        body = self.src[self.pos + 1 : end]
        self.pos = end + 1
        low_s, comma, high_s = body.partition(",")
        low = int(low_s)
        high = int(high_s) if high_s else (None if comma else low)
        if low > MAX_PATTERN or (high is not None and (high < low or high > MAX_PATTERN)):
            raise PatternError("bad repeat count")
        return low, high

    def atom(self) -> Callable[[], Frag]:
        c = self.take()
        if c == "(":
            if self.src.startswith("?:", self.pos):
                self.pos += 2
            elif self.peek() == "?":
                raise PatternError("look-arounds and group flags are not supported")
            inner = self.alternation()
            if self.take() != ")":
                raise PatternError("missing )")
            return inner
        if c in ("^", "$"):
            kind = "bol" if c == "^" else "eol"
            return lambda: self._single(kind, None)
        if c in ("*", "+", "?", ")"):
            raise PatternError(f"nothing to repeat at position {self.pos - 1}")
        if c == "{" and self._counted_at(self.pos - 1):
            raise PatternError(f"nothing to repeat at position {self.pos - 1}")
        if c == "[":
            pred = self._class()
        elif c == "\\":
            pred = self._escape()
        elif c == ".":
            pred = _any
        else:
            pred = _char(c)
        return lambda: self._single("char", pred)

    def _counted_at(self, pos: int) -> bool:
        saved, self.pos = self.pos, pos
        try:
            return self._counted()
        finally:
            self.pos = saved

    def _single(self, kind: str, pred: Pred | None) -> Frag:
        s = self.state(kind, pred)
        return s, [s]

    def _escape(self) -> Pred:
        c = self.take()
        if c.lower() in _CLASSES:
            base = _CLASSES[c.lower()]
            return base if c.islower() else (lambda ch: not base(ch))
        if c.isalnum():
            raise PatternError(f"unsupported escape \\{c}")
        return _char(c)

    def _class(self) -> Pred:
        negate = self.peek() == "^"
        if negate:
            self.pos += 1
        preds: list[Pred] = []
        first = True
        while True:
            c = self.take()
            if c == "]" and not first:
                break
            first = False
            if c == "\\":
                preds.append(self._escape())
            elif self.peek() == "-" and self.src[self.pos + 1 : self.pos + 2] not in ("]", ""):
                self.pos += 1
                hi = self.take()
                if hi == "\\":
                    hi = self.take()
                if hi < c:
                    raise PatternError("bad character range")
                preds.append(_range(c, hi))
            else:
                preds.append(_char(c))
        if negate:
            return lambda ch: not any(p(ch) for p in preds)
        return lambda ch: any(p(ch) for p in preds)


def _char(c: str) -> Pred:
    folded = c.casefold()
    return lambda ch: ch.casefold() == folded


def _range(lo: str, hi: str) -> Pred:
    return lambda ch: lo <= ch <= hi or lo <= ch.swapcase() <= hi


def _any(ch: str) -> bool:
    return ch != "\n"


def _patch(dangling: list[_State], target: _State) -> None:
    for s in dangling:
        if s.kind == "split" and s.out is not None:
            s.out2 = target
        else:
            s.out = target


def compile_filter(pattern: str, use_regex: bool) -> Callable[[str], bool]:
    """A predicate on names for ``?name=pattern`` (PatternError if it cannot be used, or
    once it has cost more than :data:`MAX_WORK` automaton steps in total)."""
    if not use_regex:
        needle = pattern.casefold()
        return lambda name: needle in name.casefold()
    if len(pattern) > MAX_PATTERN:
        raise PatternError(f"pattern longer than {MAX_PATTERN} characters")
    parser = _Parser(pattern)
    build = parser.alternation()
    if parser.pos != len(pattern):
        raise PatternError(f"unbalanced ) at position {parser.pos}")
    start, dangling = build()
    _patch(dangling, _State("match"))
    return _Matcher(start).search


#: Automaton states one filter may visit while building its transitions, over a whole
#: listing (about a tenth of a second); past it the request is refused with 400.
MAX_WORK = 500_000
_CACHE_LIMIT = 8192


class _Matcher:
    """Thompson simulation with the transitions between state sets cached (a lazy DFA):
    once the sets a listing meets are known, a name costs one dictionary lookup per
    character, and building them is bounded by :data:`MAX_WORK`."""

    def __init__(self, start: _State) -> None:
        self.start = start
        self.work = 0
        self.ids: dict[frozenset[_State], int] = {}
        self.sets: list[frozenset[_State]] = []
        self.accepting: list[bool] = []
        self.moves: dict[tuple[int, str], int] = {}
        self.first = self._closure([start], at_start=True, at_end=False)

    def search(self, text: str) -> bool:
        current = self.first
        moves = self.moves
        accepting = self.accepting
        for ch in text:
            if accepting[current]:
                return True
            following = moves.get((current, ch))
            if following is None:
                following = self._move(current, ch)
            current = following
        if accepting[current]:
            return True
        final = self._closure(list(self.sets[current]), at_start=not text, at_end=True)
        return accepting[final]

    def _move(self, current: int, ch: str) -> int:
        moved = [s.out for s in self.sets[current] if s.kind == "char" and s.pred and s.pred(ch)]
        following = self._closure([*moved, self.start], at_start=False, at_end=False)
        if len(self.moves) >= _CACHE_LIMIT:
            self.moves.clear()
        self.moves[(current, ch)] = following
        return following

    def _closure(self, states: list[_State | None], *, at_start: bool, at_end: bool) -> int:
        """The id of the set of states reachable from ``states`` without reading."""
        seen: set[_State] = set()
        stack = [s for s in states if s is not None]
        while stack:
            state = stack.pop()
            if state in seen:
                continue
            seen.add(state)
            kind = state.kind
            if kind == "split":
                stack.extend(n for n in (state.out, state.out2) if n is not None)
            elif ((kind == "bol" and at_start) or (kind == "eol" and at_end)) and state.out:
                stack.append(state.out)
        self.work += len(seen) + 1
        if self.work > MAX_WORK:
            raise PatternError("name filter too expensive")
        key = frozenset(seen)
        found = self.ids.get(key)
        if found is None:
            found = self.ids[key] = len(self.sets)
            self.sets.append(key)
            self.accepting.append(any(s.kind == "match" for s in key))
        return found


def by_name(request: Request, items: list[T], name_of: Callable[[T], str]) -> list[T]:
    """``items`` whose name passes the request's ``?name=`` (and ``use_regex``) filter;
    400 for a pattern outside the supported subset or one that grows too expensive."""
    query = dict(request.query)
    pattern = query.get("name")
    if not pattern:
        return items
    use_regex = query.get("use_regex", "false").lower() == "true"
    try:
        match = compile_filter(pattern, use_regex)
        return [item for item in items if match(name_of(item))]
    except PatternError as exc:
        raise bad_request(f"invalid name filter: {exc}") from None
