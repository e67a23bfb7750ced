"""amqplite.store (placeholder; see docs/architecture.md)."""
