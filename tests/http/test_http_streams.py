"""Stream queues over HTTP: RabbitMQ's ``type: stream`` queue fields plus the stream's extent,
the ``/metrics`` gauges, and the dashboard's Streams tab in headless Chromium."""

from __future__ import annotations

import re

import pika  # type: ignore[import-untyped]
import pytest
import trio
from chromium_cdp import chromium, find_chromium
from http_support import Channel, Stack

STREAM_ARGS = {"x-queue-type": "stream", "x-max-age": "7D", "x-max-length-bytes": 20_000_000}


def declare_and_fill(count: int, name: str = "events") -> object:
    def go(ch: Channel) -> None:
        ch.queue_declare(name, durable=True, arguments=STREAM_ARGS)
        ch.confirm_delivery()
        for i in range(count):
            ch.basic_publish("", name, f"event {i}".encode())

    return go


def read_with_tracking_key(count: int, key: str) -> object:
    """Consume ``count`` messages from the start with a tracking key, acking each."""

    def go(ch: Channel) -> None:
        ch.basic_qos(prefetch_count=10)
        args = {"x-stream-offset": "first", "x-stream-tracking-key": key}
        for i, (method, _, _) in enumerate(ch.consume("events", arguments=args)):
            ch.basic_ack(method.delivery_tag)
            if i + 1 == count:
                break
        ch.cancel()

    return go


async def test_a_stream_shows_rabbitmqs_fields_and_its_extent(stack: Stack) -> None:
    with trio.fail_after(20):
        before = stack.broker.clock()
        await stack.amqp(declare_and_fill(3))
        after = stack.broker.clock()
        await stack.amqp(read_with_tracking_key(2, "billing"))
        q = await stack.get_json("/api/queues/%2F/events")
        listed = await stack.get_json("/api/queues/%2F")
    assert [item["name"] for item in listed if item["type"] == "stream"] == ["events"]
    assert (q["type"], q["durable"], q["exclusive"], q["auto_delete"]) == (
        "stream",
        True,
        False,
        False,
    )
    assert q["arguments"] == STREAM_ARGS
    assert (q["messages"], q["messages_ready"]) == (3, 3)  # reading removed nothing
    assert (q["first_offset"], q["last_offset"]) == (0, 2)
    assert before <= q["first_timestamp"] <= q["last_timestamp"] <= after
    assert q["segments"] == 1 and q["bytes"] > len(b"event 0") * 3
    assert q["tracking"] == {"billing": 2}
    assert q["members"] == q["online"] == [q["leader"]] == [q["node"]]
    assert q["message_stats"]["publish"] == 3


async def test_an_empty_stream_has_no_offsets_or_timestamps(stack: Stack) -> None:
    with trio.fail_after(20):
        await stack.amqp(declare_and_fill(0))
        q = await stack.get_json("/api/queues/%2F/events")
    assert q["messages"] == 0
    assert [q[k] for k in ("first_offset", "last_offset", "first_timestamp", "last_timestamp")] == [
        None
    ] * 4


def _samples(text: str, family: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        m = re.fullmatch(rf"{family}(\{{[^}}]*\}}) (\S+)", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


async def test_metrics_have_stream_gauges(stack: Stack) -> None:
    with trio.fail_after(20):
        await stack.amqp(declare_and_fill(5))
        await stack.amqp(declare_and_fill(0, name="quiet"))
        await stack.amqp(read_with_tracking_key(3, "audit"))
        text = (await stack.request("GET", "/metrics", auth=None)).body.decode()
    events, quiet = '{vhost="/",queue="events"}', '{vhost="/",queue="quiet"}'
    assert _samples(text, "amqplite_stream_messages") == {events: 5, quiet: 0}
    assert _samples(text, "amqplite_stream_first_offset") == {events: 0}  # none while empty
    assert _samples(text, "amqplite_stream_last_offset") == {events: 4}
    assert _samples(text, "amqplite_stream_segments")[events] == 1
    assert _samples(text, "amqplite_stream_bytes")[events] > 0
    first = _samples(text, "amqplite_stream_first_timestamp_seconds")[events]
    assert first <= _samples(text, "amqplite_stream_last_timestamp_seconds")[events]
    assert _samples(text, "amqplite_stream_tracked_offset") == {
        '{vhost="/",queue="events",key="audit"}': 3
    }
    assert "# TYPE amqplite_stream_messages gauge" in text


CHROMIUM = find_chromium()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
async def test_dashboard_streams_tab_follows_a_growing_stream(stack: Stack) -> None:
    assert CHROMIUM is not None
    await stack.amqp(declare_and_fill(3))
    stack.broker.vhosts["/"].declare_queue("plain")  # a classic queue stays off the tab
    with trio.fail_after(60):
        async with chromium(CHROMIUM) as browser:
            page = await browser.new_page(f"http://127.0.0.1:{stack.http_port}/")
            await page.wait_for(
                "document.readyState === 'complete' && document.querySelector('#login-form')"
            )
            await page.evaluate(
                "document.querySelector('#login-user').value = 'guest';"
                "document.querySelector('#login-password').value = 'guest';"
                "document.querySelector('#login-form').requestSubmit(); true"
            )
            await page.wait_for("document.querySelector('#login').hidden")
            await page.evaluate(
                "document.querySelector('#tabs button[data-tab=streams]').click(); true"
            )
            row = "document.querySelector('#streams-table tr[data-stream=\"events\"]')"
            cell = f"{row}.querySelector('td.%s').textContent"
            await page.wait_for(f"{row} && {cell % 'messages'} === '3'")
            shown = await page.evaluate(
                f"[...{row}.querySelectorAll('td')].map(td => td.textContent)"
            )
            assert shown[:5] == ["/", "events", "3", "0", "2"]
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", shown[5]), shown
            assert shown[7] == "1" and shown[8].endswith(" B")
            assert shown[10] == "age 7D, size 20.0 MB"
            count = "document.querySelectorAll('#streams-table tbody tr').length"
            assert await page.evaluate(count) == 1

            def publish(ch: Channel) -> None:
                ch.confirm_delivery()
                ch.basic_publish("", "events", b"one more", pika.BasicProperties())

            await stack.amqp(publish)
            await page.wait_for(f"{cell % 'messages'} === '4' && {cell % 'last-offset'} === '3'")
