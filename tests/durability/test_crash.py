"""Crash test: a broker subprocess killed with SIGKILL at random moments never loses a
confirmed message.

Publishers (confirms, unique ids, persistent, durable queue) and consumers (manual acks)
run against ``python -m amqplite serve`` on a temp data directory; the broker is killed
with ``kill -9`` at a random moment, restarted, and so on for several cycles; then
everything left is drained.  Every id is classified:

* lost -- confirmed, never acked by a consumer, and not in the final drain (this includes
  messages delivered but unacked when the broker died): must be 0;
* unexpected -- delivered but never published: must be 0;
* nacked or unconfirmed -- may or may not appear;
* delivered more than once -- every delivery after the first carries ``redelivered``.

The short version runs in the default suite (a few cycles, ~10 s); the long one is
``@pytest.mark.long`` (``make test-long``).
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pika
import pika.exceptions
import pytest

QUEUE = "crash-test"
READY = re.compile(r"amqplite ready: amqp://127\.0\.0\.1:(\d+)/")
# Everything pika raises when the broker vanishes under it.
GONE = (pika.exceptions.AMQPError, OSError, AssertionError, ValueError)


class BrokerProcess:
    """``python -m amqplite serve`` on a data directory; stderr read by a thread."""

    def __init__(self, data_dir: Path, workdir: Path) -> None:
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.port = 0
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "amqplite",
                "serve",
                "--no-http",  # AMQP only: 15672 may be taken (RabbitMQ) and is not needed
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--data-dir",
                str(data_dir),
            ],
            cwd=workdir,  # no config/amqplite.yaml there: built-in defaults
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            found = READY.search(line)
            if found:
                self.port = int(found.group(1))
                self._ready.set()
        self._ready.set()  # exited: let wait_ready see it

    def wait_ready(self, timeout: float = 20.0) -> int:
        if not self._ready.wait(timeout) or not self.port:
            self.kill()
            raise AssertionError("broker did not start:\n" + "".join(self.lines))
        return self.port

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F?heartbeat=0"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=15)
        self._reader.join(timeout=10)
        return code


@contextmanager
def broker(data_dir: Path, workdir: Path) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(data_dir, workdir)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.kill()


class Ledger:
    """What the clients did, shared by all their threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.published: set[str] = set()
        self.confirmed: set[str] = set()
        self.nacked: set[str] = set()
        self.acked: set[str] = set()
        #: id -> redelivered flag of each delivery, in order
        self.deliveries: dict[str, list[bool]] = {}

    def delivered(self, mid: str, redelivered: bool) -> None:
        with self.lock:
            self.deliveries.setdefault(mid, []).append(redelivered)


def publisher(
    url: str, ledger: Ledger, prefix: str, stop: threading.Event, queue: str = QUEUE
) -> None:
    try:
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        ch.confirm_delivery()
        n = 0
        while not stop.is_set():
            mid = f"{prefix}-{n}"
            n += 1
            with ledger.lock:
                ledger.published.add(mid)
            try:
                ch.basic_publish(
                    "", queue, mid.encode(), pika.BasicProperties(delivery_mode=2, message_id=mid)
                )
            except pika.exceptions.NackError:
                with ledger.lock:
                    ledger.nacked.add(mid)
                continue
            with ledger.lock:
                ledger.confirmed.add(mid)
    except GONE:
        return


