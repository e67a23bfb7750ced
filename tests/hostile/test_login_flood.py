"""A flood of wrong-password logins costs bounded memory and does not hold up valid logins.

On the old code every login that missed the cache ran scrypt (16 MiB) in a worker thread,
up to 40 at once: 200 concurrent wrong-password logins took the broker from 55 MB to
878 MB.  Now the default hash is RabbitMQ's salted SHA-256, checked inline, and legacy
scrypt hashes are checked in a pool of ``HASH_WORKERS`` threads.
"""

from __future__ import annotations

from pathlib import Path

import trio
from broker_process import broker_process
from rawamqp import RawClient

from amqplite.broker.passwords import hash_password, hash_scrypt
from amqplite.protocol import methods as m
from amqplite.protocol.frames import PROTOCOL_HEADER
from amqplite.server.auth import HASH_WORKERS

FLOOD = 12
SCRYPT_MIB = 16  # the legacy parameters below: 128 * 2**14 * 8 bytes


async def _login(port: int, user: str, password: str, sent: trio.Event | None = None) -> m.Method:
    client = await RawClient.connect(port)
    try:
        await client.send(PROTOCOL_HEADER)
        await client.expect(m.ConnectionStart)
        response = f"\x00{user}\x00{password}".encode()
        await client.send_method(0, m.ConnectionStartOk({}, "PLAIN", response, "en_US"))
        if sent is not None:
            sent.set()
        _, reply = await client.read_method()
        return reply
    finally:
        await client.aclose()


def _config(tmp_path: Path) -> str:
    path = tmp_path / "users.yaml"
    path.write_text(
        "users:\n"
        f"  legacy: {{password_hash: '{hash_scrypt('right')}'}}\n"
        f"  modern: {{password_hash: '{hash_password('right')}'}}\n"
    )
    return str(path)


async def test_wrong_password_flood_costs_bounded_memory_and_valid_logins_pass(
    tmp_path: Path,
) -> None:
    with broker_process("--config", _config(tmp_path), cwd=tmp_path) as broker:
        base = broker.rss_kib("VmHWM")
        refused = 0
        valid_during_flood: list[bool] = []
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:

                async def wrong(sent: trio.Event) -> None:
                    nonlocal refused
                    try:
                        reply = await _login(broker.port, "legacy", "wrong", sent)
                    except EOFError:
                        pass  # on a loaded machine the 10 s handshake timeout may come first
                    else:
                        assert isinstance(reply, m.ConnectionClose) and reply.reply_code == 403
                    refused += 1

                flood_sent = [trio.Event() for _ in range(FLOOD)]
                for sent in flood_sent:
                    nursery.start_soon(wrong, sent)
                for sent in flood_sent:  # every wrong login is with the broker
                    await sent.wait()
                # A user with the default hash logs in while the scrypt checks queue.
                reply = await _login(broker.port, "modern", "right")
                assert isinstance(reply, m.ConnectionTune)
                valid_during_flood.append(refused < FLOOD)
        assert refused == FLOOD
        assert valid_during_flood == [True]  # it did not wait for the flood to drain
        grown_mib = (broker.rss_kib("VmHWM") - base) / 1024
        # At most HASH_WORKERS scrypt buffers at once, plus slack for sockets and sessions
        # (with the old 40-thread pool the same flood took FLOOD x 16 MiB = 384 MiB).
        print(f"VmHWM grew {grown_mib:.1f} MiB under {FLOOD} wrong-password logins")
        assert grown_mib < HASH_WORKERS * SCRYPT_MIB + 40, grown_mib
        # The legacy hash still verifies.
        assert isinstance(await _login(broker.port, "legacy", "right"), m.ConnectionTune)
