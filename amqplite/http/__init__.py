"""amqplite.http: the management side of the broker (h11 on trio; may import broker and server).

- :func:`amqplite.http.server.serve_http` -- the HTTP listener: ``/api/...`` (RabbitMQ-shaped
  management API), ``/metrics`` (Prometheus), ``/`` and ``/static/...`` (the dashboard);
- :mod:`amqplite.http.api` -- :class:`ManagementApp`, the endpoints;
- :mod:`amqplite.http.deadletters` -- dead-letter requests parsed and replies rendered (the
  selection, summary and replay themselves live in :mod:`amqplite.broker.replay`);
- RabbitMQ definitions JSON export / import go through :mod:`amqplite.broker.definitions`;
- :mod:`amqplite.http.metrics`, :mod:`amqplite.http.render`, :mod:`amqplite.http.rates` --
  read-only views of the broker;

Nothing is imported here, so ``amqplite --help`` stays cheap.
"""
