"""amqplite.bench (placeholder; see docs/architecture.md)."""
