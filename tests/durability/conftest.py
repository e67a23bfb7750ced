"""Fixtures for the durability tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from durability_helpers import Node


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A scratch directory on tmpfs when there is one (real fsyncs are slow)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="amqplite-durability-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["memory", "file", "file-bodies-on-disk"])
def node(request: pytest.FixtureRequest, fast_tmp: Path) -> Iterator[Node]:
    """A memory store, a file store, and a file store whose recovery leaves every body on
    disk (the path a large store takes: lazy entries from the size and properties alone)."""
    if request.param == "file-bodies-on-disk":
        n = Node("file", fast_tmp / "data", load_bodies=False)
    else:
        n = Node(request.param, fast_tmp / "data")
    n.broker.add_vhost("/")
    yield n
    n.close()


@pytest.fixture
def file_node(fast_tmp: Path) -> Iterator[Node]:
    n = Node("file", fast_tmp / "data")
    n.broker.add_vhost("/")
    yield n
    n.close()
