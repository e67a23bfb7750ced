"""amqplite.broker (placeholder; see docs/architecture.md)."""
