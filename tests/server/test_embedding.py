"""The embedding API and the pytest plugin's fixtures."""

from __future__ import annotations

import base64
import json
import socket
import threading
import urllib.request
from pathlib import Path

import pika
import pytest
import trio
from rawamqp import RawClient, assert_alive

from amqplite.app import RunningBroker, run_in_thread, serve
from amqplite.protocol import methods as m

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"


async def test_serve_starts_a_broker_on_an_ephemeral_port() -> None:
    with trio.fail_after(5):
        async with serve() as running:
            assert running.port > 0
            assert running.url == f"amqp://guest:guest@127.0.0.1:{running.port}/"
            client = await RawClient.connect(running.port)
            await client.handshake()
            await client.open_channel(1)
            await assert_alive(client)
            await client.aclose()


async def test_serve_applies_a_yaml_topology() -> None:
    with trio.fail_after(5):
        async with serve(EXAMPLES / "topic_routing" / "topology.yaml") as running:
            assert "logs.eu-errors" in running.broker.get_vhost("/").queues
            client = await RawClient.connect(running.port)
            await client.handshake()
            await client.open_channel(1)
            ok = await client.declare_queue(1, "logs.all", passive=True)
            assert ok.queue == "logs.all"
            await client.aclose()


def test_run_in_thread_serves_sync_clients_and_runs_calls_in_its_thread() -> None:
    with run_in_thread() as running:
        connection = pika.BlockingConnection(pika.URLParameters(running.url))
        connection.channel().queue_declare("from-sync-code")
        connection.close()
        names = running.call(lambda: list(running.broker.get_vhost("/").queues))
        assert "from-sync-code" in names
        assert running.call(threading.current_thread).name == "amqplite-broker"
    # Stopped: nothing listens on the port any more.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", running.port), timeout=5)


async def test_fixtures_work_from_a_trio_test(
    amqplite_url: str, amqplite_broker: RunningBroker
) -> None:
    assert amqplite_url == amqplite_broker.url
    with trio.fail_after(5):
        client = await RawClient.connect(amqplite_broker.port)
        await client.handshake()
        await client.open_channel(1)
        await assert_alive(client)


def test_fixtures_work_from_a_sync_test(amqplite_url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqplite_url))
    assert connection.channel().queue_declare("", exclusive=True).method.queue
    connection.close()


async def test_blocked_and_unblocked_reach_clients_that_support_them(
    running: RunningBroker,
) -> None:
    with trio.fail_after(5):
        client = await RawClient.connect(running.port)
        await client.handshake(capabilities={"connection.blocked": True})
        running.server.set_blocked("low on disk")
        blocked = await client.expect(m.ConnectionBlocked)
        assert blocked.reason == "low on disk"
        running.server.set_blocked(None)
        await client.expect(m.ConnectionUnblocked)


def test_run_in_thread_reports_a_taken_port_as_oserror() -> None:
    with run_in_thread() as running, pytest.raises(OSError), run_in_thread(port=running.port):
        pass


async def test_serve_can_start_the_management_http_api() -> None:
    with trio.fail_after(10):
        async with serve(http_port=0, shutdown_timeout=0.2) as running:
            assert running.http_url == f"http://127.0.0.1:{running.http_port}/"
            token = base64.b64encode(b"guest:guest").decode()
            request = urllib.request.Request(
                running.http_url + "api/overview", headers={"Authorization": f"Basic {token}"}
            )

            def fetch() -> tuple[int, dict[str, object]]:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return response.status, json.loads(response.read())

            status, overview = await trio.to_thread.run_sync(fetch)
            assert status == 200
            assert overview["product_name"] == "amqplite"
