"""amqplite.protocol (placeholder; see docs/architecture.md)."""
