"""The bench scenarios: one bounded run of one configuration against one broker URL.

Layer: ``amqplite/bench`` (stdlib only). ``run_scenario(url, config, ...)`` declares its own
uniquely named exchange and queues, runs producers/consumers until ``duration`` or ``count``
is reached, drains, measures, and deletes what it declared (also after errors). It never
raises for broker trouble: the ``RunResult`` carries an ``error`` string instead, so a table
of many runs still prints.

Consuming scenarios keep a bounded backlog (``inflight`` messages published but not yet
delivered) so that they measure the broker's throughput, not how fast a queue can grow.
"""

from __future__ import annotations

import array
import asyncio
import itertools
import os
import sys
import time
from dataclasses import dataclass, field

from amqplite.bench.client import BenchConnection, BenchError, connect, pipelined
from amqplite.bench.manyclients import Plan, run_manyclients
from amqplite.bench.procstat import BrokerMonitor, rss_kb
from amqplite.bench.wire import BenchProtocolError, ConfirmTracker, FieldValue, PublishTemplate

SCENARIOS = (
    "publish",
    "confirm",
    "e2e",
    "fanout",
    "topic",
    "direct-bindings",
    "persistent",
    "latency",
    "manyconn",
    "queues",
    "manyclients",
    "stream-publish",
    "stream-catchup",
    "stream-tail",
    "stream-latency",
)
# ``amqplite bench stream`` runs these four: one stream queue (x-queue-type: stream) each.
STREAM_SCENARIOS = ("stream-publish", "stream-catchup", "stream-tail", "stream-latency")
CONSUMING = frozenset(
    {
        "e2e",
        "fanout",
        "topic",
        "direct-bindings",
        "latency",
        "manyconn",
        "queues",
        "manyclients",
        "stream-catchup",
        "stream-tail",
        "stream-latency",
    }
)
CONFIRMING = frozenset({"confirm", "persistent", "stream-publish", "stream-catchup"})
LATENCY = frozenset({"latency", "stream-latency"})
# stream-catchup fills this many messages when --count is not given, then reads them back.
CATCHUP_DEFAULT = 200_000
# The arguments a stream queue is declared with; the stream starts small so the bench never
# leaves gigabytes behind if its cleanup cannot run.
STREAM_ARGUMENTS: dict[str, FieldValue] = {
    "x-queue-type": "stream",
    "x-max-length-bytes": 2_000_000_000,
}

# Consuming scenarios queue at most this many body bytes (see RunConfig.backlog).
BACKLOG_BYTES = 64 << 20

_run_ids = itertools.count(1)
_mono_ns = time.monotonic_ns


