"""``python -m amqplite`` runs the command-line interface."""

from amqplite.cli import main

raise SystemExit(main())
