"""Restarts through a real server and pika: what a client sees survive, and what does not."""

from __future__ import annotations

import time
from pathlib import Path

import pika
import pika.exceptions
import pytest
from server_helpers import connect, durable_broker, persistent

from amqplite.broker.passwords import hash_password
from amqplite.store import FileStore, StoreLockedError


def test_durable_topology_and_persistent_messages_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    headers = {"x-death": [{"count": 1, "reason": "expired", "queue": "wait"}], "n": 1}
    with durable_broker(data) as running:
        conn = connect(running)
        ch = conn.channel()
        ch.confirm_delivery()
        ch.exchange_declare("orders", "topic", durable=True)
        ch.exchange_declare("scratch", "fanout")
        ch.queue_declare("billing", durable=True)
        ch.queue_declare("temp")
        ch.queue_bind("billing", "orders", "order.*")
        ch.queue_bind("temp", "orders", "order.*")
        for i in range(5):
            ch.basic_publish(
                "orders",
                "order.new",
                b"order %d" % i,
                persistent(headers=headers, message_id=f"id-{i}", content_type="text/plain"),
            )
        ch.basic_publish("orders", "order.new", b"transient", pika.BasicProperties(delivery_mode=1))
        conn.close()
    with durable_broker(data) as running:
        conn = connect(running)
        ch = conn.channel()
        ch.exchange_declare("orders", "topic", durable=True, passive=True)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as missing:
            ch.queue_declare("temp", passive=True)
        assert missing.value.reply_code == 404
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            ch.exchange_declare("scratch", "fanout", passive=True)
        ch = conn.channel()
        got = []
        for _ in range(5):
            method, props, body = ch.basic_get("billing", auto_ack=True)
            assert method is not None
            got.append((body, props.message_id, props.headers, props.content_type))
        assert ch.basic_get("billing")[0] is None  # the transient one is gone
        assert got == [(b"order %d" % i, f"id-{i}", headers, "text/plain") for i in range(5)]
        # The binding survived: a new publish is routed.
        ch.basic_publish("orders", "order.paid", b"after", persistent())
        assert ch.queue_declare("billing", durable=True, passive=True).method.message_count == 1
        conn.close()


def test_acked_messages_stay_gone_and_unacked_ones_come_back_redelivered(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with durable_broker(data) as running:
        conn = connect(running)
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("jobs", durable=True)
        for i in range(4):
            ch.basic_publish("", "jobs", b"job %d" % i, persistent())
        tags = []
        for _ in range(4):
            method, _, _ = ch.basic_get("jobs")
            assert method is not None
            tags.append(method.delivery_tag)
        ch.basic_ack(tags[0])
        ch.basic_ack(tags[2])
        # Still holding job 1 and job 3 unacked when the broker goes down.
        ch.queue_declare("jobs", durable=True, passive=True)  # a round trip: acks handled
    with durable_broker(data) as running:
        conn = connect(running)
        ch = conn.channel()
        got = []
        for method, _, body in ch.consume("jobs", inactivity_timeout=2):
            assert method is not None, "timed out"
            got.append((body, method.redelivered))
            ch.basic_ack(method.delivery_tag)
            if len(got) == 2:
                break
        assert got == [(b"job 1", True), (b"job 3", True)]
        conn.close()


def test_users_and_permissions_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with durable_broker(data) as running:

        def add_user() -> None:
            users = running.broker.users
            users.add_user("carol", hash_password("s3cret"), ())
            users.set_permissions("carol", "/", "", "^amq\\.default$|^$", "^inbox$")

        running.call(add_user)
    with durable_broker(data) as running:
        url = running.url.replace("guest:guest", "carol:s3cret")
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            ch.queue_declare("mine", durable=True)  # no configure permission
        assert refused.value.reply_code == 403
        conn.close()


def test_a_second_broker_cannot_open_the_same_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with durable_broker(data), pytest.raises(StoreLockedError, match="in use by another broker"):
        FileStore.open(data)


def test_ttl_and_max_length_behave_the_same_after_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with durable_broker(data) as running:
        conn = connect(running)
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("dead", durable=True)
        ch.queue_declare(
            "short",
            durable=True,
            arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"},
        )
        ch.queue_declare("capped", durable=True, arguments={"x-max-length": 2})
        ch.basic_publish("", "short", b"expires while down", persistent(expiration="100"))
        ch.basic_publish("", "short", b"lives", persistent(expiration="600000"))
        for i in range(3):
            ch.basic_publish("", "capped", b"m%d" % i, persistent())
        conn.close()
    # The TTL runs from the original enqueue time, downtime included: the broker comes
    # back one (simulated) second later, well past the 100 ms TTL.
    with durable_broker(data, clock=lambda: time.time() + 1.0) as running:
        conn = connect(running)
        ch = conn.channel()
        ch.confirm_delivery()
        _, _, body = ch.basic_get("short", auto_ack=True)
        assert body == b"lives" and ch.basic_get("short")[0] is None
        _, props, body = ch.basic_get("dead", auto_ack=True)
        assert body == b"expires while down"
        assert props.headers["x-death"][0]["reason"] == "expired"
        ch.basic_publish("", "capped", b"m3", persistent())
        bodies = [ch.basic_get("capped", auto_ack=True)[2] for _ in range(2)]
        assert bodies == [b"m2", b"m3"] and ch.basic_get("capped")[0] is None
        conn.close()
