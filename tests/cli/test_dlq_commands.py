"""``amqplite dlq list | show | replay | purge`` with dead letters made by a real AMQP client."""

from __future__ import annotations

import json

import pytest
from ops_support import Cli, Stack

from amqplite.cli import dlq
from amqplite.client import connect
from amqplite.client.http import ApiClient
from amqplite.message import BasicProperties


@pytest.fixture
def dead(stack: Stack) -> Stack:
    """work (dead-letters to dlx -> work.dlq): 3 rejected, tenant acme x2 / globex x1;
    other (same DLX): 1 rejected."""
    with connect(stack.url) as conn, conn.channel() as ch:
        ch.exchange_declare("dlx", "fanout")
        ch.exchange_declare("jobs", "direct")
        ch.queue_declare("work.dlq")
        ch.queue_bind("work.dlq", "dlx")
        for q in ("work", "other"):
            ch.queue_declare(q, arguments={"x-dead-letter-exchange": "dlx"})
            ch.queue_bind(q, "jobs", q)
        for i, tenant in enumerate(("acme", "globex", "acme")):
            ch.publish(
                "jobs", "work", f"job-{i}".encode(), BasicProperties(headers={"tenant": tenant})
            )
        ch.publish("jobs", "other", b"other-0")
        for q, n in (("work", 3), ("other", 1)):
            for _ in range(n):
                got = ch.basic_get(q)
                assert got is not None
                ch.basic_reject(got.delivery_tag, requeue=False)
        ch.queue_declare("work.dlq", passive=True)
        assert ch.queue_declare("work.dlq", passive=True).message_count == 4
    return stack


def _bodies(cli: Cli, stack: Stack, queue: str) -> list[str]:
    r = cli("dlq", "show", queue, "--api", stack.api, "--json", "--limit", "100")
    assert r.code == 0, r.err
    return [m["payload"] for m in json.loads(r.out)]


def test_list_shows_origin_and_counts_without_consuming(cli: Cli, dead: Stack) -> None:
    r = cli("dlq", "list", "work.dlq", "--api", dead.api)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split()[:4] == ["ID", "REASON", "ORIGIN", "QUEUE"]
    assert [line.split()[1:4] for line in lines[2:6]] == [
        ["rejected", "work", "jobs"],
        ["rejected", "work", "jobs"],
        ["rejected", "work", "jobs"],
        ["rejected", "other", "jobs"],
    ]
    assert lines[-1] == "4 dead letters: rejected 4"
    assert _bodies(cli, dead, "work.dlq") == ["job-0", "job-1", "job-2", "other-0"]  # untouched


def test_filters_select_by_origin_queue_and_header(cli: Cli, dead: Stack) -> None:
    r = cli("dlq", "list", "work.dlq", "--api", dead.api, "--origin-queue", "work",
            "--header", "tenant=acme", "--json")  # fmt: skip
    data = json.loads(r.out)
    assert [m["payload"] for m in data["messages"]] == ["job-0", "job-2"]
    assert data["summary"]["total"] == 2


def test_show_prints_x_death_history(cli: Cli, dead: Stack) -> None:
    r = cli("dlq", "show", "work.dlq", "--api", dead.api, "--origin-queue", "other")
    assert r.code == 0, r.err
    assert "arrived via exchange 'dlx' with routing key 'other'" in r.out
    assert "x-death[0]: rejected in queue 'other' (exchange 'jobs', keys other) x1 at " in r.out
    assert r.out.rstrip().endswith("other-0")


def test_replay_dry_run_moves_nothing(cli: Cli, dead: Stack) -> None:
    r = cli("dlq", "replay", "work.dlq", "--api", dead.api, "--dry-run", "--origin-queue", "work")
    assert r.code == 0, r.err
    assert r.out.splitlines()[0] == (
        "would replay 3 of 3 selected (unroutable 0, failed 0, skipped 0)"
    )
    assert len(_bodies(cli, dead, "work.dlq")) == 4


def test_replay_sends_them_back_to_their_origin_with_x_replayed(
    cli: Cli, dead: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dlq, "REPLAY_CHUNK", 2)  # several requests: chunking and progress
    r = cli("dlq", "replay", "work.dlq", "--api", dead.api, "--origin-queue", "work")
    assert r.code == 0, r.err
    assert r.out.splitlines()[0] == "replayed 3 of 3 selected (unroutable 0, failed 0, skipped 0)"
    assert "amqplite: replay 2/3" in r.err and "amqplite: replay 3/3" in r.err
    assert _bodies(cli, dead, "work.dlq") == ["other-0"]
    with connect(dead.url) as conn, conn.channel() as ch:
        back = [ch.basic_get("work", no_ack=True) for _ in range(3)]
    assert [m.body for m in back if m] == [b"job-0", b"job-1", b"job-2"]
    assert all(
        m is not None and m.properties.headers and m.properties.headers["x-replayed"] == 1
        for m in back
    )


def test_replay_to_another_exchange_with_limit(cli: Cli, dead: Stack) -> None:
    with connect(dead.url) as conn, conn.channel() as ch:
        ch.queue_declare("retry")
    r = cli("dlq", "replay", "work.dlq", "--api", dead.api, "--limit", "2",
            "--to-exchange", "", "--to-routing-key", "retry", "--json")  # fmt: skip
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["replayed"] == 2
    assert report["destinations"] == [{"exchange": "", "routing_key": "retry", "count": 2}]
    assert _bodies(cli, dead, "work.dlq") == ["job-2", "other-0"]