@dataclass(frozen=True, slots=True)
class RunConfig:
    """One configuration of one scenario (sizes, prefetches, bindings already expanded)."""

    scenario: str
    size: int = 16
    prefetch: int = 100
    producers: int = 1
    consumers: int = 1
    window: int = 1000
    queues: int = 10
    bindings: int = 1000
    rate: float = 1000.0
    connections: int = 200
    duration: float = 5.0
    count: int | None = None
    ack_every: int = 0
    inflight: int = 5000
    drain_timeout: float = 30.0
    workers: int = 2

    @property
    def backlog(self) -> int:
        """Most messages published but not yet delivered: ``inflight``, and at most
        :data:`BACKLOG_BYTES` of bodies (64 x 1 MiB), so large bodies measure throughput
        rather than how much memory a broker will queue."""
        return max(1, min(self.inflight, BACKLOG_BYTES // max(self.size, 1)))

    def params(self) -> dict[str, int | float]:
        """The knobs that matter for this scenario (what the table and JSON show)."""
        p: dict[str, int | float] = {"size": self.size}
        s = self.scenario
        if s in CONFIRMING:
            p["window"] = self.window
        if s in CONSUMING:
            p["prefetch"] = self.prefetch
            p["consumers"] = self.consumers
        p["producers"] = self.producers
        if s in ("fanout", "topic", "direct-bindings", "queues", "manyclients"):
            p["queues"] = self.queues
        if s in ("topic", "direct-bindings"):
            p["bindings"] = self.bindings
        if s in LATENCY or s == "manyclients":
            p["rate"] = self.rate
        if s == "manyconn":
            p["connections"] = self.connections
        return p


@dataclass(slots=True)
class RunResult:
    """What one run measured. Rates are per second of the measured phase; None = not measured."""

    scenario: str
    target: str
    url: str
    params: dict[str, int | float]
    published: int = 0
    confirmed: int = 0
    delivered: int = 0
    seconds: float = 0.0
    msg_per_s: float | None = None
    publish_per_s: float | None = None
    confirm_per_s: float | None = None
    deliver_per_s: float | None = None
    latency_ms: dict[str, float] | None = None
    broker_cpu_us_per_msg: float | None = None
    broker_cpu_pct: float | None = None
    broker_rss_mb: float | None = None
    client_cpu_pct: float | None = None
    idle_conn_kb: float | None = None
    queued_msg_bytes: float | None = None
    nacked: int = 0
    error: str | None = None
    extra: dict[str, float] = field(default_factory=dict)


def percentiles_ms(samples_ns: array.array[int]) -> dict[str, float] | None:
    if not samples_ns:
        return None
    ordered = sorted(samples_ns)
    n = len(ordered)

    def at(q: float) -> float:
        return round(ordered[min(n - 1, int(q * n))] / 1e6, 3)

    return {"p50": at(0.5), "p99": at(0.99), "p999": at(0.999), "max": round(ordered[-1] / 1e6, 3)}


def redact(url: str) -> str:
    """The URL without its password, for output."""
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, userinfo = head.partition("://")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}@{tail}"


def topic_bindings(n: int) -> tuple[list[str], list[str]]:
    """``n`` wildcard patterns and ``n`` routing keys; key i matches pattern i and no other."""
    shapes = ("bench.w{}.*", "bench.w{}.#", "*.w{}.evt", "#.w{}.evt", "*.w{}.#")
    patterns = [shapes[i % len(shapes)].format(i) for i in range(n)]
    keys = [f"bench.w{i}.evt" for i in range(n)]
    return patterns, keys


class _Progress:
    """The overwritten progress line on stderr."""

    def __init__(self, run: _Run, enabled: bool) -> None:
        self.run = run
        self.enabled = enabled
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.enabled:
            self.task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        run = self.run
        t0 = time.monotonic()
        last_n, last_t = 0, t0
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            n = run.done_count()
            rate = (n - last_n) / (now - last_t) if now > last_t else 0.0
            last_n, last_t = n, now
            params = " ".join(f"{k}={v}" for k, v in run.config.params().items())
            line = (
                f"[{run.result.target}] {run.config.scenario} {params}  {now - t0:5.1f}s  "
                f"pub {run.published} conf {run.confirmed()} del {run.delivered()}  {rate / 1000:.1f}k/s"
            )
            sys.stderr.write("\r" + line[:150].ljust(150))
            sys.stderr.flush()

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None
            sys.stderr.write("\r" + " " * 150 + "\r")
            sys.stderr.flush()


class _Run:
    """Names, connections, counters and cleanup of one run."""

    def __init__(
        self, url: str, config: RunConfig, target: str, broker_pid: int | None, progress: bool
    ) -> None:
        self.url = url
        self.config = config
        self.prefix = f"amqplite-bench.{os.getpid()}.{next(_run_ids)}.{config.scenario}"
        self.event = asyncio.Event()
        self.connections: list[BenchConnection] = []
        self.consumers: list[BenchConnection] = []
        self.trackers: list[ConfirmTracker] = []
        self.exchanges: list[str] = []
        self.queue_names: list[str] = []
        self.admin: BenchConnection | None = None
        self.published = 0
        self.monitor = BrokerMonitor(broker_pid)
        self.progress = _Progress(self, progress)
        self.result = RunResult(config.scenario, target, redact(url), config.params())

    # counters ------------------------------------------------------------------------------
    def delivered(self) -> int:
        return sum(c.receiver.delivered for c in self.consumers)

    def confirmed(self) -> int:
        return sum(t.confirmed for t in self.trackers)

    def done_count(self) -> int:
        if self.config.scenario in CONSUMING:
            return self.delivered()
        if self.config.scenario in CONFIRMING:
            return self.confirmed()
        return self.published

    def check(self) -> None:
        for conn in self.connections:
            conn.check()

    # setup ---------------------------------------------------------------------------------
    async def open(self, role: str) -> BenchConnection:
        conn = await connect(self.url, f"{self.prefix}.{role}", progress=self.event)
        self.connections.append(conn)
        return conn

    async def setup_admin(self) -> BenchConnection:
        self.admin = await self.open("admin")
        await self.admin.open_channel(1)
        return self.admin

    async def exchange(self, kind: str, *, durable: bool = False) -> str:
        assert self.admin is not None
        name = f"{self.prefix}.x"
        self.exchanges.append(name)
        await self.admin.declare_exchange(1, name, kind, durable=durable)
        return name

    async def declare_queues(
        self, count: int, *, durable: bool = False, arguments: dict[str, FieldValue] | None = None
    ) -> list[str]:
        admin = self.admin
        assert admin is not None
        names = [f"{self.prefix}.q{i}" for i in range(count)]
        self.queue_names.extend(names)
        await pipelined(
            admin.declare_queue(1, q, durable=durable, arguments=arguments) for q in names
        )
        return names

    @property
    def stream(self) -> bool:
        return self.config.scenario in STREAM_SCENARIOS

    async def bind(self, pairs: list[tuple[str, str]], exchange: str) -> None:
        admin = self.admin
        assert admin is not None
        await pipelined(admin.bind_queue(1, q, exchange, key) for q, key in pairs)

    async def cleanup(self) -> None:
        for conn in self.connections:
            if conn is not self.admin:
                await conn.close(timeout=5)
        admin = self.admin
        if admin is None or admin.error is not None:
            if admin is not None:
                await admin.close(timeout=2)
            if not self.queue_names and not self.exchanges:
                return
            try:
                admin = await connect(self.url, f"{self.prefix}.cleanup", timeout=10)
                await admin.open_channel(1)
            except (OSError, BenchError, BenchProtocolError, TimeoutError) as exc:
                self.result.error = self.result.error or f"cleanup failed: {exc}"
                return
        try:
            await pipelined(admin.delete_queue(1, q) for q in self.queue_names)
            await pipelined(admin.delete_exchange(1, x) for x in self.exchanges)
        except (OSError, BenchError, BenchProtocolError, TimeoutError) as exc:
            self.result.error = self.result.error or f"cleanup failed: {exc}"
        await admin.close(timeout=5)

    async def wait_progress(self, timeout: float = 0.5) -> None:
        self.event.clear()
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except TimeoutError:
            pass

    # producing -----------------------------------------------------------------------------
    async def produce(
        self,
        conn: BenchConnection,
        template: PublishTemplate,
        limit: int,
        deadline: float,
        fan: int,
        tracker: ConfirmTracker | None,
    ) -> None:
        """Publish pre-encoded batches until ``limit`` or ``deadline``, within backlog and window."""
        cfg = self.config
        sent = 0
        write = conn.write
        writable = conn.writable
        batch_max = template.batch_max
        monotonic = time.monotonic
        while sent < limit and monotonic() < deadline:
            self.check()
            room = min(batch_max, limit - sent)
            if fan:
                backlog = self.published * fan - self.delivered()
                room = min(room, (cfg.backlog - backlog) // fan)
            if tracker is not None:
                room = min(room, cfg.window - (tracker.published - tracker.confirmed))
            if room <= 0:
                await self.wait_progress()
                continue
            now = _mono_ns()
            write(template.batch(room, now))
            if tracker is not None:
                tracker.on_publish(room, now)
            sent += room
            self.published += room
            if writable.is_set():
                await asyncio.sleep(0)  # let the loop read deliveries and confirms
            else:
                await writable.wait()

    async def produce_at_rate(
        self, conn: BenchConnection, template: PublishTemplate, rate: float, deadline: float
    ) -> None:
        """Publish ``rate`` messages per second, each stamped when it is written."""
        t0 = time.monotonic()
        sent = 0
        while True:
            self.check()
            now = time.monotonic()
            if now >= deadline:
                return
            due = int(rate * (now - t0)) + 1 - sent
            if due > 0:
                conn.write(template.batch(due, _mono_ns()))
                sent += due
                self.published += due
            await asyncio.sleep(max(0.0, t0 + sent / rate - time.monotonic()))

    def split(self, total: int | None) -> list[int]:
        producers = max(1, self.config.producers)
        if total is None:
            return [sys.maxsize] * producers
        return [total // producers + (1 if i < total % producers else 0) for i in range(producers)]


async def _publish_only(run: _Run) -> None:
    cfg = run.config
    res = run.result
    persistent = cfg.scenario == "persistent"
    confirm = cfg.scenario in CONFIRMING
    admin = await run.setup_admin()
    exchange = await run.exchange("direct", durable=persistent or run.stream)
    (queue,) = await run.declare_queues(
        1,
        durable=persistent or run.stream,
        arguments=STREAM_ARGUMENTS if run.stream else None,
    )
    await run.bind([(queue, "k")], exchange)
    producers = []
    for i in range(max(1, cfg.producers)):
        conn = await run.open(f"producer{i}")
        await conn.open_channel(1)
        tracker = await conn.confirm_select(1) if confirm else None
        if tracker is not None:
            run.trackers.append(tracker)
        template = PublishTemplate(
            1, exchange, ["k"], cfg.size, conn.frame_max, persistent=persistent
        )
        producers.append((conn, template, tracker))
    run.progress.start()
    run.monitor.start()
    rss0 = rss_kb(run.monitor.pid) if run.monitor.pid else None
    cpu0 = time.process_time()
    t0 = time.monotonic()
    deadline = t0 + cfg.duration
    await asyncio.gather(
        *(
            run.produce(conn, template, limit, deadline, 0, tracker)
            for (conn, template, tracker), limit in zip(
                producers, run.split(cfg.count), strict=True
            )
        )
    )
    t_published = time.monotonic()
    drain_deadline = t_published + cfg.drain_timeout
    if confirm:
        while run.confirmed() < run.published and time.monotonic() < drain_deadline:
            run.check()
            await run.wait_progress()
        done = run.confirmed()
    else:
        # Done when the queue holds every message (the broker has routed them all).
        done = 0
        while time.monotonic() < drain_deadline:
            run.check()
            _, done, _ = await admin.declare_queue(1, queue, passive=True)
            if done >= run.published:
                break
            await asyncio.sleep(0.005)
    t_end = time.monotonic()
    run.monitor.stop()
    run.progress.stop()
    if not confirm and run.monitor.pid and rss0 is not None and done:
        # The queue now holds every message (nothing consumes): RSS growth per message held.
        rss1 = rss_kb(run.monitor.pid)
        if rss1 is not None:
            res.queued_msg_bytes = round((rss1 - rss0) * 1024 / done, 1)
    elapsed = t_end - t0
    res.published = run.published
    res.confirmed = run.confirmed()
    res.seconds = round(elapsed, 3)
    res.msg_per_s = round(done / elapsed, 1)
    res.publish_per_s = round(run.published / max(t_published - t0, 1e-9), 1)
    if confirm:
        res.confirm_per_s = res.msg_per_s
        res.nacked = sum(t.nacked for t in run.trackers)
        merged = array.array("q")
        for t in run.trackers:
            merged.extend(t.latencies_ns)
        res.latency_ms = percentiles_ms(merged)
    res.client_cpu_pct = round(100 * (time.process_time() - cpu0) / elapsed, 1)
    _broker_cost(run, run.published)
    if done < run.published:
        res.error = f"incomplete: {done} of {run.published} within the drain timeout"


def _broker_cost(run: _Run, messages: int) -> None:
    mon = run.monitor
    res = run.result
    if mon.cpu_s is not None:
        res.broker_cpu_us_per_msg = round(1e6 * mon.cpu_s / max(messages, 1), 2)
        res.broker_cpu_pct = round(mon.cpu_pct or 0.0, 1)
    if mon.peak_rss_kb is not None:
        res.broker_rss_mb = round(mon.peak_rss_kb / 1024, 1)


async def _topology(run: _Run) -> tuple[str, list[str], list[str], int]:
    """Declare the scenario's exchange, queues and bindings: (exchange, queues, publish keys, fan)."""
    cfg = run.config
    s = cfg.scenario
    if s == "fanout":
        exchange = await run.exchange("fanout")
        queues = await run.declare_queues(cfg.queues)
        await run.bind([(q, "") for q in queues], exchange)
        return exchange, queues, [""], len(queues)
    if s == "topic":
        exchange = await run.exchange("topic")
        queues = await run.declare_queues(cfg.queues)
        patterns, keys = topic_bindings(cfg.bindings)
        await run.bind([(queues[i % len(queues)], p) for i, p in enumerate(patterns)], exchange)
        return exchange, queues, keys, 1
    if s == "direct-bindings":
        exchange = await run.exchange("direct")
        queues = await run.declare_queues(cfg.queues)
        keys = [f"key.{i}" for i in range(cfg.bindings)]
        await run.bind([(queues[i % len(queues)], k) for i, k in enumerate(keys)], exchange)
        return exchange, queues, keys, 1
    if s in ("queues", "manyclients"):
        exchange = await run.exchange("direct")
        queues = await run.declare_queues(cfg.queues)
        keys = [f"key.{i}" for i in range(len(queues))]
        await run.bind(list(zip(queues, keys, strict=True)), exchange)
        return exchange, queues, keys, 1
    if run.stream:  # streams are durable by definition (RabbitMQ refuses anything else)
        exchange = await run.exchange("direct", durable=True)
        queues = await run.declare_queues(1, durable=True, arguments=STREAM_ARGUMENTS)
    else:
        exchange = await run.exchange("direct")
        queues = await run.declare_queues(1)
    await run.bind([(queues[0], "k")], exchange)
    return exchange, queues, ["k"], 1


async def _open_idle(run: _Run, count: int) -> list[BenchConnection]:
    idle: list[BenchConnection] = []

    async def one(i: int) -> None:
        conn = await run.open(f"idle{i}")
        await conn.open_channel(1)
        idle.append(conn)

    for start in range(0, count, 50):
        await asyncio.gather(*(one(i) for i in range(start, min(count, start + 50))))
    return idle


async def _flow(run: _Run) -> None:
    """Producers → exchange → queues → consumers, with a bounded backlog."""
    cfg = run.config
    res = run.result
    await run.setup_admin()
    exchange, queues, keys, fan = await _topology(run)
    if cfg.scenario == "manyconn" and run.monitor.pid:
        await asyncio.sleep(0.3)  # let the broker settle after the previous run
        before = rss_kb(run.monitor.pid)
        idle = await _open_idle(run, cfg.connections)
        await asyncio.sleep(0.2)  # let the broker finish setting them up before measuring
        after = rss_kb(run.monitor.pid)
        if before is not None and after is not None and idle:
            res.idle_conn_kb = round((after - before) / len(idle), 1)
    elif cfg.scenario == "manyconn":
        await _open_idle(run, cfg.connections)
    nconsumers = max(1, cfg.consumers)
    for i in range(nconsumers):
        conn = await run.open(f"consumer{i}")
        await conn.open_channel(1)
        await conn.qos(1, cfg.prefetch)
        mine = queues[i::nconsumers] if len(queues) >= nconsumers else [queues[i % len(queues)]]
        ack_every = cfg.ack_every
        # A stream consumer attaches at "next": it reads what is published from now on.
        arguments: dict[str, FieldValue] = {"x-stream-offset": "next"} if run.stream else {}
        await pipelined(
            conn.consume(1, q, f"c{i}.{j}", ack_every=ack_every, arguments=arguments)
            for j, q in enumerate(mine)
        )
        run.consumers.append(conn)
    producers = []
    for i in range(max(1, cfg.producers)):
        conn = await run.open(f"producer{i}")
        await conn.open_channel(1)
        producers.append((conn, PublishTemplate(1, exchange, keys, cfg.size, conn.frame_max)))
    run.progress.start()
    run.monitor.start()
    cpu0 = time.process_time()
    t0 = time.monotonic()
    deadline = t0 + cfg.duration
    if cfg.scenario in LATENCY:
        rate = cfg.rate / len(producers)
        await asyncio.gather(
            *(run.produce_at_rate(conn, tpl, rate, deadline) for conn, tpl in producers)
        )
    else:
        await asyncio.gather(
            *(
                run.produce(conn, tpl, limit, deadline, fan, None)
                for (conn, tpl), limit in zip(producers, run.split(cfg.count), strict=True)
            )
        )
    t_published = time.monotonic()
    drain_deadline = t_published + cfg.drain_timeout
    expected = run.published * fan
    while run.delivered() < expected and time.monotonic() < drain_deadline:
        run.check()
        await run.wait_progress()
    t_end = time.monotonic()
    run.monitor.stop()
    run.progress.stop()
    delivered = run.delivered()
    elapsed = t_end - t0
    res.published = run.published
    res.delivered = delivered
    res.seconds = round(elapsed, 3)
    res.msg_per_s = round(delivered / fan / elapsed, 1)
    res.deliver_per_s = round(delivered / elapsed, 1)
    res.publish_per_s = round(run.published / max(t_published - t0, 1e-9), 1)
    merged = array.array("q")
    for conn in run.consumers:
        merged.extend(conn.receiver.latencies_ns)
    res.latency_ms = percentiles_ms(merged)
    res.client_cpu_pct = round(100 * (time.process_time() - cpu0) / elapsed, 1)
    _broker_cost(run, delivered)
    if delivered < expected:
        res.error = f"incomplete: {delivered} of {expected} deliveries within the drain timeout"


async def _manyclients(run: _Run) -> None:
    """--producers connections at a steady --rate in all, --consumers connections, over
    --queues queues, driven by --workers processes (see :mod:`amqplite.bench.manyclients`)."""
    cfg = run.config
    res = run.result
    await run.setup_admin()
    exchange, queues, keys, _ = await _topology(run)
    plan = Plan(
        url=run.url,
        prefix=run.prefix,
        exchange=exchange,
        queues=queues,
        keys=keys,
        producers=cfg.producers,
        consumers=cfg.consumers,
        workers=cfg.workers,
        rate=cfg.rate,
        size=cfg.size,
        prefetch=cfg.prefetch,
        ack_every=cfg.ack_every,
        duration=cfg.duration,
    )
    out = await run_manyclients(plan, cfg.drain_timeout, run.monitor.start)
    run.monitor.stop()
    res.published = out.published
    res.delivered = out.delivered
    res.seconds = round(out.seconds, 3)
    # Sustained rates: what was published and delivered while the producers ran.
    res.msg_per_s = res.deliver_per_s = round(out.delivered_in_duration / cfg.duration, 1)
    res.publish_per_s = round(out.published / cfg.duration, 1)
    res.latency_ms = percentiles_ms(out.latencies_ns)
    res.client_cpu_pct = round(100 * out.client_cpu_s / max(out.seconds, 1e-9), 1)
    _broker_cost(run, out.delivered)
    if out.error:
        res.error = out.error
    elif out.delivered < out.published:
        res.error = f"incomplete: {out.delivered} of {out.published} within the drain timeout"


async def _fill_stream(run: _Run, exchange: str, keys: list[str], total: int) -> float:
    """Publish ``total`` messages with confirms (window as configured); returns confirms/s."""
    cfg = run.config
    conn = await run.open("producer0")
    await conn.open_channel(1)
    tracker = await conn.confirm_select(1)
    run.trackers.append(tracker)
    template = PublishTemplate(1, exchange, keys, cfg.size, conn.frame_max)
    t0 = time.monotonic()
    # No --duration here: the fill is bounded by its count; a broker that stops confirming
    # still ends the run within the drain timeout of the last progress.
    await run.produce(conn, template, total, t0 + cfg.drain_timeout + total / 1000, 0, tracker)
    drain_deadline = time.monotonic() + cfg.drain_timeout
    while run.confirmed() < run.published and time.monotonic() < drain_deadline:
        run.check()
        await run.wait_progress()
    if run.confirmed() < total:
        raise BenchError(f"stream fill: {run.confirmed()} of {total} confirmed")
    return run.confirmed() / max(time.monotonic() - t0, 1e-9)


async def _stream_catchup(run: _Run) -> None:
    """Fill a stream, then read it all back from ``first`` with one consumer at --prefetch."""
    cfg = run.config
    res = run.result
    await run.setup_admin()
    exchange, (queue,), keys, _ = await _topology(run)
    total = cfg.count or CATCHUP_DEFAULT
    res.confirm_per_s = round(await _fill_stream(run, exchange, keys, total), 1)
    res.published = run.published
    res.confirmed = run.confirmed()
    consumer = await run.open("consumer0")
    consumer.receiver.record_latency = False  # the bodies' stamps are from the fill
    await consumer.open_channel(1)
    await consumer.qos(1, cfg.prefetch)
    run.consumers.append(consumer)
    run.progress.start()
    run.monitor.start()
    cpu0 = time.process_time()
    t0 = time.monotonic()
    await consumer.consume(
        1, queue, "catchup", ack_every=cfg.ack_every, arguments={"x-stream-offset": "first"}
    )
    deadline = t0 + cfg.drain_timeout
    while run.delivered() < total and time.monotonic() < deadline:
        run.check()
        await run.wait_progress()
    elapsed = time.monotonic() - t0
    run.monitor.stop()
    run.progress.stop()
    delivered = run.delivered()
    res.delivered = delivered
    res.seconds = round(elapsed, 3)
    res.msg_per_s = res.deliver_per_s = round(delivered / elapsed, 1)
    res.client_cpu_pct = round(100 * (time.process_time() - cpu0) / elapsed, 1)
    _broker_cost(run, delivered)
    if delivered < total:
        res.error = f"incomplete: read {delivered} of {total} within the drain timeout"


async def run_scenario(
    url: str,
    config: RunConfig,
    *,
    target: str = "A",
    broker_pid: int | None = None,
    progress: bool = False,
) -> RunResult:
    """Run one configuration against ``url``; never raises for broker or network errors."""
    if config.scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {config.scenario!r}")
    run = _Run(url, config, target, broker_pid, progress)
    try:
        if config.scenario == "stream-catchup":
            await _stream_catchup(run)
        elif config.scenario == "manyclients":
            await _manyclients(run)
        elif config.scenario in CONSUMING:
            await _flow(run)
        else:
            await _publish_only(run)
    except (OSError, BenchError, BenchProtocolError, TimeoutError) as exc:
        run.result.error = f"{type(exc).__name__}: {exc}"
    finally:
        run.progress.stop()
        run.monitor.stop()
        await run.cleanup()
    return run.result
