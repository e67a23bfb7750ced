"""The definitions model: frozen specs for everything a broker declares (broker core, pure).

A :class:`Definitions` is a whole set: vhosts (each with its exchanges, queues and
bindings), users, and permissions (flat, as RabbitMQ keeps them: a permission names its
user and vhost).  The same values come from a YAML file, from RabbitMQ's definitions JSON,
from the store's records and from a running broker (:func:`~.snapshot.snapshot`), so one
:func:`~.plan.plan` compares any two of them.

Every spec may remember where it was written (``position`` and ``path``, excluded from
equality, so two sources declaring the same thing compare equal) so a conflict still
names ``file:line``.  Queue and exchange arguments are RabbitMQ's ``x-...`` argument
tables, exactly what a client would send in ``queue.declare`` / ``exchange.declare``.

Topic permissions are flat too.  Limits (``max-connections``... of a vhost or a user)
are ``None`` when the source does not say (a YAML file without ``limits:`` leaves a
broker's limits alone) and a mapping when it does (``{}``: no limits).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

#: Exchanges every vhost has from birth (RabbitMQ's predeclared set); "" is the default exchange.
PREDECLARED_EXCHANGES: Mapping[str, str] = {
    "": "direct",
    "amq.direct": "direct",
    "amq.fanout": "fanout",
    "amq.topic": "topic",
    "amq.headers": "headers",
    "amq.match": "headers",
}

EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")


@attrs.frozen
class Position:
    """Where something was written: file name, 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


NOWHERE = Position("<defaults>", 0, 0)


class PlainPassword:
    """A plain password from a file, kept only as a check against a stored hash.

    The text is not an attribute (so no repr, ``attrs.asdict`` or log line can show it);
    :meth:`matches` lets a plan see that a stored hash already holds this password, so a
    file with ``password:`` converges instead of rewriting the user on every apply.
    """

    __slots__ = ("_hashed", "_matches")

    def __init__(self, plain: str, verify: Callable[[str, str], bool]) -> None:
        self._matches: Callable[[str], bool] = lambda stored: verify(plain, stored)
        self._hashed: Callable[[Callable[[str], str]], str] = lambda hasher: hasher(plain)

    def matches(self, stored_hash: str) -> bool:
        return self._matches(stored_hash)

    def hashed(self, hasher: Callable[[str], str]) -> str:
        """The password hashed by ``hasher`` (a target that wants its own hash format)."""
        return self._hashed(hasher)

    def __repr__(self) -> str:
        return "PlainPassword(<hidden>)"


@attrs.frozen
class PermissionSpec:
    """A user's configure/write/read regular expressions on one vhost."""

    user: str
    vhost: str
    configure: str
    write: str
    read: str
    position: Position = attrs.field(default=NOWHERE, eq=False, repr=False)
    path: str = attrs.field(default="", eq=False, repr=False)


@attrs.frozen
class TopicPermissionSpec:
    """A user's write/read routing-key patterns on one exchange of one vhost."""

    user: str
    vhost: str
    exchange: str
    write: str
    read: str
    position: Position = attrs.field(default=NOWHERE, eq=False, repr=False)
    path: str = attrs.field(default="", eq=False, repr=False)


Limits = Mapping[str, int]


@attrs.frozen
class UserSpec:
    """A user: name, password hash (our ``scrypt$...`` or RabbitMQ's ``rabbitsha256$...``), tags."""

    name: str
    password_hash: str = attrs.field(repr=False)
    tags: tuple[str, ...] = ()
    #: Set when the source gave a plain password: the hash above is a fresh salt of it,
    #: and ``password.matches(stored)`` says whether a broker's hash already holds it.
    password: PlainPassword | None = attrs.field(default=None, eq=False, repr=False)
    #: ``max-connections`` / ``max-channels``; None: not said (left as they are).
    limits: Limits | None = None
    position: Position = attrs.field(default=NOWHERE, eq=False, repr=False)
    path: str = attrs.field(default="", eq=False, repr=False)


@attrs.frozen
class ExchangeSpec:
    name: str
    type: str
    durable: bool = True
    auto_delete: bool = False
    internal: bool = False
    arguments: Mapping[str, Any] = attrs.field(factory=dict)
    position: Position = attrs.field(default=NOWHERE, eq=False, repr=False)
    path: str = attrs.field(default="", eq=False, repr=False)


