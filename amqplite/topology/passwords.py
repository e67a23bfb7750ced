"""Password handling for users declared in a config file.

Layer: topology.  The broker core owns the hash format (``amqplite.broker.hash_password``,
RabbitMQ's salted SHA-256 by default); a plain ``password`` is hashed with it at load
time and never stored in a ``Config``.
"""

from __future__ import annotations

from amqplite.broker import hash_password

__all__ = ["hash_password", "looks_like_hash"]


def looks_like_hash(text: str) -> bool:
    """A cheap shape check for ``password_hash`` values (``scheme$...``)."""
    scheme, sep, rest = text.partition("$")
    return bool(sep and rest and scheme.isalnum())
