"""amqplite.server: the AMQP listener (trio), its connection tasks and the session glue.

I/O layer for AMQP; its sibling :mod:`amqplite.http` serves the management API, and the
two never import each other: :mod:`amqplite.app` (the composition root) wires them to one
broker.

- :class:`AmqpServer` / :func:`serve_amqp` (:mod:`amqplite.server.listener`): the listener;
- :mod:`amqplite.server.session`: protocol ↔ broker glue (the one package importing both);
- :mod:`amqplite.server.durability`: group commit; :mod:`amqplite.server.auth`: logins.

Names are imported lazily so that importing the package costs nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AmqpServer": "amqplite.server.listener",
    "serve_amqp": "amqplite.server.listener",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'amqplite.server' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
