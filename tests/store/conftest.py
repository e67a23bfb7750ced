"""Fixtures for the store tests: one harness that drives a memory or a file store alike."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from amqplite.store import FileStore, MemoryStore, RecoveredState, Store


class StoreHarness:
    """Opens a store and restarts it: cleanly (close + reopen) or as after a crash."""

    def __init__(self, kind: str, path: Path) -> None:
        self.kind = kind
        self.path = path
        self.store: Any = None
        self.state: RecoveredState = self.start()

    def start(self, *, load_bodies: bool = True) -> RecoveredState:
        if self.kind == "memory":
            if self.store is None:
                self.store = MemoryStore()
        else:
            self.store = FileStore.open(self.path, segment_size=16 * 1024)
        state: RecoveredState = self.store.recover(load_bodies=load_bodies)
        return state

    def restart(self, *, clean: bool = True, load_bodies: bool = True) -> RecoveredState:
        """Close (or crash) and recover; a crash keeps only what was synced."""
        if self.kind == "memory":
            if clean:
                self.store.close()
        elif clean:
            self.store.close()
        else:
            self.store.abandon()
        self.state = self.start(load_bodies=load_bodies)
        return self.state

    def close(self) -> None:
        if self.kind == "file":
            self.store.close()


@pytest.fixture(params=["memory", "file"])
def harness(request: pytest.FixtureRequest, fast_tmp: Path) -> Iterator[StoreHarness]:
    h = StoreHarness(request.param, fast_tmp / "data")
    yield h
    h.close()


@pytest.fixture
def store(harness: StoreHarness) -> Store:
    return harness.store  # type: ignore[no-any-return]


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A scratch directory on tmpfs when there is one: tests that recover hundreds of
    images would otherwise spend their time waiting for real fsyncs."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="amqplite-store-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
