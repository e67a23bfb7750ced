"""The HTTP API's durability path: publishes and replays wait on the server's group commit."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from http_support import Stack, reject_all

from amqplite.app import build_broker, serve
from amqplite.http.api import ManagementApp
from amqplite.server.listener import AmqpServer
from amqplite.settings import ServerSettings
from amqplite.store import FileStore


async def test_http_publish_and_replay_answer_once_the_store_is_durable(tmp_path: Path) -> None:
    store = FileStore.open(tmp_path / "data")
    try:
        broker = build_broker(None, store=store)
        vhost = broker.vhosts["/"]
        vhost.declare_queue("dlq", durable=True)
        vhost.declare_queue("work", durable=True, arguments={"x-dead-letter-exchange": "dlx"})
        vhost.declare_exchange("dlx", "fanout", durable=True)
        vhost.bind_queue("dlq", "dlx", "")
        with trio.fail_after(20):
            async with serve(broker=broker, settings=ServerSettings(port=0), http_port=0) as run:
                assert run.http_port is not None
                http = Stack(broker, run.url, run.http_port, run.server)
                published = await http.request(
                    "POST",
                    "/api/exchanges/%2F/amq.default/publish",
                    {"routing_key": "work", "payload": "x", "properties": {"delivery_mode": 2}},
                )
                assert published.json() == {"routed": True}
                assert store.is_durable(store.position)

                assert await http.amqp(reject_all) == 1  # to the DLQ: a new durable write
                replayed = await http.request("POST", "/api/queues/%2F/dlq/replay", {})
                assert replayed.json()["replayed"] == 1
                assert store.is_durable(store.position)
                queues = vhost.queues
                assert (queues["dlq"].message_count, queues["work"].message_count) == (0, 1)
    finally:
        store.close()


def test_a_broker_with_a_store_needs_the_durable_wait(tmp_path: Path) -> None:
    store = FileStore.open(tmp_path / "data")
    try:
        broker = build_broker(None, store=store)
        with pytest.raises(ValueError, match="durable wait"):
            ManagementApp(broker, login=AmqpServer(broker, ServerSettings()).login)
    finally:
        store.close()
