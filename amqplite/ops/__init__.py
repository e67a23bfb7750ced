"""Operating a running broker from the command line (CLI layer).

``amqplite queues|exchanges|bindings|connections|publish|consume|get|dlq|route`` and the
remote half of ``amqplite topology plan|apply|export|import``: thin code over the
management HTTP API (:mod:`amqplite.ops.api`), the blocking AMQP client
(:mod:`amqplite.client`) and the topology package.  Works against amqplite and RabbitMQ
alike (both speak the same HTTP API and AMQP).
"""
