"""The ``manyclients`` scenario's load: many producer and consumer connections, spread over
worker processes so the load generator is never what limits the broker.

Layer: ``amqplite/bench`` (stdlib only).  The parent (:func:`run_manyclients`, called by
:mod:`amqplite.bench.scenarios` once it has declared the queues) starts ``workers``
processes.  Each opens its share of the consumers, then of the producers; once every
worker is ready the parent releases them all at once.  Producer ``i`` publishes to queue
``i % queues`` at a steady ``rate / producers`` msg/s: one ticker per worker writes, every
millisecond or so, what each of its producers is due, each body stamped with the time it
is written (``time.monotonic_ns``, which all processes on a machine share), so latency is
publish -> deliver.  Consumer ``j`` consumes queue ``j % queues``.

The workers publish counts to shared memory as they go; the parent stops them when every
published message has been delivered (or at the drain timeout) and collects their
latency samples.  Each worker is one asyncio loop: at 40k msg/s over 400 connections one
Python process would spend most of a core on wake-ups and small writes.
"""

from __future__ import annotations

import array
import asyncio
import multiprocessing
import multiprocessing.connection
import multiprocessing.sharedctypes
import os
import time
from dataclasses import dataclass
from typing import Any

from amqplite.bench.client import BenchConnection, BenchError, connect, pipelined
from amqplite.bench.wire import BenchProtocolError, PublishTemplate

#: How often a worker's ticker writes what its producers are due (seconds).
TICK = 0.001
#: Most samples a worker sends back (evenly thinned): enough for p99.9.
MAX_SAMPLES = 200_000


@dataclass(frozen=True, slots=True)
class Plan:
    """What every worker needs to know (picklable: it crosses to the worker process)."""

    url: str
    prefix: str
    exchange: str
    queues: list[str]
    keys: list[str]
    producers: int
    consumers: int
    workers: int
    rate: float
    size: int
    prefetch: int
    ack_every: int
    duration: float


@dataclass(slots=True)
class Outcome:
    """What the parent measured across all workers."""

    published: int
    delivered: int
    #: Delivered while the producers ran (``plan.duration`` seconds): the sustained rate.
    delivered_in_duration: int
    seconds: float
    latencies_ns: array.array[int]
    client_cpu_s: float
    error: str | None


async def _open_worker(
    plan: Plan, index: int
) -> tuple[list[BenchConnection], list[tuple[BenchConnection, PublishTemplate]]]:
    """This worker's consumers (subscribed) and producers (channel open), in that order."""
    consumers: list[BenchConnection] = []
    producers: list[tuple[BenchConnection, PublishTemplate]] = []

    async def consumer(j: int) -> None:
        conn = await connect(plan.url, f"{plan.prefix}.consumer{j}")
        consumers.append(conn)
        await conn.open_channel(1)
        await conn.qos(1, plan.prefetch)
        await conn.consume(1, plan.queues[j % len(plan.queues)], f"c{j}", ack_every=plan.ack_every)

    async def producer(i: int) -> None:
        conn = await connect(plan.url, f"{plan.prefix}.producer{i}")
        await conn.open_channel(1)
        key = plan.keys[i % len(plan.keys)]
        producers.append(
            (conn, PublishTemplate(1, plan.exchange, [key], plan.size, conn.frame_max))
        )

    await pipelined((consumer(j) for j in range(index, plan.consumers, plan.workers)), window=50)
    await pipelined((producer(i) for i in range(index, plan.producers, plan.workers)), window=50)
    return consumers, producers


async def _produce(
    producers: list[tuple[BenchConnection, PublishTemplate]],
    per_producer: float,
    start: float,
    deadline: float,
    counters: Any,
    slot: int,
) -> int:
    """Every producer at ``per_producer`` msg/s from ``start`` until ``deadline``."""
    sent = 0
    due_each = 0
    while True:
        now = time.monotonic()
        if now >= deadline:
            return sent
        target = int(per_producer * (now - start)) + 1
        if target > due_each:
            count = target - due_each
            stamp = time.monotonic_ns()
            for conn, template in producers:
                conn.check()
                # A producer the broker no longer reads (TCP backpressure) skips its turn
                # rather than queueing without bound here: what it publishes is what the
                # broker took, and latency is not measured from a client-side queue.
                if conn.writable.is_set():
                    conn.write(template.batch(count, stamp))
                    sent += count
            due_each = target
            counters[slot] = sent
        await asyncio.sleep(min(TICK, max(0.0, start + due_each / per_producer - now)))


