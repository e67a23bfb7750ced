"""Hostile names in headless Chromium: a queue or exchange named like markup is shown as
text and never runs, and the Content-Security-Policy blocks inline script on its own.

Needs Debian's ``chromium``; skipped only when it is not installed.
"""

from __future__ import annotations

import json

import pytest
import trio
from chromium_cdp import chromium, find_chromium
from http_support import Stack

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)

HOSTILE = [
    "<img src=x onerror=window.__xss=1>",
    '"><script>window.__xss=2</script>',
    "<svg onload=window.__xss=3>",
]


async def test_hostile_names_are_text_and_inline_script_is_blocked(stack: Stack) -> None:
    assert CHROMIUM is not None
    vhost = stack.broker.vhosts["/"]
    for name in HOSTILE:
        vhost.declare_queue(name)
        vhost.declare_exchange(name, "fanout")
        vhost.bind_queue(name, name, "")
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
            await page.wait_for("document.querySelector('#whoami').textContent === 'guest'")
            # The password is sent in a header only, never in the page's URL.
            assert "guest" not in await page.evaluate("location.href")

            await page.evaluate(
                "document.querySelector('#tabs button[data-tab=queues]').click(); true"
            )
            names = (
                "[...document.querySelectorAll('#queues-table td.name')].map(t => t.textContent)"
            )
            await page.wait_for(f"{names}.length >= {len(HOSTILE)}")
            assert set(HOSTILE) <= set(await page.evaluate(names))

            await page.evaluate(
                "document.querySelector('#tabs button[data-tab=topology]').click(); true"
            )
            tree = "document.querySelector('#topology-tree')"
            await page.wait_for(f"{tree} && {tree}.textContent.includes({json.dumps(HOSTILE[0])})")
            for tab in ("#queues-table", "#topology-tree"):
                count = f"document.querySelectorAll('{tab} img, {tab} script, {tab} svg').length"
                assert await page.evaluate(count) == 0
            assert await page.evaluate("window.__xss === undefined")

            # Second wall: markup injected by other means still cannot run inline script.
            await page.evaluate(
                "document.addEventListener('securitypolicyviolation',"
                " e => { window.__blocked = e.violatedDirective; });"
                "document.body.insertAdjacentHTML('beforeend',"
                " '<img id=probe src=x onerror=\"window.__xss=4\">'); true"
            )
            await page.wait_for("window.__blocked !== undefined")
            assert (await page.evaluate("window.__blocked")).startswith("script-src")
            assert await page.evaluate("window.__xss === undefined")