@attrs.frozen
class QueueSpec:
    name: str
    durable: bool = True
    auto_delete: bool = False
    arguments: Mapping[str, Any] = attrs.field(factory=dict)
    #: Only a snapshot has exclusive queues (a client connection's); files cannot declare them.
    exclusive: bool = False
    position: Position = attrs.field(default=NOWHERE, eq=False, repr=False)
    path: str = attrs.field(default="", eq=False, repr=False)
    #: Where each x-argument was written, so a conflict names the exact line.
    argument_positions: Mapping[str, Position] = attrs.field(factory=dict, eq=False, repr=False)
    #: The key path of each x-argument as written (``queues.q.arguments.max_length``).
    argument_paths: Mapping[str, str] = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def queue_type(self) -> str:
        qtype = self.arguments.get("x-queue-type") or "classic"
        return qtype.decode() if isinstance(qtype, bytes) else str(qtype)


@attrs.frozen
class BindingSpec:
    source: str
    destination: str
    destination_type: Literal["queue", "exchange"] = "queue"
    routing_key: str = ""
    arguments: Mapping[str, Any] = attrs.field(factory=dict)
    position: Position = attrs.field(default=NOWHERE, eq=False, repr=False)
    path: str = attrs.field(default="", eq=False, repr=False)

    def describe(self) -> str:
        """``orders -> queue orders.eu ('eu.#')``: how plans and errors name a binding."""
        args = f", {json.dumps(dict(self.arguments), default=str)}" if self.arguments else ""
        arrow = f"{self.source} -> {self.destination_type} {self.destination}"
        return f"{arrow} ({self.routing_key!r}{args})"


@attrs.frozen
class VHostSpec:
    name: str
    exchanges: tuple[ExchangeSpec, ...] = ()
    queues: tuple[QueueSpec, ...] = ()
    bindings: tuple[BindingSpec, ...] = ()
    #: ``max-connections`` / ``max-queues``; None: not said (left as they are).
    limits: Limits | None = None
    position: Position = attrs.field(default=NOWHERE, eq=False, repr=False)
    path: str = attrs.field(default="", eq=False, repr=False)


@attrs.frozen
class Reference:
    """A name the definitions use but do not declare: it must exist on the broker.

    A file applied to a running broker may bind to an exchange the broker already has;
    the plan checks each reference against the broker's current definitions.
    """

    kind: Literal["exchange", "queue"]
    vhost: str
    name: str
    position: Position = attrs.field(default=NOWHERE, eq=False, repr=False)
    path: str = attrs.field(default="", eq=False, repr=False)


@attrs.frozen
class Definitions:
    """A whole set of definitions; ``vhosts`` lists every vhost the others refer to."""

    vhosts: tuple[VHostSpec, ...] = ()
    users: tuple[UserSpec, ...] = ()
    permissions: tuple[PermissionSpec, ...] = ()
    topic_permissions: tuple[TopicPermissionSpec, ...] = ()
    #: Names used here but declared elsewhere (on the broker); see :class:`Reference`.
    requires: tuple[Reference, ...] = ()

    def vhost(self, name: str) -> VHostSpec | None:
        for v in self.vhosts:
            if v.name == name:
                return v
        return None

    def user(self, name: str) -> UserSpec | None:
        for u in self.users:
            if u.name == name:
                return u
        return None

    def permissions_of(self, user: str) -> tuple[PermissionSpec, ...]:
        return tuple(p for p in self.permissions if p.user == user)

    def moved(self, old: str, new: str) -> Definitions:
        """The same definitions with vhost ``old`` called ``new`` (apply a file elsewhere)."""

        def name(vhost: str) -> str:
            return new if vhost == old else vhost

        return Definitions(
            vhosts=tuple(attrs.evolve(v, name=name(v.name)) for v in self.vhosts),
            users=self.users,
            permissions=tuple(attrs.evolve(p, vhost=name(p.vhost)) for p in self.permissions),
            topic_permissions=tuple(
                attrs.evolve(t, vhost=name(t.vhost)) for t in self.topic_permissions
            ),
            requires=tuple(attrs.evolve(r, vhost=name(r.vhost)) for r in self.requires),
        )


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
