"""This machine's addresses, for tests of the loopback-only login rule."""

from __future__ import annotations

import socket

from amqplite.server.auth import is_loopback


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine other than loopback (a UDP connect sends nothing)."""
    for target in ("192.0.2.1", "10.255.255.254", "8.8.8.8"):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect((target, 9))
            address: str = probe.getsockname()[0]
        except OSError:
            continue
        finally:
            probe.close()
        if not is_loopback(address):
            return address
    return None
