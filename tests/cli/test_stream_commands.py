"""``amqplite stream info | tail | replay`` through the real entry point, on amqplite and RabbitMQ.

Every test runs twice: against amqplite (skipped while it refuses ``x-queue-type: stream``)
and against the RabbitMQ at AMQPLITE_RABBITMQ_URL (marked ``rabbitmq``).  Each uses a
uniquely named stream and deletes what it declared.
"""

from __future__ import annotations

import datetime
import json
import secrets
from collections.abc import Iterator

import attrs
import pytest
from ops_support import Cli, Stack, rabbitmq_urls

from amqplite.cli.errors import CommandError
from amqplite.cli.stream import interval_seconds, parse_where
from amqplite.client import ChannelClosed, connect
from amqplite.message import BasicProperties, Long

STREAM_ARGS = {"x-queue-type": "stream"}


@attrs.frozen
class Target:
    url: str
    api: str
    stream: str  # a fresh stream queue holding messages m0..m9 (offsets 0..9)
    prefix: str


def _fill(url: str, queue: str, count: int, start: int = 0) -> None:
    with connect(url) as conn, conn.channel() as ch:
        ch.confirm_select()
        for i in range(start, start + count):
            props = BasicProperties(headers={"n": i}, content_type="text/plain")
            ch.publish("", queue, f"m{i}".encode(), props)
        assert ch.wait_for_confirms(30).ok


