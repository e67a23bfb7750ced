"""Every management response carries the security headers; CORS only when configured;
credentials never reach the logs."""

from __future__ import annotations

import logging

import pika  # type: ignore[import-untyped]
import pika.exceptions  # type: ignore[import-untyped]
import pytest
import trio
from http_support import Stack

from amqplite.app import serve
from amqplite.http.api import ManagementApp
from amqplite.http.request import Request
from amqplite.http.security import CONTENT_SECURITY_POLICY


async def test_every_response_has_the_csp_and_no_cors_by_default(stack: Stack) -> None:
    with trio.fail_after(20):
        for path, auth in (("/", False), ("/static/app.js", False), ("/api/overview", True)):
            reply = await stack.request(
                "GET", path, auth=auth, headers={"Origin": "http://evil.example"}
            )
            assert reply.status == 200, path
            csp = reply.headers["content-security-policy"]
            assert csp == CONTENT_SECURITY_POLICY
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert reply.headers["x-content-type-options"] == "nosniff"
            assert not any(h.startswith("access-control-") for h in reply.headers)
        refused = await stack.request("GET", "/api/overview", auth=("guest", "bad"))
        assert refused.status == 401 and "content-security-policy" in refused.headers
        preflight = await stack.request(
            "OPTIONS", "/api/queues", auth=False, headers={"Origin": "http://evil.example"}
        )
        assert not any(h.startswith("access-control-") for h in preflight.headers)


async def test_cors_answers_only_configured_origins() -> None:
    with trio.fail_after(20):
        async with serve() as running:
            app = ManagementApp(
                running.broker, login=running.server.login, cors_origins={"https://ops.example"}
            )

            def request(method: str, origin: str) -> Request:
                return Request(method, "/api/whoami", {"origin": origin}, b"", "127.0.0.1")

            allowed = await app(request("OPTIONS", "https://ops.example"))
            assert allowed.status == 204
            headers = dict(allowed.headers)
            assert headers["access-control-allow-origin"] == "https://ops.example"
            assert "authorization" in headers["access-control-allow-headers"]
            other = await app(request("OPTIONS", "https://evil.example"))
            assert "access-control-allow-origin" not in dict(other.headers)
            # A real request from the allowed origin names it (never "*").
            reply = await app(request("GET", "https://ops.example"))
            assert dict(reply.headers)["access-control-allow-origin"] == "https://ops.example"


async def test_credentials_never_appear_in_logs(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "S3cret-pw-never-logged"
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(30):
        reply = await stack.request(
            "PUT", "/api/users/carol", {"password": secret, "tags": "management"}
        )
        assert reply.status == 201
        await stack.request(
            "PUT", "/api/permissions/%2F/carol", {"configure": ".*", "write": ".*", "read": ".*"}
        )
        assert (await stack.request("GET", "/api/whoami", auth=("carol", secret))).status == 200
        assert (
            await stack.request("GET", "/api/whoami", auth=("carol", secret + "x"))
        ).status == 401
        assert (
            await stack.request("GET", f"/api/whoami?password={secret}", auth=False)
        ).status == 401

        def amqp_logins() -> None:
            url = stack.amqp_url.replace("guest:guest", f"carol:{secret}")
            pika.BlockingConnection(pika.URLParameters(url)).close()
            with pytest.raises(pika.exceptions.AMQPConnectionError):
                bad = stack.amqp_url.replace("guest:guest", f"carol:{secret}x")
                pika.BlockingConnection(pika.URLParameters(bad))

        await trio.to_thread.run_sync(amqp_logins)
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "carol" in logged  # the refused login is logged, by user name only
    assert secret not in logged
