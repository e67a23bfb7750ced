"""What a running broker declares, as :class:`~.model.Definitions` (broker core, pure).

The predeclared exchanges are left out (every vhost has them), exclusive queues are kept
with ``exclusive=True`` (a plan must see that a client holds the name; the JSON codec
leaves them out of exports, as RabbitMQ does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, cast

from amqplite.broker.definitions.model import (
    PREDECLARED_EXCHANGES,
    BindingSpec,
    Definitions,
    ExchangeSpec,
    PermissionSpec,
    QueueSpec,
    TopicPermissionSpec,
    UserSpec,
    VHostSpec,
)

if TYPE_CHECKING:
    from amqplite.broker.broker import Broker
    from amqplite.broker.vhost import VHost


def snapshot(broker: Broker, *, vhost: str | None = None) -> Definitions:
    """The broker's definitions now; with ``vhost``, only that vhost and no users."""
    vhosts = [v for v in list(broker.vhosts.values()) if vhost is None or v.name == vhost]
    if vhost is not None:
        return Definitions(vhosts=tuple(_vhost(v) for v in vhosts))
    users = sorted(broker.users.users.values(), key=lambda u: u.name)
    return Definitions(
        vhosts=tuple(_vhost(v) for v in vhosts),
        users=tuple(
            UserSpec(u.name, u.password_hash, tuple(u.tags), limits=dict(u.limits)) for u in users
        ),
        permissions=tuple(
            PermissionSpec(u.name, name, p.configure, p.write, p.read)
            for u in users
            for name, p in sorted(u.permissions.items())
        ),
        topic_permissions=tuple(
            TopicPermissionSpec(u.name, name, exchange, p.write, p.read)
            for u in users
            for name, by_exchange in sorted(u.topic_permissions.items())
            for exchange, p in sorted(by_exchange.items())
        ),
    )


def _vhost(v: VHost) -> VHostSpec:
    return VHostSpec(
        name=v.name,
        limits=dict(v.limits),
        exchanges=tuple(
            ExchangeSpec(
                x.name,
                x.type,
                durable=x.durable,
                auto_delete=x.auto_delete,
                internal=x.internal,
                arguments=dict(x.arguments),
            )
            for x in list(v.exchanges.values())
            if x.name not in PREDECLARED_EXCHANGES
        ),
        queues=tuple(
            QueueSpec(
                q.name,
                durable=q.durable,
                auto_delete=q.auto_delete,
                arguments=dict(q.arguments),
                exclusive=q.exclusive or q.owner is not None,
            )
            for q in list(v.queues.values())
        ),
        bindings=tuple(
            BindingSpec(
                b.source,
                b.destination,
                cast(Literal["queue", "exchange"], b.destination_type),
                b.routing_key,
                dict(b.arguments),
            )
            for b in v.bindings()
        ),
    )
