"""Fixtures for the CLI tests: ``stack`` (amqplite serving AMQP and HTTP), ``cli``, and
``rabbit`` (the configured real RabbitMQ, cleaned after each test)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from ops_support import Cli, Result, Stack, rabbitmq_urls, stack_in_thread

from amqplite.cli import main
from amqplite.client import ApiError
from amqplite.client.http import ApiClient, quote


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


@pytest.fixture
def rabbit() -> Iterator[tuple[str, str, str]]:
    """(amqp url, api url, unique prefix) of the configured RabbitMQ (skips without one);
    deletes every queue and exchange named with the prefix afterwards."""
    url, api = rabbitmq_urls()
    prefix = f"amqplite-test-{secrets.token_hex(3)}"
    yield url, api, prefix
    client = ApiClient(api)
    for kind in ("queues", "exchanges"):
        for item in client.get(f"/api/{kind}/%2F?columns=name"):
            if item["name"].startswith(prefix):
                try:
                    client.delete(f"/api/{kind}/%2F/{quote(item['name'])}")
                except ApiError:
                    pass
