"""The amqplite version: one value, read by the package, the server properties and the CLI.

A leaf module (imports nothing), so that any layer may read the version without importing
the package root's lazy entry points.
"""

from __future__ import annotations

__version__ = "0.1.0"
