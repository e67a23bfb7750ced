"""Disk full: failed writes are nacked (never confirmed), a free-space floor blocks
publishers (consumers keep going), and a failed fsync stops the broker."""

from __future__ import annotations

import threading
from pathlib import Path

import pika
import pika.exceptions
import pytest
from durability_helpers import DiskSwitch, FailingSync
from server_helpers import connect, durable_broker, persistent

from amqplite.server.store_guard import DISK_ALARM_REASON


def test_a_failed_write_is_nacked_and_the_broker_keeps_serving(tmp_path: Path) -> None:
    disk = DiskSwitch()
    with durable_broker(tmp_path / "data", opener=disk) as running:
        conn = connect(running)
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("q", durable=True)
        ch.basic_publish("", "q", b"before", persistent())
        disk.full = True
        with pytest.raises(pika.exceptions.NackError):
            ch.basic_publish("", "q", b"while full", persistent())
        # Consumers keep going, and transient traffic still flows.
        method, _, body = ch.basic_get("q", auto_ack=True)
        assert method is not None and body == b"before"
        disk.full = False
        ch.basic_publish("", "q", b"after", persistent())
        assert ch.queue_declare("q", durable=True, passive=True).method.message_count == 1
        assert running.call(lambda: running.broker.store_write_errors) == 1
        conn.close()
    with durable_broker(tmp_path / "data") as running:
        conn = connect(running)
        ch = conn.channel()
        method, _, body = ch.basic_get("q", auto_ack=True)
        assert body == b"after" and ch.basic_get("q")[0] is None
        conn.close()


def test_free_space_floor_blocks_publishers_until_it_is_lowered(tmp_path: Path) -> None:
    with durable_broker(tmp_path / "data") as running:
        events: list[str] = []
        publisher = connect(running)
        publisher.add_on_connection_blocked_callback(
            lambda _conn, frame: events.append(frame.method.reason)
        )
        publisher.add_on_connection_unblocked_callback(lambda _conn, _f: events.append("unblocked"))
        pub = publisher.channel()
        pub.confirm_delivery()
        pub.queue_declare("q", durable=True)
        pub.basic_publish("", "q", b"one", persistent())
        guard = running.server.guard
        assert guard is not None
        running.call(guard.set_disk_free_limit, 1 << 62)  # far above any real free space
        while not events:
            publisher.process_data_events(time_limit=5)
        assert events == [DISK_ALARM_REASON]
        # Consumers keep going while publishers are blocked.
        consumer = connect(running)
        method, _, body = consumer.channel().basic_get("q", auto_ack=True)
        assert method is not None and body == b"one"
        consumer.close()
        running.call(guard.set_disk_free_limit, 0)
        while len(events) < 2:
            publisher.process_data_events(time_limit=5)
        assert events == [DISK_ALARM_REASON, "unblocked"]
        pub.basic_publish("", "q", b"two", persistent())
        assert pub.queue_declare("q", durable=True, passive=True).method.message_count == 1
        publisher.close()


def test_a_failed_fsync_stops_the_broker_without_confirming(tmp_path: Path) -> None:
    sync = FailingSync()
    with durable_broker(tmp_path / "data", opener=sync) as running:
        conn = connect(running)
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("q", durable=True)
        sync.broken = True
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
            ch.basic_publish("", "q", b"never confirmed", persistent())
        assert closed.value.reply_code == 541
        guard = running.server.guard
        assert guard is not None and guard.failure is not None
        # The server stopped: new connections are refused.
        stopped = threading.Event()
        for _ in range(50):
            try:
                connect(running, connection_attempts=1, socket_timeout=1).close()
            except pika.exceptions.AMQPConnectionError:
                stopped.set()
                break
        assert stopped.is_set()


def test_a_stream_publish_on_a_full_disk_waits_for_space_and_is_never_confirmed_early(
    tmp_path: Path,
) -> None:
    disk = DiskSwitch()
    stream = {"x-queue-type": "stream"}
    with durable_broker(tmp_path / "data", opener=disk) as running:
        conn = connect(running)
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("s", durable=True, arguments=stream)
        ch.basic_publish("", "s", b"before", persistent())
        disk.full = True
        outcome: list[object] = []

        def publish_while_full() -> None:
            try:
                ch.basic_publish("", "s", b"while full", persistent())
                outcome.append("confirmed")
            except Exception as exc:  # a nack would also be fine: anything but a confirm
                outcome.append(exc)

        publisher = threading.Thread(target=publish_while_full)
        publisher.start()
        # The chunk's write failed after the batch and again in the batch's sync, and the
        # periodic sync (up to 1 s later) retried it and failed once more: a confirm sent
        # after the first failures would have arrived by now.
        assert disk.wait_refusals(3)
        assert publisher.is_alive() and outcome == [], outcome
        disk.full = False  # the next periodic sync writes the chunk; then the confirm comes
        publisher.join(timeout=30)
        assert outcome == ["confirmed"]
        ch.basic_publish("", "s", b"after", persistent())
        conn.close()
    with durable_broker(tmp_path / "data") as running:
        conn = connect(running)
        ch = conn.channel()
        ch.basic_qos(prefetch_count=10)
        got = []
        for method, props, body in ch.consume(
            "s", arguments={"x-stream-offset": "first"}, inactivity_timeout=10
        ):
            assert method is not None, got
            got.append((props.headers["x-stream-offset"], body))
            ch.basic_ack(method.delivery_tag)
            if len(got) == 3:
                break
        assert got == [(0, b"before"), (1, b"while full"), (2, b"after")]
        conn.close()
