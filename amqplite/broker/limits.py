"""Resource limits of vhosts and users, and RabbitMQ's texts when one is reached
(broker layer, pure).

A vhost may cap its ``max-connections`` and ``max-queues``; a user its
``max-connections`` and ``max-channels`` (summed over all the user's connections).  As in
RabbitMQ a limit of 0 allows nothing and a negative one (or none) means no limit.  Limits
are plain ``{name: int}`` dicts on :class:`~amqplite.broker.vhost.VHost` and
:class:`~amqplite.broker.auth.User`, in the shape RabbitMQ's ``/api/vhost-limits``,
``/api/user-limits`` and definitions use, so every codec passes them through unchanged.
Counting is done only where a limit is set, so an unlimited broker pays nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from amqplite.errors import AMQPConnectionError, ChannelError, not_allowed, precondition_failed

VHOST_LIMITS = ("max-connections", "max-queues")
USER_LIMITS = ("max-connections", "max-channels")


def parse_limits(kind: str, values: Mapping[str, object]) -> dict[str, int]:
    """Validated limits for a ``kind`` ("vhost" or "user"); ValueError with RabbitMQ's text."""
    known = VHOST_LIMITS if kind == "vhost" else USER_LIMITS
    unknown = [name for name in values if name not in known]
    if unknown:
        raise ValueError(f"Unrecognised terms {unknown} in limits")
    out: dict[str, int] = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{name} should be a number, actually was {value!r}")
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"{name} should be a number, actually was {value!r}") from None
        if isinstance(value, float) and value != number:
            raise ValueError(f"{name} should be a whole number, actually was {value!r}")
        out[name] = number
    return out


def reached(limits: Mapping[str, int], name: str, count: int) -> int | None:
    """The limit ``name`` if ``count`` things already use it all up, else None."""
    limit = limits.get(name)
    if limit is None or limit < 0 or count < limit:
        return None
    return limit


def vhost_connections_reached(vhost: str, user: str, limit: int) -> AMQPConnectionError:
    return not_allowed(
        f"access to vhost '{vhost}' refused for user '{user}': connection limit ({limit}) is reached"
    )


def user_connections_reached(user: str, limit: int) -> AMQPConnectionError:
    return not_allowed(
        f"connection refused for user '{user}': user connection limit ({limit}) is reached"
    )


def node_connections_reached(limit: int) -> AMQPConnectionError:
    return not_allowed(f"connection refused: node connection limit ({limit}) is reached")


def user_channels_reached(user: str, limit: int) -> AMQPConnectionError:
    return not_allowed(
        f"number of channels opened for user '{user}' has reached the maximum allowed "
        f"user limit of ({limit})"
    )


def queues_reached(queue: str, vhost: str, limit: int) -> ChannelError:
    return precondition_failed(
        f"cannot declare queue '{queue}': queue limit in vhost '{vhost}' ({limit}) is reached"
    )
