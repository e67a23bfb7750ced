"""The session: glue between one protocol connection and the broker core (server layer).

This package is the ONE place that imports both :mod:`amqplite.protocol` and
:mod:`amqplite.broker` (``tests/test_layering.py`` keeps it so).  It is synchronous: the
connection task hands it a receive buffer, it handles every event in it by calling the
broker, and encodes replies and deliveries into the connection's outbox.

- :mod:`~amqplite.server.session.core`: :class:`Session`, entry points for the connection
  task, event dispatch, the error model, what the protocol owns and what the session owns;
- :mod:`~amqplite.server.session.dispatch`: method → handler tables, channel.close / flow;
- :mod:`~amqplite.server.session.handshake`: start-ok / tune-ok / open / close, server
  properties; :mod:`~amqplite.server.session.sasl`: PLAIN and AMQPLAIN responses;
- :mod:`~amqplite.server.session.channel`: :class:`SessionChannel`, one open channel and
  the broker's delivery sink for it;
- :mod:`~amqplite.server.session.topology`: exchange.* and queue.*;
- :mod:`~amqplite.server.session.basic`: basic.* and publishes (the hot path);
- :mod:`~amqplite.server.session.modes`: confirm.select, tx.*, emitting confirms;
- :mod:`~amqplite.server.session.reply_to`: RabbitMQ's direct reply-to.
"""

from __future__ import annotations

from amqplite.server.session.channel import SessionChannel
from amqplite.server.session.core import SHUTDOWN_TEXT, Session

__all__ = ["SHUTDOWN_TEXT", "Session", "SessionChannel"]
