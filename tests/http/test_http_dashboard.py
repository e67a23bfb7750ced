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
from chromium_cdp import JSError, Page, chromium, find_chromium
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
    # A sibling of "work" on its origin exchange: a replay must not give it a copy.
    stack.broker.vhosts["/"].declare_queue("sibling")
    stack.broker.vhosts["/"].bind_queue("sibling", "work.x", "job")
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
            assert vhost.queues["sibling"].message_count == 0
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


async def _logged_in(page: Page) -> None:
    await page.wait_for(
        "document.readyState === 'complete' && document.querySelector('#login-form')"
    )
    await page.evaluate(
        "document.querySelector('#login-user').value = 'guest';"
        "document.querySelector('#login-password').value = 'guest';"
        "document.querySelector('#login-form').requestSubmit(); true"
    )
    await page.wait_for("document.querySelector('#whoami').textContent === 'guest'")


async def test_tabs_stay_hidden_until_login(stack: Stack) -> None:
    assert CHROMIUM is not None
    with trio.fail_after(60):
        async with chromium(CHROMIUM) as browser:
            page = await browser.new_page(f"http://127.0.0.1:{stack.http_port}/")
            await page.wait_for(
                "document.readyState === 'complete' && document.querySelector('#login-form')"
            )
            shown = "[...document.querySelectorAll('#tabs button')].filter(b => b.offsetParent)"
            assert await page.evaluate(f"{shown}.length") == 0
            assert (
                await page.evaluate("getComputedStyle(document.querySelector('#tabs')).display")
                == "none"
            )
            await _logged_in(page)
            await page.wait_for(f"{shown}.length === 5")


async def test_a_login_submitted_before_the_script_loads_keeps_the_password_out_of_the_url(
    stack: Stack,
) -> None:
    assert CHROMIUM is not None
    url = f"http://127.0.0.1:{stack.http_port}/"
    with trio.fail_after(60):
        async with chromium(CHROMIUM) as browser:
            page = await browser.new_page("about:blank")
            # The dashboard as it is before app.js arrives: the form and no handler on it.
            await page.send("Network.enable")
            await page.send("Network.setBlockedURLs", {"urls": ["*/static/app.js"]})
            await page.send("Page.navigate", {"url": url})
            await page.wait_for(
                "document.readyState === 'complete' && document.querySelector('#login-form')"
            )
            await page.evaluate(
                "window.beforeSubmit = true;"
                "document.querySelector('#login-user').value = 'guest';"
                "document.querySelector('#login-password').value = 's3cret-word';"
                # Submitted after this evaluation returns: the page navigates away.
                "setTimeout(() => document.querySelector('#login-form').requestSubmit(), 0); true"
            )
            # A new document: the form was submitted by the browser itself.  A wait that
            # was running in the old document ends with it: wait again in the new one.
            while True:
                try:
                    await page.wait_for(
                        "window.beforeSubmit === undefined && document.readyState === 'complete'"
                    )
                    break
                except JSError as exc:
                    if "navigated" not in str(exc):
                        raise
            location = await page.evaluate("location.href")
            assert location == url
            assert "s3cret" not in location and "password" not in location
            # The page that came back is the dashboard again, ready for a proper login.
            assert await page.evaluate("!!document.querySelector('#login-form')")


async def test_delete_matching_honours_dry_run_and_needs_all_and_a_confirmation(
    stack: Stack,
) -> None:
    assert CHROMIUM is not None
    await stack.amqp(make_dead_letters)
    dlq = stack.broker.vhosts["/"].queues["dlq"]
    with trio.fail_after(60):
        async with chromium(CHROMIUM) as browser:
            page = await browser.new_page(f"http://127.0.0.1:{stack.http_port}/")
            await _logged_in(page)
            await page.evaluate(
                "document.querySelector('#tabs button[data-tab=deadletters]').click();"
                # Record every confirmation asked; answer with window.answer.
                "window.asked = []; window.answer = false;"
                "window.confirm = (text) => { window.asked.push(text); return window.answer; };"
                "true"
            )
            option = js(json.dumps(["/", "dlq"], separators=(",", ":")))
            await page.wait_for(
                f"[...document.querySelectorAll('#dl-queue option')].some(o => o.value === {option})"
            )
            await page.evaluate(f"document.querySelector('#dl-queue').value = {option}; true")
            status = "document.querySelector('#dl-status').textContent"

            async def delete(expect: str) -> None:
                await page.evaluate(
                    f"{status} = ''; document.querySelector('#dl-delete').click(); true"
                )
                await page.wait_for(f"{status}.startsWith({js(expect)})")

            # Dry run ticked, no filter, "all" not ticked: refused, nothing asked or deleted.
            await page.evaluate("document.querySelector('#dl-dry-run').checked = true; true")
            await delete("No filter")
            # Dry run with a filter: only a report.
            await page.evaluate("document.querySelector('#dl-reason').value = 'expired'; true")
            await delete("Dry run: would delete 2")
            assert (dlq.message_count, await page.evaluate("window.asked.length")) == (5, 0)

            # A real delete asks first; "no" deletes nothing.
            await page.evaluate("document.querySelector('#dl-dry-run').checked = false; true")
            await delete("Nothing deleted")
            asked = await page.evaluate("window.asked")
            assert len(asked) == 1 and "2 matching" in asked[0]
            assert dlq.message_count == 5
            await page.evaluate("window.answer = true; true")
            await delete("Deleted 2")
            assert dlq.message_count == 3

            # Everything: only with "all" ticked, and confirmed as ALL.
            await page.evaluate("document.querySelector('#dl-reason').value = ''; true")
            await delete("No filter")
            assert dlq.message_count == 3
            await page.evaluate("document.querySelector('#dl-all').checked = true; true")
            await delete("Deleted 3")
            assert "ALL 3" in (await page.evaluate("window.asked"))[-1]
            assert dlq.message_count == 0
