"""amqplite.topology (placeholder; see docs/architecture.md)."""
