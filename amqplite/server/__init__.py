"""amqplite.server: the AMQP server (trio listeners, connection tasks, session glue).

- :func:`serve` / :func:`run_in_thread` (:mod:`amqplite.server.app`): embed a broker;
- :class:`AmqpServer` / :func:`serve_amqp` (:mod:`amqplite.server.listener`): the listener;
- :mod:`amqplite.server.session`: protocol ↔ broker glue (the one package importing both);
- :mod:`amqplite.server.pytest_plugin`: the ``amqplite_broker`` / ``amqplite_url`` fixtures.

Names are imported lazily so that ``amqplite.server.commands`` (loaded by the CLI) stays
cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "serve": "amqplite.server.app",
    "run_in_thread": "amqplite.server.app",
    "RunningBroker": "amqplite.server.app",
    "build_broker": "amqplite.server.app",
    "AmqpServer": "amqplite.server.listener",
    "serve_amqp": "amqplite.server.listener",
    "ServerSettings": "amqplite.server.settings",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'amqplite.server' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
