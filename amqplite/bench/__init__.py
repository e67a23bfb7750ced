"""amqplite bench: a PerfTest-style AMQP 0-9-1 load generator with its own fast client.

Layer: ``amqplite/bench`` (stdlib only; it imports nothing else from amqplite, so it can
measure any broker and never shares a codec bug with ours).  The one exception is
:mod:`amqplite.bench.micro`, which times our own hot functions in-process and is never
imported by the load generator.

Usage::

    amqplite bench [SCENARIO[,SCENARIO...]] --url URL [--compare URL2]
                   [--broker-pid PID] [--compare-pid PID2] [knobs]
    python -m amqplite.bench ...            # the same

Scenarios:

  publish          producers -> direct exchange -> 1 queue, no confirms, no consumer; done
                   when the queue holds every message; with --broker-pid, the broker's RSS
                   growth per queued message
  confirm          the same with publisher confirms, --confirm-window N unconfirmed at most
  persistent       durable exchange and queue, delivery-mode 2, confirms (window as above)
  e2e              producers -> 1 queue -> consumers, --prefetch N, manual acks
  fanout           fanout exchange to --queues N queues (default 10); msg/s counts messages in,
                   deliv/s counts deliveries
  topic            topic exchange with --bindings N wildcard bindings (default 1000) over
                   --queues queues; every routing key matches exactly one binding
  direct-bindings  direct exchange with --bindings N keys (give a list: 10,1000,100000) to
                   show that routing cost does not grow with the number of bindings
  queues           --queues N queues (default 1000), each bound with its own key, all consumed
  latency          a steady --rate R msg/s for --duration; p50/p99/p999 publish -> deliver
  manyclients      --producers (default 200) connections publishing at a steady --rate R msg/s
                   in all (default 30,000; a comma list runs each), --consumers (200) consuming
                   --queues (100) queues; the load comes from --workers processes so the client
                   is not the limit; msg/s is what was delivered while the producers ran
  manyconn         --connections N idle connections (one channel each) + the e2e workload;
                   with --broker-pid, the broker's RSS growth per idle connection
  stream-publish   publish with confirms (window as above) to a stream queue
                   (x-queue-type: stream; durable exchange and queue)
  stream-catchup   fill a stream with --count messages (default 200,000) with confirms, then
                   one consumer reads them all from x-stream-offset "first" at --prefetch;
                   msg/s is the read rate, conf/s the fill rate
  stream-tail      producers -> stream -> consumers attached at "next" (a live tail),
                   --prefetch N, bounded backlog as for e2e
  stream-latency   a steady --rate R msg/s through a stream to a live-tail consumer
  stream           the four stream scenarios above
  all              every scenario above, one after the other
  selftest         no broker: the client's own encode + parse capacity (msg/s on one core)
  mgmt             e2e (first --size and --prefetch) in --runs pairs, alone and while --pollers
                   HTTP clients (default 20) GET /api/queues and /metrics every second and a
                   dashboard GETs /api/overview and /api/queues, on a broker given --queues
                   extra idle queues (default 10,000); reports with/without per pair and the
                   median. --http-url (default http://USER:PASS@HOST:15672/ from --url),
                   --compare-http-url for B, --no-gzip

Every run declares uniquely named exchanges/queues, stops by itself after --duration seconds
(default 5) or --count messages, waits at most --drain-timeout for the rest, and deletes
what it declared. Consuming scenarios keep at most --inflight messages published but not
yet delivered. Bodies of 8 bytes or more carry the publish time, so latency is measured end
to end (publish -> deliver, or publish -> confirm for confirm scenarios).

--size, --prefetch, --confirm-window and --bindings take comma lists; every combination runs.
--runs N repeats each configuration; with --compare URL2 each repetition is a pair (A then
B) and the output ends with the per-pair ratios A/B and their median. --broker-pid PID
(and --compare-pid for B) adds broker CPU microseconds per message and peak RSS, read
from /proc (same machine only).

Output: a progress line on stderr while running (on a terminal, not with --quiet), then a
table on stdout.
--json prints one JSON document instead::

    {"tool": "amqplite-bench", "format": 1,
     "results": [{"scenario", "target" ("A"|"B"), "url" (no password), "params",
                  "published", "confirmed", "delivered", "seconds",
                  "msg_per_s", "publish_per_s", "confirm_per_s", "deliver_per_s",
                  "latency_ms" ({"p50", "p99", "p999", "max"} or null),
                  "broker_cpu_us_per_msg", "broker_cpu_pct", "broker_rss_mb",
                  "client_cpu_pct", "idle_conn_kb", "queued_msg_bytes", "nacked",
                  "error", "extra"}],
     "comparisons": [{"scenario", "params",
                      "ratios": {"msg_per_s": {"pairs": [...], "median": x}, ...}}],
     "selftest": [{"size", "messages", "encode_per_s", "parse_per_s", "msg_per_s"}]}

The exit status is 1 if any run reported an error.

Comparing amqplite (A) with a local RabbitMQ (B), 5 alternating pairs::

    amqplite bench e2e --url amqp://guest:guest@127.0.0.1:5673/ --broker-pid PID_A \\
        --compare amqp://guest:guest@127.0.0.1:5672/ --compare-pid PID_B \\
        --runs 5 --size 16,1024 --prefetch 1,100,1000

Stream queues side by side (what docs/performance.md records)::

    amqplite bench stream --url amqp://guest:guest@127.0.0.1:5673/ --broker-pid PID_A \\
        --compare amqp://guest:guest@127.0.0.1:5672/ --compare-pid PID_B \\
        --runs 5 --size 16,1024 --prefetch 1000
"""