async def _worker_main(
    plan: Plan,
    index: int,
    counters: Any,
    ready: Any,
    go: Any,
    stop: Any,
    pipe: multiprocessing.connection.Connection,
) -> None:
    consumers, producers = await _open_worker(plan, index)
    loop = asyncio.get_running_loop()
    ready.release()
    await loop.run_in_executor(None, go.wait)
    cpu0 = time.process_time()
    start = time.monotonic()
    per_producer = plan.rate / plan.producers

    async def count_deliveries() -> None:
        while not stop.is_set():
            counters[2 * index + 1] = sum(c.receiver.delivered for c in consumers)
            for conn in consumers:
                conn.check()
            await asyncio.sleep(0.01)

    counting = loop.create_task(count_deliveries())
    await _produce(producers, per_producer, start, start + plan.duration, counters, 2 * index)
    await loop.run_in_executor(None, stop.wait)
    counting.cancel()
    counters[2 * index + 1] = sum(c.receiver.delivered for c in consumers)
    cpu = time.process_time() - cpu0
    samples = array.array("q")
    for conn in consumers:
        samples.extend(conn.receiver.latencies_ns)
    if len(samples) > MAX_SAMPLES:
        step = len(samples) / MAX_SAMPLES
        samples = array.array("q", (samples[int(k * step)] for k in range(MAX_SAMPLES)))
    pipe.send((cpu, samples.tobytes(), None))
    for conn in (*consumers, *(c for c, _ in producers)):
        await conn.close(timeout=2)


def _worker(
    plan: Plan,
    index: int,
    counters: Any,
    ready: Any,
    go: Any,
    stop: Any,
    pipe: multiprocessing.connection.Connection,
) -> None:
    """A worker process: its connections, the run, then its CPU time and latency samples."""
    try:
        asyncio.run(_worker_main(plan, index, counters, ready, go, stop, pipe))
    except (OSError, BenchError, BenchProtocolError, TimeoutError) as exc:
        ready.release()  # never leave the parent waiting for a worker that failed
        pipe.send((0.0, b"", f"worker {index}: {type(exc).__name__}: {exc}"))


async def run_manyclients(plan: Plan, drain_timeout: float, on_start: Any) -> Outcome:
    """Run the workers; ``on_start()`` is called when they are released (the measured phase)."""
    ctx = multiprocessing.get_context("spawn")
    counters = ctx.Array("q", 2 * plan.workers, lock=False)
    ready = ctx.Semaphore(0)
    go, stop = ctx.Event(), ctx.Event()
    pipes = []
    processes = []
    for index in range(plan.workers):
        parent_end, child_end = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=_worker,
            args=(plan, index, counters, ready, go, stop, child_end),
            daemon=True,
        )
        process.start()
        child_end.close()
        pipes.append(parent_end)
        processes.append(process)
    loop = asyncio.get_running_loop()
    try:
        for _ in processes:
            await loop.run_in_executor(None, ready.acquire)
        on_start()
        t0 = time.monotonic()
        go.set()
        await asyncio.sleep(plan.duration)
        in_duration = sum(counters[2 * w + 1] for w in range(plan.workers))
        deadline = time.monotonic() + drain_timeout
        while time.monotonic() < deadline and any(p.is_alive() for p in processes):
            published = sum(counters[2 * w] for w in range(plan.workers))
            delivered = sum(counters[2 * w + 1] for w in range(plan.workers))
            if delivered >= published:
                break
            await asyncio.sleep(0.01)
        seconds = time.monotonic() - t0
        published = sum(counters[2 * w] for w in range(plan.workers))
        delivered = sum(counters[2 * w + 1] for w in range(plan.workers))
    finally:
        stop.set()
        go.set()
    cpu = 0.0
    samples: array.array[int] = array.array("q")
    errors = []
    for pipe in pipes:
        if await loop.run_in_executor(None, pipe.poll, 30):
            worker_cpu, data, error = pipe.recv()
            cpu += worker_cpu
            samples.frombytes(data)
            if error:
                errors.append(error)
        else:
            errors.append("a worker did not report")
    for process in processes:
        await loop.run_in_executor(None, process.join, 10)
        if process.is_alive():
            process.kill()
    return Outcome(
        published=published,
        delivered=delivered,
        delivered_in_duration=in_duration,
        seconds=seconds,
        latencies_ns=samples,
        client_cpu_s=cpu,
        error="; ".join(errors) or None,
    )


def default_workers() -> int:
    """Worker processes when --workers is not given: one per core, at least 2, at most 8."""
    return max(2, min(8, os.cpu_count() or 2))
