"""At the file-descriptor limit, excess clients are refused at once and the rest keep working.

The broker runs as a real `amqplite serve` with ``RLIMIT_NOFILE`` at 256; 400 clients
connect at once.  Before the reserve descriptor (server/fd_reserve.py), the ~150 clients
past the limit got a TCP connection that nobody read until their own timeout, and the
accept loop logged "accept failed; retrying" ten times a second.
"""

from __future__ import annotations

import resource
from pathlib import Path

import trio
from broker_process import broker_process
from rawamqp import RawClient, assert_alive

from amqplite.protocol import methods as m
from amqplite.protocol.frames import PROTOCOL_HEADER

BROKER_FDS = 256
CLIENTS = 400
WARNING = "file descriptor limit reached"


def _limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (BROKER_FDS, BROKER_FDS))


def _raise_own_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


async def _greet(port: int, held: list[RawClient]) -> str:
    """Connect and send the protocol header: 'served' (connection.start came back) or
    'refused' (reset or closed without a word)."""
    try:
        client = await RawClient.connect(port)
    except OSError:
        return "refused"
    held.append(client)
    try:
        await client.send(PROTOCOL_HEADER)
        await client.expect(m.ConnectionStart)
    except (EOFError, trio.BrokenResourceError, OSError):
        return "refused"
    return "served"


async def test_excess_connections_are_refused_at_once_and_existing_ones_keep_serving(
    tmp_path: Path,
) -> None:
    _raise_own_limit(CLIENTS + 200)
    with broker_process(cwd=tmp_path, preexec_fn=_limit_fds) as broker:
        witness = await RawClient.connect(broker.port)
        await witness.handshake()
        await witness.open_channel(1)
        held: list[RawClient] = []
        outcomes: list[str] = []
        # Every client has its answer well before the broker's 10 s handshake timeout
        # would free descriptors (which is what the hanging clients used to wait for).
        with trio.fail_after(8):
            async with trio.open_nursery() as nursery:

                async def one() -> None:
                    outcomes.append(await _greet(broker.port, held))

                for _ in range(CLIENTS):
                    nursery.start_soon(one)
            await assert_alive(witness)
        served, refused = outcomes.count("served"), outcomes.count("refused")
        print(f"\nfd limit {BROKER_FDS}, {CLIENTS} connects: {served} served, {refused} refused")
        assert served + refused == CLIENTS
        assert 100 < served < BROKER_FDS
        assert refused >= CLIENTS - BROKER_FDS
        log = broker.log()
        assert 1 <= log.count(WARNING) <= 2, log[-2000:]
        assert "accept failed" not in log
        # Descriptors come back when the clients go: a newcomer is served again.
        for client in held:
            await client.aclose()
        with trio.fail_after(8):
            while True:
                newcomer: list[RawClient] = []
                outcome = await _greet(broker.port, newcomer)
                for client in newcomer:
                    await client.aclose()
                if outcome == "served":
                    break
                await trio.sleep(0.05)  # the broker notices the closed sockets on its own time
            await assert_alive(witness)
        await witness.aclose()
