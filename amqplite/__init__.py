"""amqplite: an AMQP 0-9-1 message broker in Python with RabbitMQ's semantics.

The packages, by layer (see docs/architecture.md):

- :mod:`amqplite.protocol` - the AMQP 0-9-1 codec and connection state machine (no I/O)
- :mod:`amqplite.broker`   - exchanges, queues, consumers, dead-lettering (no I/O)
- :mod:`amqplite.store`    - message persistence
- :mod:`amqplite.topology` - the YAML config and topology
- :mod:`amqplite.server`   - the AMQP listener (trio) and the session glue
- :mod:`amqplite.http`     - the management HTTP API and dashboard (h11 on trio)
- :mod:`amqplite.client`   - blocking AMQP and management-API clients of a running broker
- :mod:`amqplite.app`      - the composition root: ``serve``, ``run_in_thread``
- :mod:`amqplite.cli`      - the ``amqplite`` command
- :mod:`amqplite.bench`    - the load generator

Network I/O happens in server, http, client, app, cli and bench; protocol, broker and store
do none (``tests/test_layering.py`` checks it against the table in docs/architecture.md).
"""

from __future__ import annotations

from amqplite.version import __version__

__all__ = ["__version__", "run_in_thread", "serve"]


def __getattr__(name: str) -> object:
    # Lazy, so that importing the pure layers (protocol, broker) never pulls in trio.
    if name in ("serve", "run_in_thread"):
        from amqplite import app

        return getattr(app, name)
    raise AttributeError(f"module 'amqplite' has no attribute {name!r}")