def test_replay_that_cannot_route_keeps_them_and_exits_1(cli: Cli, dead: Stack) -> None:
    r = cli("dlq", "replay", "work.dlq", "--api", dead.api,
            "--to-exchange", "jobs", "--to-routing-key", "nowhere")  # fmt: skip
    assert r.code == 1
    assert r.err.splitlines()[-1] == (
        "amqplite: error: 4 message(s) stayed in the queue (unroutable or refused)"
    )
    assert len(_bodies(cli, dead, "work.dlq")) == 4


def test_purge_needs_a_filter_or_all_and_deletes_only_the_selection(cli: Cli, dead: Stack) -> None:
    r = cli("dlq", "purge", "work.dlq", "--api", dead.api)
    assert r.code == 1
    assert r.err == (
        "amqplite: error: purge without a filter deletes every message: add --all to confirm\n"
    )
    r = cli("dlq", "purge", "work.dlq", "--api", dead.api, "--header", "tenant=acme", "--dry-run")
    assert r.out == "would delete 2 messages\n"
    r = cli("dlq", "purge", "work.dlq", "--api", dead.api, "--header", "tenant=acme")
    assert r.out == "deleted 2 messages\n"
    assert _bodies(cli, dead, "work.dlq") == ["job-1", "other-0"]
    r = cli("dlq", "purge", "work.dlq", "--api", dead.api, "--all", "--json")
    assert json.loads(r.out) == {"dry_run": False, "deleted": 2}


def test_dlq_of_a_missing_queue_is_a_404_line(cli: Cli, stack: Stack) -> None:
    r = cli("dlq", "list", "nope", "--api", stack.api)
    assert r.code == 1
    assert r.err.startswith("amqplite: error: 404 not found")
    asked = f"{ApiClient(stack.api).base}/api/queues/%2F/nope/messages"
    assert (
        r.err == f"amqplite: error: 404 not found: no queue 'nope' in vhost '/' (asked {asked})\n"
    )


def _count(stack: Stack, queue: str) -> int:
    with connect(stack.url) as conn, conn.channel() as ch:
        return ch.queue_declare(queue, passive=True).message_count


def test_replay_goes_back_to_the_queue_it_died_in_not_to_its_siblings(
    cli: Cli, dead: Stack
) -> None:
    with connect(dead.url) as conn, conn.channel() as ch:
        ch.queue_declare("audit")
        ch.queue_bind("audit", "jobs", "work")  # a sibling of "work" on its origin exchange
    args = ("dlq", "replay", "work.dlq", "--api", dead.api, "--origin-queue", "work")
    r = cli(*args, "--dry-run")
    assert r.code == 0, r.err
    assert r.out.splitlines()[1:] == [
        "       3 -> queue 'work' (through the default exchange)",
        "       3 would reach queue 'work'",
    ]
    r = cli(*args, "--dry-run", "--to-exchange", "jobs")
    assert r.out.splitlines()[1:] == [
        "       3 -> exchange 'jobs' routing key 'work'",
        "       3 would reach queue 'work'",
        "       3 would reach queue 'audit'",
    ]
    assert (_count(dead, "work"), _count(dead, "audit"), _count(dead, "work.dlq")) == (0, 0, 4)
    r = cli(*args)
    assert r.code == 0, r.err
    assert (_count(dead, "work"), _count(dead, "audit"), _count(dead, "work.dlq")) == (3, 0, 1)


def test_replay_to_another_queue(cli: Cli, dead: Stack) -> None:
    with connect(dead.url) as conn, conn.channel() as ch:
        ch.queue_declare("retry")
    r = cli("dlq", "replay", "work.dlq", "--api", dead.api, "--to-queue", "retry", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["destinations"] == [
        {"exchange": "", "routing_key": "retry", "count": 4}
    ]
    assert (_count(dead, "retry"), _count(dead, "work"), _count(dead, "other")) == (4, 0, 0)
    r = cli("dlq", "replay", "work.dlq", "--api", dead.api, "--to-queue", "nope")
    asked = f"{ApiClient(dead.api).base}/api/queues/%2F/work.dlq/replay"
    assert (r.code, r.err) == (
        1,
        f"amqplite: error: 404 not found: no queue 'nope' in vhost '/' (asked {asked})\n",
    )


def test_deaths_counts_every_death_not_only_the_latest(cli: Cli, stack: Stack) -> None:
    """work2 rejects into parking (TTL 0), which expires into final.dlq: two x-death
    entries, one death each."""
    with connect(stack.url) as conn, conn.channel() as ch:
        ch.exchange_declare("to-parking", "fanout")
        ch.exchange_declare("to-final", "fanout")
        ch.queue_declare("final.dlq")
        ch.queue_bind("final.dlq", "to-final")
        ch.queue_declare(
            "parking", arguments={"x-message-ttl": 0, "x-dead-letter-exchange": "to-final"}
        )
        ch.queue_bind("parking", "to-parking")
        ch.queue_declare("work2", arguments={"x-dead-letter-exchange": "to-parking"})
        ch.publish("", "work2", b"twice")
        got = ch.basic_get("work2")
        assert got is not None
        ch.basic_reject(got.delivery_tag, requeue=False)
    assert _count(stack, "final.dlq") == 1
    r = cli("dlq", "list", "final.dlq", "--api", stack.api)
    assert r.code == 0, r.err
    header, _, row = r.out.splitlines()[:3]
    deaths = header.index("DEATHS")
    assert row[deaths:].split()[0] == "2"
    assert row.split()[1:3] == ["expired", "parking"]
