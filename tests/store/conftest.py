"""Fixtures for the store tests: one harness that drives a memory or a file store alike."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import StoreHarness

from amqplite.store import Store


@pytest.fixture(params=["memory", "file", "file-tiny"])
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
