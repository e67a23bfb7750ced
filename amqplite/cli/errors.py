"""The one error type CLI commands raise for expected failures (CLI layer).

The ``amqplite`` front door prints it as one line, ``amqplite: error: <message>``, and
exits 1: no traceback for a refused connection, a 401 or a missing queue.
"""

from __future__ import annotations


class CommandError(Exception):
    """An expected failure with a message fit for the user (one line)."""
