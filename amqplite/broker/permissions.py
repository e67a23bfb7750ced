"""Permission patterns: per-vhost configure/write/read and per-exchange topic permissions
(broker layer, pure).

RabbitMQ's rules, which clients and operators rely on:

- a pattern is *searched* in the resource name (``re.search``), not matched in full, so
  ``orders`` allows ``new-orders-eu``; anchor with ``^...$`` to be exact;
- the empty pattern allows nothing;
- a pattern that does not compile allows nothing (it is kept as written so it can be
  listed and fixed; the HTTP API refuses to store one in the first place);
- topic permissions restrict routing keys on one exchange: ``write`` is checked against
  the routing key (and each ``CC``/``BCC`` key) of a publish, ``read`` against the
  binding key of a bind.  Their patterns may say ``{username}`` and ``{vhost}``, which
  are replaced by the (regex-escaped) user and vhost names before compiling, so a user
  named ``a.b`` cannot use the dot as a wildcard.  An exchange without topic permissions
  for the user is unrestricted.
"""

from __future__ import annotations

import re

import attrs

PERMISSION_KINDS = ("configure", "write", "read")
TOPIC_KINDS = ("write", "read")


def compile_pattern(pattern: str) -> re.Pattern[str] | None:
    """The compiled pattern, or None when it allows nothing (empty or not a valid regex)."""
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return None


def pattern_error(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid permission regex, or None if it is."""
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"invalid regular expression '{pattern}': {exc}"
    return None


def _search(pattern: re.Pattern[str] | None, resource: str) -> bool:
    return pattern is not None and pattern.search(resource) is not None


@attrs.frozen
class Permission:
    """The three permission patterns of one user on one vhost (regex sources)."""

    configure: str
    write: str
    read: str
    _compiled: tuple[re.Pattern[str] | None, ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        compiled = tuple(compile_pattern(p) for p in (self.configure, self.write, self.read))
        object.__setattr__(self, "_compiled", compiled)

    def allows(self, kind: str, resource: str) -> bool:
        return _search(self._compiled[PERMISSION_KINDS.index(kind)], resource)

    def allows_any(self, resource: str) -> bool:
        """Whether any of the three patterns allows ``resource`` (passive declares)."""
        return any(_search(p, resource) for p in self._compiled)


@attrs.frozen
class TopicPermission:
    """The write and read routing-key patterns of one user on one exchange of one vhost.

    ``user`` and ``vhost`` are the names substituted for ``{username}`` and ``{vhost}``.
    """

    exchange: str
    write: str
    read: str
    user: str = attrs.field(kw_only=True)
    vhost: str = attrs.field(kw_only=True)
    _compiled: tuple[re.Pattern[str] | None, ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        compiled = tuple(
            compile_pattern(expand_variables(p, self.user, self.vhost))
            for p in (self.write, self.read)
        )
        object.__setattr__(self, "_compiled", compiled)

    def allows(self, kind: str, routing_key: str) -> bool:
        return _search(self._compiled[TOPIC_KINDS.index(kind)], routing_key)


def expand_variables(pattern: str, user: str, vhost: str) -> str:
    """``pattern`` with ``{username}`` and ``{vhost}`` replaced by the escaped names."""
    if "{" not in pattern:
        return pattern
    return pattern.replace("{username}", re.escape(user)).replace("{vhost}", re.escape(vhost))
