"""amqplite.server (placeholder; see docs/architecture.md)."""
