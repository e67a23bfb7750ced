"""Floods against a real `amqplite serve`: slowloris sockets are closed at the handshake
timeout while a normal client keeps its throughput; many connections holding many queues
stay within a stated memory bound.  Figures in docs/reliability.md.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest
import trio
from broker_process import BrokerProcess, broker_process
from rawamqp import RawClient, assert_alive, publish_frames

from amqplite.protocol import methods as m

SLOWLORIS = int(os.environ.get("AMQPLITE_SLOWLORIS", "2000"))
HANDSHAKE_TIMEOUT_MS = 2000


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"needs {need} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def _config(tmp_path: Path) -> str:
    path = tmp_path / "amqplite.yaml"
    path.write_text(f"server:\n  handshake_timeout: {HANDSHAKE_TIMEOUT_MS}\n")
    return str(path)


async def _throughput(port: int, seconds: float) -> float:
    """Messages per second a normal client publishes and consumes (batches of 100)."""
    client = await RawClient.connect(port)
    await client.handshake()
    await client.open_channel(1)
    queue = f"normal-{os.getpid()}-{trio.current_time()}"
    await client.declare_queue(1, queue, exclusive=True)
    await client.send_method(1, m.BasicConsume(0, queue, "c", False, True, False, False))
    await client.expect(m.BasicConsumeOk)
    done = 0
    started = trio.current_time()
    while trio.current_time() - started < seconds:
        await client.send(b"".join(publish_frames(1, "", queue, b"x" * 100) for _ in range(100)))
        for _ in range(100):
            await client.expect(m.BasicDeliver)
            await client.read_frame()
            await client.read_frame()
        done += 100
    rate = done / (trio.current_time() - started)
    await client.aclose()
    return rate


async def _slowloris(port: int, opened: trio.Event, lifetimes: list[float], count: int) -> None:
    """``count`` sockets that send three octets of the protocol header and stall; records
    how long each lived before the broker closed it."""
    ready = 0

    async def one() -> None:
        nonlocal ready
        since = trio.current_time()  # the broker's timer starts later, at its accept
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(b"AMQ")
            ready += 1
            if ready == count:
                opened.set()
            try:
                while await stream.receive_some(4096):
                    pass
            except trio.BrokenResourceError:
                pass
            lifetimes.append(trio.current_time() - since)

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)
            await trio.sleep(0)  # connect in a stream, not all in one burst


async def test_slowloris_sockets_are_closed_at_the_handshake_timeout(tmp_path: Path) -> None:
    _raise_fd_limit(SLOWLORIS + 500)
    with broker_process("--config", _config(tmp_path), cwd=tmp_path) as broker:
        await _throughput(broker.port, 0.3)  # warm up
        baseline = await _throughput(broker.port, 1.5)
        lifetimes: list[float] = []
        opened = trio.Event()
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_slowloris, broker.port, opened, lifetimes, SLOWLORIS)
                await opened.wait()
                during = await _throughput(broker.port, 1.5)
        assert len(lifetimes) == SLOWLORIS
        timeout = HANDSHAKE_TIMEOUT_MS / 1000
        # Each one at the timeout: not before it, and not long after (generous on a busy
        # machine: the broker's timers fire in one loop with 2,000 sockets).
        assert min(lifetimes) >= timeout - 0.05, min(lifetimes)
        assert max(lifetimes) < timeout + 10, max(lifetimes)
        ratio = during / baseline
        print(
            f"\nslowloris x{SLOWLORIS}: normal client {baseline:.0f} msg/s alone, "
            f"{during:.0f} msg/s during the flood (ratio {ratio:.2f}); socket lifetimes "
            f"{min(lifetimes):.2f}-{max(lifetimes):.2f} s"
        )
        assert ratio > 0.25
        assert "handshake timed out" in broker.log()


async def _hold(broker: BrokerProcess, connections: int, queues_each: int, seconds: float) -> None:
    base = broker.rss_kib()
    clients: list[RawClient] = []
    with trio.fail_after(60 + connections * 0.1 + seconds):
        for i in range(connections):
            client = await RawClient.connect(broker.port)
            await client.handshake()
            await client.open_channel(1)
            for q in range(queues_each):
                await client.send_method(
                    1, m.QueueDeclare(0, f"soak-{i}-{q}", False, False, False, False, True, {})
                )
            await assert_alive(client)  # the no-wait declares above have been handled
            clients.append(client)
        loaded = broker.rss_kib()
        peak = loaded
        started = trio.current_time()
        while trio.current_time() - started < seconds:
            await trio.sleep(1)
            peak = max(peak, broker.rss_kib())
        for client in clients:
            await assert_alive(client)
            await client.aclose()
    grown = peak - base
    print(
        f"\nsoak: {connections} connections, {connections * queues_each} queues, {seconds:.0f} s: "
        f"RSS {base // 1024} MiB before, {loaded // 1024} MiB loaded, peak {peak // 1024} MiB"
    )
    # The stated bound: 64 KiB per connection and 8 KiB per queue, above an idle broker.
    bound = 64 * connections + 8 * connections * queues_each
    assert grown < bound, f"RSS grew {grown} KiB, bound {bound} KiB"
    # Holding does not grow: the peak stays within 10 % of the loaded size.
    assert peak < loaded * 1.1 + 1024


async def test_connections_and_queues_held_stay_within_the_memory_bound(tmp_path: Path) -> None:
    _raise_fd_limit(200 + 200)
    with broker_process(cwd=tmp_path) as broker:
        await _hold(broker, 200, 10, 5)


@pytest.mark.long
@pytest.mark.timeout(0)
async def test_a_thousand_connections_and_ten_thousand_queues_for_ten_minutes(
    tmp_path: Path,
) -> None:
    _raise_fd_limit(1000 + 200)
    seconds = float(os.environ.get("AMQPLITE_SOAK_SECONDS", "600"))
    with broker_process(cwd=tmp_path) as broker:
        await _hold(broker, 1000, 10, seconds)
