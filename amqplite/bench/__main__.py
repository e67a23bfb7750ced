"""``python -m amqplite.bench``: the same command as ``amqplite bench`` (layer: amqplite/bench)."""

from __future__ import annotations

import sys

from amqplite.bench.commands import main

if __name__ == "__main__":
    sys.exit(main())
