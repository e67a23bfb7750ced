"""The disk floor holds on a real, small file system: a confirmed publisher going as fast
as it can is blocked before free space drops below ``disk_free_limit``, with no write
failing (on a 1 s poll alone, a publisher filled a 64 MiB disk to 0 bytes free in 0.6 s).

Needs root to mount a tmpfs (CI and the dev machines run as root); skips otherwise.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pika.exceptions
import pytest
from server_helpers import connect, durable_broker, persistent

MIB = 1 << 20
DISK = 24 * MIB
FLOOR = 16 * MIB
BODY = b"x" * (256 << 10)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _free(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


@pytest.mark.parametrize("queue_type", ["classic", "stream"])
def test_publishers_are_blocked_before_the_floor(small_disk: Path, queue_type: str) -> None:
    # A stream's chunks count towards the bytes written between free-space looks, as the
    # message store's records do.
    with durable_broker(small_disk / "data", disk_free_limit=FLOOR) as running:
        # pika gives up on a connection blocked this long: how the publish loop ends.
        conn = connect(running, blocked_connection_timeout=0.5)
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("q", durable=True, arguments={"x-queue-type": queue_type})
        published = 0
        with pytest.raises(pika.exceptions.ConnectionBlockedTimeout):
            # Without the alarm, this many messages would fill the whole disk.
            while published < DISK // len(BODY):
                try:
                    ch.basic_publish("", "q", BODY, persistent())
                except pika.exceptions.NackError:
                    pytest.fail(f"a write failed after {published} messages: the disk filled")
                published += 1
        free = _free(small_disk)
        # Blocked on the batch that crossed the floor: at most that one message below it.
        assert free >= FLOOR - 2 * len(BODY), (free, published)
        assert published * len(BODY) >= (DISK - FLOOR) // 2
        assert running.call(lambda: running.broker.store_write_errors) == 0