@pytest.fixture(params=["amqplite", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "rabbitmq":
        url, api = rabbitmq_urls()
    else:
        stack: Stack = request.getfixturevalue("stack")
        url, api = stack.url, stack.api
    prefix = f"amqplite-test-{secrets.token_hex(3)}"
    stream = f"{prefix}.events"
    with connect(url) as conn:
        try:
            conn.channel().queue_declare(stream, durable=True, arguments=STREAM_ARGS)
        except ChannelClosed as exc:
            pytest.skip(f"this broker has no stream queues yet: {exc.reply_text}")
        with conn.channel() as ch:
            ch.exchange_declare(f"{prefix}.replay", "fanout")
            ch.queue_declare(f"{prefix}.copy")
            ch.queue_bind(f"{prefix}.copy", f"{prefix}.replay")
    _fill(url, stream, 10)
    yield Target(url, api, stream, prefix)
    with connect(url) as conn, conn.channel() as ch:
        ch.queue_delete(stream)
        ch.queue_delete(f"{prefix}.copy")
        ch.exchange_delete(f"{prefix}.replay")


def _drain(url: str, queue: str) -> list[tuple[bytes, dict[str, object]]]:
    got = []
    with connect(url) as conn, conn.channel() as ch:
        while (d := ch.basic_get(queue, no_ack=True)) is not None:
            got.append((d.body, dict(d.properties.headers or {})))
    return got


def test_info_shows_first_and_last_offset_and_the_message_count(cli: Cli, target: Target) -> None:
    r = cli("stream", "info", target.stream, "--url", target.url, "--api", target.api, "--json")
    assert r.code == 0, r.err
    info = json.loads(r.out)
    assert (info["first_offset"], info["last_offset"], info["messages"]) == (0, 9, 10)
    assert info["arguments"]["x-queue-type"] == "stream"
    r = cli("stream", "info", target.stream, "--url", target.url, "--no-api")
    assert r.code == 0, r.err
    assert "first_offset:    0" in r.out and "last_offset:     9" in r.out


def test_tail_from_an_offset_prints_one_line_per_message(cli: Cli, target: Target) -> None:
    r = cli("stream", "tail", target.stream, "--url", target.url, "--from", "7", "--count", "3")
    assert r.code == 0, r.err
    assert r.out.splitlines() == [f"{i}\t{target.stream}\tm{i}" for i in (7, 8, 9)]


def test_tail_from_first_as_json_then_stops_when_quiet(cli: Cli, target: Target) -> None:
    r = cli(
        "stream", "tail", target.stream, "--url", target.url, "--from", "first",
        "--json", "--timeout", "0.5",
    )  # fmt: skip
    assert r.code == 0, r.err
    lines = [json.loads(line) for line in r.out.splitlines()]
    assert [m["offset"] for m in lines] == list(range(10))
    assert lines[3]["payload"] == "m3" and lines[3]["headers"]["n"] == 3
    assert "10 message(s)" in r.err


def test_tail_from_next_sees_only_what_comes_later(cli: Cli, target: Target) -> None:
    r = cli(
        "stream", "tail", target.stream, "--url", target.url, "--from", "next",
        "--timeout", "0.3",
    )  # fmt: skip
    assert r.code == 0 and r.out == ""


def test_tail_from_a_time_one_hour_ago_sees_everything(cli: Cli, target: Target) -> None:
    for where in ("1h", "2026-01-01T00:00:00Z"):
        r = cli(
            "stream", "tail", target.stream, "--url", target.url, "--from", where,
            "--count", "10",
        )  # fmt: skip
        assert r.code == 0, r.err
        assert [line.split("\t")[0] for line in r.out.splitlines()] == [str(i) for i in range(10)]


def test_replay_republishes_a_window_with_headers_and_progress(cli: Cli, target: Target) -> None:
    x = f"{target.prefix}.replay"
    args = ("stream", "replay", target.stream, "--url", target.url, "--to-exchange", x)
    r = cli(*args, "--from", "2", "--to", "5", "--dry-run")
    assert r.code == 0, r.err
    assert r.out.strip() == f"would republish 3 message(s), offsets 2..4, to exchange '{x}'"
    assert _drain(target.url, f"{target.prefix}.copy") == []
    r = cli(*args, "--from", "2", "--to", "5")
    assert r.code == 0, r.err
    assert "amqplite: replayed 3/3" in r.err
    got = _drain(target.url, f"{target.prefix}.copy")
    assert got == [(f"m{i}".encode(), {"n": i}) for i in (2, 3, 4)]  # no x-stream-offset


def test_replay_from_an_interval_to_the_end_as_json(cli: Cli, target: Target) -> None:
    x = f"{target.prefix}.replay"
    r = cli(
        "stream", "replay", target.stream, "--url", target.url, "--to-exchange", x,
        "--from", "1h", "--json", "--quiet",
    )  # fmt: skip
    assert r.code == 0, r.err
    summary = json.loads(r.out)
    assert (summary["first_offset"], summary["end_offset"], summary["republished"]) == (0, 10, 10)
    assert r.err == ""
    assert len(_drain(target.url, f"{target.prefix}.copy")) == 10


def test_replay_of_an_empty_window_publishes_nothing(cli: Cli, target: Target) -> None:
    x = f"{target.prefix}.replay"
    r = cli(
        "stream", "replay", target.stream, "--url", target.url, "--to-exchange", x,
        "--from", "next",
    )  # fmt: skip
    assert r.code == 0, r.err
    assert r.out.startswith("nothing to replay")
    assert _drain(target.url, f"{target.prefix}.copy") == []


def test_bad_input_is_one_line_and_exit_1(cli: Cli, target: Target) -> None:
    base = ("--url", target.url)
    r = cli("stream", "tail", target.stream, *base, "--from", "yesterday")
    assert (r.code, r.out) == (1, "")
    assert r.err.startswith("amqplite: error: cannot read 'yesterday' as a stream position")
    r = cli("stream", "tail", f"{target.prefix}.nosuch", *base, "--from", "first")
    assert r.code == 1 and "404" in r.err and "nosuch" in r.err
    r = cli(
        "stream", "replay", target.stream, *base, "--from", "first",
        "--to-exchange", f"{target.prefix}.nox",
    )  # fmt: skip
    assert r.code == 1 and "404" in r.err and "nox" in r.err
    r = cli("stream", "info", f"{target.prefix}.copy", *base, "--api", target.api)
    assert r.code == 1 and "classic queue, not a stream" in r.err


# -- positions, without a broker ---------------------------------------------------------------


def test_positions_become_the_consumer_argument_rabbitmq_takes() -> None:
    assert parse_where("first") == "first"
    assert parse_where("next") == "next"
    assert parse_where("1234") == Long(1234)
    assert isinstance(parse_where("1234"), Long)  # a long, not an int32, on the wire
    assert parse_where("2h") == "2h"  # the broker resolves it against its own clock
    assert parse_where("2026-12-07T14:00:00.250Z") == datetime.datetime(
        2026, 12, 7, 14, 0, 0, tzinfo=datetime.UTC
    )
    assert parse_where("2026-12-07T15:00:00.250+01:00", exact_time=True) == 1796652000.25
    assert parse_where("2026-12-07T14:00:00") == datetime.datetime(
        2026, 12, 7, 14, tzinfo=datetime.UTC
    )
    assert [interval_seconds(t) for t in ("7D", "1M", "15m", "30s", "1Y", "2x")] == [
        604800,
        2592000,
        900,
        30,
        31536000,
        None,
    ]
    with pytest.raises(CommandError, match="cannot read '-1'"):
        parse_where("-1")
