#!/usr/bin/env bash
# Best effort: make a real RabbitMQ available for the conformance tests, which run every
# scenario against amqplite and, when AMQPLITE_RABBITMQ_URL is set, against RabbitMQ too.
# Installs Debian's rabbitmq-server if missing (needs root), starts it detached if nothing
# answers on 5672, enables the management API, and prints the two URLs for `make` to
# export.  Prints nothing (and exits 0) when RabbitMQ cannot be had: those tests then skip.
set -u
log=${TMPDIR:-/tmp}/amqplite-rabbitmq-setup.log
if ! command -v rabbitmq-server >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || exit 0
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server) >>"$log" 2>&1 || exit 0
fi
if ! rabbitmqctl -q status >/dev/null 2>&1; then
  rabbitmq-server -detached >>"$log" 2>&1 || exit 0
fi
# A node started a moment ago may not have registered with epmd yet, and await_startup
# then gives up at once: give it a few tries before deciding RabbitMQ cannot be had.
started=""
for _ in 1 2 3 4 5 6; do
  if timeout 90 rabbitmqctl -q await_startup >>"$log" 2>&1; then started=1; break; fi
  sleep 5
done
[ -n "$started" ] || exit 0
# CI's RabbitMQ is a throwaway, but its data directory outlives the node between runs on one
# machine: queues an earlier run left behind (a stream, a half-finished scenario) would change
# what the next run's comparisons see.  Start CI from an empty node.
if [ "${CI:-}" = true ]; then
  (rabbitmqctl -q stop_app && rabbitmqctl -q reset && rabbitmqctl -q start_app) >>"$log" 2>&1 || true
  timeout 90 rabbitmqctl -q await_startup >>"$log" 2>&1 || true
fi
rabbitmq-plugins -q enable rabbitmq_management >>"$log" 2>&1 || true
for _ in $(seq 1 60); do
  curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null 2>&1 && break
  sleep 0.5
done
echo "AMQPLITE_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672/"
curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null 2>&1 \
  && echo "AMQPLITE_RABBITMQ_API=http://guest:guest@127.0.0.1:15672"
exit 0
