"""The HTTP-backed CLI commands (``queues``, ``publish``, ``get``, ``dlq ...``) against a real
broker: tables, --json, exit codes, one-line errors."""

from __future__ import annotations

import json

import pytest
import trio
from http_support import Stack, make_dead_letters

from amqplite.cli import main


async def cli(stack: Stack, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    api = f"http://127.0.0.1:{stack.http_port}"
    # Options follow the (sub)command: put --api after the last command word.
    words = list(argv)
    split = 2 if words[0] == "dlq" else 1
    full = [*words[:split], "--api", api, *words[split:]]
    code = await trio.to_thread.run_sync(main, full)
    out, err = capsys.readouterr()
    return code, out, err


async def test_queues_publish_and_get_round_trip(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.broker.vhosts["/"].declare_queue("jobs")
    assert (await cli(stack, capsys, "publish", "", "jobs", "hello", "--header", "k=v"))[:2] == (
        0,
        "routed\n",
    )
    code, out, _ = await cli(stack, capsys, "queues")
    assert code == 0
    assert out.splitlines()[0].split() == ["name", "ready", "unacked", "consumers"]
    assert out.splitlines()[1].split() == ["jobs", "1", "0", "0"]
    code, out, _ = await cli(stack, capsys, "get", "jobs", "--json")
    (message,) = json.loads(out)
    assert message["payload"] == "hello" and message["properties"]["headers"] == {"k": "v"}
    assert stack.broker.vhosts["/"].queues["jobs"].message_count == 1  # requeued
    assert (await cli(stack, capsys, "publish", "", "nowhere", "x"))[:2] == (1, "not routed\n")


async def test_dlq_list_show_replay_purge(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    await stack.amqp(make_dead_letters)
    code, out, _ = await cli(stack, capsys, "dlq", "list", "dlq")
    assert code == 0 and out.startswith("5 dead letter(s)") and "rejected  3" in out
    code, out, _ = await cli(stack, capsys, "dlq", "show", "dlq", "--reason", "expired", "--json")
    assert [m["payload"] for m in json.loads(out)] == ["late 0", "late 1"]
    code, out, _ = await cli(
        stack, capsys, "dlq", "replay", "dlq", "--origin-queue", "work", "--dry-run"
    )
    assert (code, out) == (
        0,
        "would replay 3 of 3; kept: 0 unroutable, 0 without origin, 0 refused\n",
    )
    assert stack.broker.vhosts["/"].queues["dlq"].message_count == 5
    code, out, err = await cli(
        stack, capsys, "dlq", "replay", "dlq", "--reason", "rejected", "--batch", "2"
    )
    assert (code, out) == (0, "replayed 3 of 3; kept: 0 unroutable, 0 without origin, 0 refused\n")
    assert err.splitlines() == ["replayed 2 ...", "replayed 3 ..."]
    assert stack.broker.vhosts["/"].queues["work"].message_count == 3
    assert (await cli(stack, capsys, "dlq", "purge", "dlq", "--reason", "expired"))[:2] == (
        0,
        "deleted 2\n",
    )
    assert stack.broker.vhosts["/"].queues["dlq"].message_count == 0


async def test_unroutable_replay_exits_non_zero(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    await stack.amqp(make_dead_letters)
    stack.broker.vhosts["/"].unbind_queue("work", "work.x", "job")
    code, out, _ = await cli(stack, capsys, "dlq", "replay", "dlq", "--reason", "rejected")
    assert code == 1 and "kept: 3 unroutable" in out


async def test_errors_print_one_line_and_exit_1(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await cli(stack, capsys, "dlq", "show", "missing")
    assert (code, out) == (1, "")
    assert err == "error: 404 Not Found: Not Found\n"
    code, _, err = await cli(stack, capsys, "queues", "--password", "wrong")
    assert code == 1 and err.startswith("error: 401")
