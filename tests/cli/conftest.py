"""Fixtures for the CLI tests: ``stack`` (amqplite serving AMQP and HTTP) and ``cli``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ops_support import Cli, Result, Stack, stack_in_thread

from amqplite.cli import main


@pytest.fixture
def stack() -> Iterator[Stack]:
    with stack_in_thread() as s:
        yield s


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``cli("queues", "--json")`` runs ``amqplite.cli.main`` and captures its output."""
    for var in ("AMQPLITE_API", "AMQPLITE_URL"):
        monkeypatch.delenv(var, raising=False)

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
