"""Scale checks for stream queues through a running broker, run by hand (not collected by pytest).

Issue 11's scale items, measured on a real server on a real data directory::

    # a data directory holding stream 'big' with N messages of S bytes (written straight
    # into the stream's segment files, chunks of 1,000, as the broker writes them)
    python tests/streams/bench_stream_broker.py build /tmp/sb --messages 5000000 --size 1024
    # start a broker on it (in a child process), then: restart time, idle RSS, seeks,
    # a catch-up read of the whole stream from 'first' at prefetch 1000 while
    # `amqplite bench stream-latency` publishes and consumes 1,000 msg/s on another stream,
    # RSS during the read, and the longest event-loop block (a trio instrument in the broker
    # timing every task step)
    python tests/streams/bench_stream_broker.py measure /tmp/sb --messages 5000000
    # restart and seeks only (no catch-up read): --no-read

``serve DIR PORT`` is the child: it opens the store, recovers, serves, prints ``ready`` with
the time that took, and on SIGTERM prints the longest task step and the step histogram.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

T0 = 1_700_000_000.0
QUEUE = "big"
#: How long the 1,000 msg/s latency probe runs beside the catch-up read (from its start).
PROBE_SECONDS = 20


def _latency_figures(output: str) -> dict[str, Any]:
    """p50/p99/p999/max latency (ms) from `amqplite bench --json` output."""
    try:
        runs = json.loads(output)
    except ValueError:
        return {"raw": output[-500:]}
    found = runs["results"][0]
    return {k: found[k] for k in ("latency_ms", "msg_per_s", "seconds", "error")}


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def build(directory: str, n: int, size: int) -> None:
    from amqplite.app import build_broker
    from amqplite.message import BasicProperties, Message
    from amqplite.protocol.properties import StreamWire
    from amqplite.store import FileStore
    from amqplite.store.streamfile import FileStreamLog, stream_dir

    shutil.rmtree(directory, ignore_errors=True)
    store = FileStore.open(directory)
    broker = build_broker(None, store=store)
    broker.vhosts["/"].declare_queue(QUEUE, durable=True, arguments={"x-queue-type": "stream"})
    store.close()
    log = FileStreamLog(stream_dir(directory, "/", QUEUE))
    props = BasicProperties()
    body = os.urandom(size)
    started = time.perf_counter()
    for base in range(0, n, 1000):
        count = min(1000, n - base)
        entries = []
        for i in range(count):
            offset = base + i
            template = Message("", QUEUE, props, body, b"\x00\x00")
            raw = StreamWire.with_offset(template, offset)
            entries.append((T0 + offset / 1000.0, Message("", QUEUE, props, body, raw)))
        log.append(entries)
    log.close()
    print(
        f"built {n} messages of {size} B in {time.perf_counter() - started:.1f} s: "
        f"{log.segment_count} segments, {log.size_bytes / 1e9:.2f} GB"
    )


def serve(directory: str, port: int) -> None:
    import trio

    from amqplite.app import build_broker, start_amqp
    from amqplite.server import AmqpServer
    from amqplite.settings import ServerSettings
    from amqplite.store import open_store

    class StepTimer(trio.abc.Instrument):
        """The longest time one task ran without yielding (an event-loop block), in CPU
        time of the event-loop thread (robust to a loaded machine, where the OS may
        deschedule the process mid-step) and in wall-clock time."""

        def __init__(self) -> None:
            self.start = time.perf_counter()
            self.start_cpu = time.thread_time()
            self.longest = self.longest_wall = 0.0
            self.where = ""
            self.over_ms = {1: 0, 5: 0, 10: 0, 50: 0}
            self.steps = 0

        def before_task_step(self, task: Any) -> None:
            self.start = time.perf_counter()
            self.start_cpu = time.thread_time()

        def after_task_step(self, task: Any) -> None:
            took = time.thread_time() - self.start_cpu
            self.longest_wall = max(self.longest_wall, time.perf_counter() - self.start)
            self.steps += 1
            for bound in self.over_ms:
                if took * 1000 > bound:
                    self.over_ms[bound] += 1
            if took > self.longest:
                self.longest, self.where = took, task.name

    started = time.perf_counter()
    store = open_store(directory)
    broker = build_broker(None, store=store)
    timer = StepTimer()

    async def main() -> None:
        server = AmqpServer(broker, ServerSettings(port=port, http_port=None))
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                await start_amqp(nursery, server, on_stop=nursery.cancel_scope.cancel)
                ready = time.perf_counter() - started
                print(json.dumps({"ready_s": round(ready, 3)}), flush=True)
                trio.lowlevel.add_instrument(timer)
                async for _ in signals:
                    break
                trio.lowlevel.remove_instrument(timer)
                await server.shutdown()
                nursery.cancel_scope.cancel()

    trio.run(main)
    store.close()
    print(
        json.dumps(
            {
                "longest_step_cpu_ms": round(timer.longest * 1000, 2),
                "longest_step_wall_ms": round(timer.longest_wall * 1000, 2),
                "longest_step_task": timer.where,
                "steps": timer.steps,
                "steps_over_cpu_ms": timer.over_ms,
            }
        ),
        flush=True,
    )


async def _first_delivery(url: str, arguments: dict[str, Any]) -> float:
    """Milliseconds from basic.consume to the first delivery."""
    from amqplite.bench.client import connect

    progress = asyncio.Event()
    conn = await connect(url, progress=progress)
    conn.receiver.record_latency = False  # the bodies carry no send time
    await conn.open_channel(1)
    await conn.qos(1, 100)
    started = time.perf_counter()
    await conn.consume(1, QUEUE, "seek", ack_every=1, arguments=arguments)
    while conn.receiver.delivered == 0:
        conn.check()
        progress.clear()
        await asyncio.wait_for(progress.wait(), 30)
    took = (time.perf_counter() - started) * 1000
    await conn.close()
    return round(took, 2)


async def _catch_up(url: str, total: int, pid: int) -> dict[str, Any]:
    from amqplite.bench.client import connect

    progress = asyncio.Event()
    conn = await connect(url, progress=progress)
    conn.receiver.record_latency = False
    await conn.open_channel(1)
    await conn.qos(1, 1000)
    started = time.perf_counter()
    peak = 0.0
    await conn.consume(1, QUEUE, "catchup", ack_every=1, arguments={"x-stream-offset": "first"})
    while conn.receiver.delivered < total:
        conn.check()
        progress.clear()
        await asyncio.wait_for(progress.wait(), 30)
        peak = max(peak, rss_mb(pid))
    took = time.perf_counter() - started
    await conn.close()
    return {
        "catchup_msgs": conn.receiver.delivered,
        "catchup_s": round(took, 1),
        "catchup_msg_per_s": round(conn.receiver.delivered / took),
        "rss_peak_during_catchup_mb": round(peak, 1),
    }


def measure(directory: str, n: int, port: int, *, read: bool = True) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{port}/"
    launched = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, __file__, "serve", directory, "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        _measure(child, url, n, launched, read)
    finally:
        if child.poll() is None:
            child.kill()


def _measure(child: subprocess.Popen[str], url: str, n: int, launched: float, read: bool) -> None:
    assert child.stdout is not None
    out: dict[str, Any] = json.loads(child.stdout.readline())
    out["process_start_to_ready_s"] = round(time.perf_counter() - launched, 3)
    time.sleep(1)  # let the allocator settle before the idle figure
    out["rss_idle_mb"] = round(rss_mb(child.pid), 1)
    print(out, file=sys.stderr, flush=True)
    if n:
        _seeks(out, url, n)
    _read_all(out, url, n if read else 0, child)


def _seeks(out: dict[str, Any], url: str, n: int) -> None:
    out["seek_offset_middle_ms"] = asyncio.run(_first_delivery(url, {"x-stream-offset": n // 2}))
    middle = datetime.datetime.fromtimestamp(T0 + n / 2000.0 + 0.0005, datetime.UTC)
    out["seek_time_middle_ms"] = asyncio.run(
        _first_delivery(url, {"x-stream-offset": middle.isoformat(timespec="milliseconds")})
    )
    out["seek_last_ms"] = asyncio.run(_first_delivery(url, {"x-stream-offset": "last"}))


def _read_all(out: dict[str, Any], url: str, n: int, child: subprocess.Popen[str]) -> None:
    if n:
        latency = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "amqplite",
                "bench",
                "stream-latency",
                "--url",
                url,
                "--duration",
                str(PROBE_SECONDS),
                "--json",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        print(out, file=sys.stderr, flush=True)
        out.update(asyncio.run(_catch_up(url, n, child.pid)))
        print(out, file=sys.stderr, flush=True)
        out["latency_probe"] = _latency_figures(latency.communicate(timeout=120)[0])
    out["rss_after_mb"] = round(rss_mb(child.pid), 1)
    child.send_signal(signal.SIGTERM)
    rest = child.communicate(timeout=60)[0]
    for line in rest.splitlines():
        if line.startswith("{"):
            out.update(json.loads(line))
    print(json.dumps(out, indent=1), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("build", "serve", "measure"))
    parser.add_argument("directory")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--port", type=int, default=5795)
    parser.add_argument(
        "--no-read", action="store_true", help="measure: skip the catch-up read of everything"
    )
    args = parser.parse_args()
    if args.command == "build":
        build(args.directory, args.messages, args.size)
    elif args.command == "serve":
        serve(args.directory, args.port)
    else:
        measure(args.directory, args.messages, args.port, read=not args.no_read)


if __name__ == "__main__":
    main()
