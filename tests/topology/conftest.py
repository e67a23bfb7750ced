"""Helpers for the topology tests: write a YAML file and load it by a short relative name."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from amqplite.topology import Config, TopologyError, load_config

FILE = "topology.yaml"


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """Write dedented text to ./topology.yaml (cwd = tmp_path) and return the name."""
    monkeypatch.chdir(tmp_path)

    def _write(text: str) -> str:
        Path(FILE).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return FILE

    return _write


@pytest.fixture
def errors(write: Callable[[str], str]) -> Callable[[str], list[str]]:
    """Load text that must fail; return every problem as its printed line."""

    def _errors(text: str) -> list[str]:
        name = write(text)
        with pytest.raises(TopologyError) as info:
            load_config(name)
        return [str(p) for p in info.value.problems]

    return _errors


@pytest.fixture
def load(write: Callable[[str], str]) -> Callable[[str], Config]:
    def _load(text: str) -> Config:
        return load_config(write(text))

    return _load
