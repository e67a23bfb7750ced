"""amqplite.http (placeholder; see docs/architecture.md)."""
