"""The dashboard end to end in headless Chromium: log in, watch a queue's count change after
a publish, replay a dead letter by clicking, see the topology.

Needs Debian's ``chromium`` (``apt-get install -y chromium``); skipped only when it is not
installed.
"""

from __future__ import annotations

import json

import pika  # type: ignore[import-untyped]
import pytest
import trio
from chromium_cdp import chromium, find_chromium
from http_support import Channel, Stack, make_dead_letters

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)


def js(value: object) -> str:
    return json.dumps(value)


async def test_dashboard_shows_live_counts_and_replays_a_dead_letter_by_click(stack: Stack) -> None:
    assert CHROMIUM is not None
    await stack.amqp(make_dead_letters)
    stack.broker.vhosts["/"].declare_queue("watched")
    with trio.fail_after(60):
        async with chromium(CHROMIUM) as browser:
            page = await browser.new_page(f"http://127.0.0.1:{stack.http_port}/")
            await page.wait_for(
                "document.readyState === 'complete' && document.querySelector('#login-form')"
            )

            # A wrong password is refused, the right one logs in.
            await page.evaluate(
                "document.querySelector('#login-user').value = 'guest';"
                "document.querySelector('#login-password').value = 'wrong';"
                "document.querySelector('#login-form').requestSubmit(); true"
            )
            await page.wait_for(
                "document.querySelector('#login-error').textContent === 'Login failed'"
            )
            await page.evaluate(
                "document.querySelector('#login-password').value = 'guest';"
                "document.querySelector('#login-form').requestSubmit(); true"
            )
            await page.wait_for("document.querySelector('#whoami').textContent === 'guest'")
            await page.wait_for("document.querySelector('#login').hidden")

            # Queues table: live counts.
            await page.evaluate(
                "document.querySelector('#tabs button[data-tab=queues]').click(); true"
            )
            ready_cell = (
                "document.querySelector('#queues-table tr[data-queue=\"watched\"] td.ready')"
            )
            await page.wait_for(f"{ready_cell} && {ready_cell}.textContent === '0'")

            def publish(ch: Channel) -> None:
                ch.basic_publish("", "watched", b"hello", pika.BasicProperties(delivery_mode=2))

            await stack.amqp(publish)
            await page.wait_for(f"{ready_cell}.textContent === '1'")

            # Overview shows totals (3 + 1 ready + 5 dead letters... all queues' ready messages).
            await page.evaluate(
                "document.querySelector('#tabs button[data-tab=overview]').click(); true"
            )
            await page.wait_for("document.querySelector('#total-ready').textContent === '6'")

            # Dead letters: browse the DLQ filtered by reason, replay one row by clicking.
            await page.evaluate(
                "document.querySelector('#tabs button[data-tab=deadletters]').click(); true"
            )
            option = js(json.dumps(["/", "dlq"], separators=(",", ":")))
            await page.wait_for(
                f"[...document.querySelectorAll('#dl-queue option')].some(o => o.value === {option})"
            )
            await page.evaluate(
                f"document.querySelector('#dl-queue').value = {option};"
                "document.querySelector('#dl-reason').value = 'rejected';"
                "document.querySelector('#dl-browse').click(); true"
            )
            rows = "document.querySelectorAll('#dl-table tbody tr')"
            await page.wait_for(f"{rows}.length === 3")
            summary = await page.evaluate("document.querySelector('#dl-summary').textContent")
            assert "Total 3" in summary and "rejected 3" in summary
            second = await page.evaluate(
                f"[...{rows}[1].querySelectorAll('td')].map(td => td.textContent)"
            )
            assert second[1:5] == ["rejected", "work", "work.x", "job"] and "job 1" in second
            await page.evaluate(f"{rows}[1].querySelector('button.replay-one').click(); true")
            await page.wait_for(f"{rows}.length === 2")
            status = await page.evaluate("document.querySelector('#dl-status').textContent")
            assert status.startswith("Replayed 1 of 1")

            vhost = stack.broker.vhosts["/"]
            assert (vhost.queues["dlq"].message_count, vhost.queues["work"].message_count) == (4, 1)
            (entry,) = list(vhost.queues["work"].browse())
            assert entry.message.body == b"job 1" and entry.message.headers["x-replayed"] == 1

            # Topology: exchanges -> bindings -> queues.
            await page.evaluate(
                "document.querySelector('#tabs button[data-tab=topology]').click(); true"
            )
            work_x = "document.querySelector('#topology-tree li[data-exchange=\"work.x\"]')"
            await page.wait_for(f"{work_x} && {work_x}.textContent.includes('queue work')")
            dlx = await page.evaluate(
                "document.querySelector('#topology-tree li[data-exchange=\"dlx\"]').textContent"
            )
            assert "fanout" in dlx and "queue dlq" in dlx