def consumer(url: str, ledger: Ledger, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    try:
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        ch.basic_qos(prefetch_count=rng.choice([1, 10, 50]))
        held: list[tuple[int, str]] = []
        for method, props, body in ch.consume(QUEUE, inactivity_timeout=0.05):
            if stop.is_set():
                break
            if method is None:
                continue
            mid = body.decode()
            assert props.message_id == mid
            ledger.delivered(mid, bool(method.redelivered))
            held.append((method.delivery_tag, mid))
            # Ack some at once, some in batches (multiple=True), leave some unacked.
            if rng.random() < 0.7 or len(held) > 5:
                tag = held[-1][0]
                ch.basic_ack(tag, multiple=len(held) > 1)
                with ledger.lock:
                    ledger.acked.update(m for _, m in held)
                held.clear()
    except GONE:
        return


def run_cycles(tmp: Path, cycles: int, seed: int) -> Ledger:
    rng = random.Random(seed)
    data = tmp / "data"
    ledger = Ledger()
    for cycle in range(cycles):
        with broker(data, tmp) as proc:
            conn = pika.BlockingConnection(pika.URLParameters(proc.url))
            conn.channel().queue_declare(QUEUE, durable=True)
            conn.close()
            stop = threading.Event()
            threads = [
                threading.Thread(target=publisher, args=(proc.url, ledger, f"c{cycle}p{i}", stop))
                for i in range(2)
            ] + [
                threading.Thread(target=consumer, args=(proc.url, ledger, stop, rng.random()))
                for _ in range(2)
            ]
            for thread in threads:
                thread.start()
            # The kill comes at a random moment, whatever the clients are doing.
            threading.Event().wait(rng.uniform(0.2, 0.8))
            proc.kill()
            stop.set()
            for thread in threads:
                thread.join(timeout=15)
                assert not thread.is_alive()
    # Drain everything left, then stop gracefully.
    with broker(data, tmp) as proc:
        conn = pika.BlockingConnection(pika.URLParameters(proc.url))
        ch = conn.channel()
        ch.queue_declare(QUEUE, durable=True)
        while True:
            method, _props, body = ch.basic_get(QUEUE)
            if method is None:
                break
            mid = body.decode()
            ledger.delivered(mid, bool(method.redelivered))
            ch.basic_ack(method.delivery_tag)
            ledger.acked.add(mid)
        conn.close()
        assert proc.stop() == 0
    return ledger


def check(ledger: Ledger) -> None:
    twice = sum(1 for flags in ledger.deliveries.values() if len(flags) > 1)
    print(
        f"published {len(ledger.published)}, confirmed {len(ledger.confirmed)}, "
        f"nacked {len(ledger.nacked)}, delivered {len(ledger.deliveries)}, "
        f"delivered more than once {twice}, acked {len(ledger.acked)}"
    )
    delivered = set(ledger.deliveries)
    # The final drain acks all it gets, so "never acked" covers both "absent from the
    # drain" and "delivered unacked when the broker died, never seen again".
    lost = ledger.confirmed - ledger.acked
    unexpected = delivered - ledger.published
    unflagged = {m for m, flags in ledger.deliveries.items() if not all(flags[1:])}
    assert ledger.confirmed, "nothing was confirmed: the test exercised nothing"
    assert not lost, f"lost {len(lost)} confirmed message(s): {sorted(lost)[:10]}"
    assert not unexpected, f"unexpected message(s): {sorted(unexpected)[:10]}"
    assert not unflagged, f"redelivered without the flag: {sorted(unflagged)[:10]}"
    assert not ledger.nacked & ledger.confirmed


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    shm = Path("/dev/shm")
    # tmpfs keeps the fsyncs cheap; kill -9 leaves the page cache intact either way.
    if shm.is_dir() and os.access(shm, os.W_OK):
        import tempfile

        return Path(tempfile.mkdtemp(prefix="amqplite-crash-", dir=shm))
    return tmp_path


@pytest.mark.timeout(90)
def test_kill_9_never_loses_a_confirmed_message(scratch: Path) -> None:
    try:
        check(run_cycles(scratch, cycles=4, seed=20261122))
    finally:
        with suppress(OSError):
            import shutil

            shutil.rmtree(scratch)


@pytest.mark.long
@pytest.mark.timeout(900)
def test_kill_9_never_loses_a_confirmed_message_over_many_cycles(scratch: Path) -> None:
    try:
        check(run_cycles(scratch, cycles=30, seed=random.randrange(1 << 30)))
    finally:
        with suppress(OSError):
            import shutil

            shutil.rmtree(scratch)


STREAM = "crash-stream"


def stream_reader(url: str, stop: threading.Event) -> None:
    """A stream consumer replaying from the start while the broker may die under it."""
    try:
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        ch.basic_qos(prefetch_count=100)
        for method, _props, _body in ch.consume(
            STREAM, arguments={"x-stream-offset": "first"}, inactivity_timeout=0.05
        ):
            if stop.is_set():
                break
            if method is not None:
                ch.basic_ack(method.delivery_tag)
    except GONE:
        return


def read_stream(url: str) -> list[tuple[int, str]]:
    """Every (offset, id) in the stream, from the first offset to the end."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ok = ch.queue_declare(STREAM, durable=True, arguments={"x-queue-type": "stream"})
    total = ok.method.message_count
    ch.basic_qos(prefetch_count=1000)
    out: list[tuple[int, str]] = []
    for method, props, body in ch.consume(
        STREAM, arguments={"x-stream-offset": "first"}, inactivity_timeout=5
    ):
        assert method is not None, f"stream read stalled after {len(out)} of {total}"
        out.append((props.headers["x-stream-offset"], body.decode()))
        ch.basic_ack(method.delivery_tag)
        if len(out) == total:
            break
    conn.close()
    return out


@pytest.mark.timeout(90)
def test_kill_9_never_loses_a_confirmed_stream_message_and_offsets_stay_in_order(
    scratch: Path,
) -> None:
    rng = random.Random(20261207)
    data = scratch / "data"
    ledger = Ledger()
    try:
        for cycle in range(4):
            with broker(data, scratch) as proc:
                conn = pika.BlockingConnection(pika.URLParameters(proc.url))
                conn.channel().queue_declare(
                    STREAM, durable=True, arguments={"x-queue-type": "stream"}
                )
                conn.close()
                stop = threading.Event()
                threads = [
                    threading.Thread(
                        target=publisher, args=(proc.url, ledger, f"c{cycle}p{i}", stop, STREAM)
                    )
                    for i in range(2)
                ] + [threading.Thread(target=stream_reader, args=(proc.url, stop))]
                for thread in threads:
                    thread.start()
                threading.Event().wait(rng.uniform(0.2, 0.8))
                proc.kill()
                stop.set()
                for thread in threads:
                    thread.join(timeout=15)
                    assert not thread.is_alive()
        with broker(data, scratch) as proc:
            records = read_stream(proc.url)
            assert proc.stop() == 0
    finally:
        with suppress(OSError):
            import shutil

            shutil.rmtree(scratch)
    found = [mid for _, mid in records]
    print(f"stream: confirmed {len(ledger.confirmed)}, kept {len(found)}")
    assert ledger.confirmed, "nothing was confirmed: the test exercised nothing"
    assert [offset for offset, _ in records] == list(range(len(records)))
    assert len(set(found)) == len(found), "a message was stored twice"
    assert not ledger.confirmed - set(found), "a confirmed stream message was lost"
    assert not set(found) - ledger.published
    # Each publisher's messages are kept in the order it published them.
    for prefix in {mid.rsplit("-", 1)[0] for mid in found}:
        numbers = [int(mid.rsplit("-", 1)[1]) for mid in found if mid.startswith(prefix + "-")]
        assert numbers == sorted(numbers)


def test_two_brokers_refuse_one_data_directory(tmp_path: Path) -> None:
    with broker(tmp_path / "data", tmp_path):
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "amqplite",
                "serve",
                "--no-http",
                "--port",
                "0",
                "--data-dir",
                str(tmp_path / "data"),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert second.returncode != 0
    errors = [line for line in second.stderr.splitlines() if "in use by another broker" in line]
    assert len(errors) == 1, second.stderr
