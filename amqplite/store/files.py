"""The file store's only contact with the operating system: files, a lock, free space.

Layer: ``amqplite/store``.  :class:`StoreFile` is a thin wrapper over an ``os`` file
descriptor; the file store opens every file through an ``opener`` callable, which is the
seam tests use to inject ``ENOSPC`` or ``EIO`` (a subclass whose ``write`` fails), keeping
the failure handling testable without root-only tricks such as a tiny tmpfs.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable

from amqplite.store import StoreLockedError


class StoreFile:
    """An append-mostly file: sequential ``write``, positional reads, ``truncate``, ``fsync``."""

    __slots__ = ("fd", "path", "size")

    def __init__(self, path: str, *, create: bool) -> None:
        flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0)
        if create:
            flags |= os.O_CREAT | os.O_EXCL
        self.path = path
        self.fd = os.open(path, flags, 0o644)
        self.size = os.fstat(self.fd).st_size

    def write(self, data: bytes | bytearray) -> None:
        """Append all of ``data`` at ``size``.  On error ``size`` still names the good end."""
        view = memoryview(data)
        offset = self.size
        while view:
            written = os.pwrite(self.fd, view, offset)
            offset += written
            view = view[written:]
        self.size = offset

    def read(self, length: int, offset: int) -> bytes:
        return os.pread(self.fd, length, offset)

    def read_all(self) -> bytes:
        return self.read(self.size, 0)

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)
        self.size = size

    def fsync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


#: ``opener(path, create=...)`` -> a :class:`StoreFile` (or a subclass, in tests).
Opener = Callable[..., StoreFile]


def fsync_directory(path: str) -> None:
    """Make creations, renames and deletions in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirectoryLock:
    """An exclusive ``flock`` on ``DIR/LOCK`` held for the life of a store."""

    __slots__ = ("fd",)

    def __init__(self, data_dir: str) -> None:
        path = os.path.join(data_dir, "LOCK")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StoreLockedError(
                f"data directory {data_dir!r} is in use by another broker (pid {holder}); "
                "two brokers cannot share one data directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


def free_bytes(path: str) -> int:
    """Bytes available to an unprivileged writer on the file system holding ``path``."""
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize
