"""A minimal Chrome DevTools Protocol client for the dashboard tests: headless Chromium,
a hand-written WebSocket client (RFC 6455, client side: masked frames, no extensions) on
trio, and ``evaluate`` / ``wait_for`` helpers.  Stdlib + trio only."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import trio

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class WebSocket:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    @classmethod
    async def connect(cls, url: str) -> WebSocket:
        parts = urlsplit(url)
        stream = await trio.open_tcp_stream(parts.hostname or "127.0.0.1", parts.port or 80)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await stream.send_all(request.encode())
        ws = cls(stream)
        while b"\r\n\r\n" not in ws.buffer:
            chunk = await stream.receive_some(65536)
            if not chunk:
                raise ConnectionError("websocket handshake: connection closed")
            ws.buffer += chunk
        head, _, rest = bytes(ws.buffer).partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"websocket handshake refused: {head[:100]!r}")
        ws.buffer = bytearray(rest)
        return ws

    async def send_text(self, text: str) -> None:
        await self._send(0x1, text.encode())

    async def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        await self.stream.send_all(header + mask + masked)

    async def _need(self, n: int) -> None:
        while len(self.buffer) < n:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise ConnectionError("websocket closed")
            self.buffer += chunk

    async def receive_text(self) -> str:
        message = bytearray()
        while True:
            await self._need(2)
            b0, b1 = self.buffer[0], self.buffer[1]
            n = b1 & 0x7F
            offset = 2
            if n == 126:
                await self._need(4)
                n = struct.unpack("!H", self.buffer[2:4])[0]
                offset = 4
            elif n == 127:
                await self._need(10)
                n = struct.unpack("!Q", self.buffer[2:10])[0]
                offset = 10
            await self._need(offset + n)
            payload = bytes(self.buffer[offset : offset + n])
            del self.buffer[: offset + n]
            opcode = b0 & 0x0F
            if opcode == 0x9:  # ping
                await self._send(0xA, payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("websocket closed by peer")
            if opcode in (0x0, 0x1):
                message += payload
                if b0 & 0x80:
                    return message.decode()

    async def aclose(self) -> None:
        await self.stream.aclose()


class JSError(Exception):
    pass


class Page:
    """One tab, driven through a flat-mode CDP session on the browser's WebSocket."""

    def __init__(self, ws: WebSocket, session_id: str) -> None:
        self.ws = ws
        self.session_id = session_id
        self.next_id = 1000

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await call(self, method, params or {}, self.session_id)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise JSError(text)
        return result["result"].get("value")

    async def wait_for(self, condition: str, timeout_ms: int = 8000) -> Any:
        """Poll a JS expression inside the page until it is truthy (in-page timer, no Python sleeps)."""
        expr = (
            "new Promise((resolve, reject) => { const t0 = Date.now(); (function poll() {"
            f" let v; try {{ v = ({condition}); }} catch (e) {{ v = undefined; }}"
            " if (v) return resolve(v);"
            f" if (Date.now() - t0 > {timeout_ms}) return reject(new Error('timed out waiting for: ' + {json.dumps(condition)}));"
            " setTimeout(poll, 50); })(); })"
        )
        return await self.evaluate(expr)


async def call(
    page_or_browser: Any, method: str, params: dict[str, Any], session_id: str | None
) -> dict[str, Any]:
    ws: WebSocket = page_or_browser.ws
    page_or_browser.next_id += 1
    msg_id = page_or_browser.next_id
    message: dict[str, Any] = {"id": msg_id, "method": method, "params": params}
    if session_id:
        message["sessionId"] = session_id
    await ws.send_text(json.dumps(message))
    while True:
        reply = json.loads(await ws.receive_text())
        if reply.get("id") == msg_id:
            if "error" in reply:
                raise JSError(f"{method}: {reply['error']}")
            result: dict[str, Any] = reply.get("result", {})
            return result


class Browser:
    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.next_id = 0

    async def new_page(self, url: str) -> Page:
        target = await call(self, "Target.createTarget", {"url": "about:blank"}, None)
        attached = await call(
            self, "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, None
        )
        page = Page(self.ws, attached["sessionId"])
        await page.send("Runtime.enable")
        await page.send("Page.enable")
        await page.send("Page.navigate", {"url": url})
        return page


@asynccontextmanager
async def chromium(binary: str) -> AsyncIterator[Browser]:
    """Start headless Chromium with a throw-away profile and connect to its DevTools socket."""
    with tempfile.TemporaryDirectory(
        prefix="amqplite-chromium-", ignore_cleanup_errors=True
    ) as profile:
        process = await trio.lowlevel.open_process(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: the renderers go down with it
        )
        try:
            async with trio.open_nursery() as nursery:
                assert process.stderr is not None
                url = await _devtools_url(process.stderr)
                # Keep draining stderr so Chromium never blocks on a full pipe.
                nursery.start_soon(_drain, process.stderr)
                ws = await WebSocket.connect(url)
                try:
                    yield Browser(ws)
                finally:
                    await ws.aclose()
                    nursery.cancel_scope.cancel()
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            with trio.move_on_after(5) as scope:
                scope.shield = True
                await process.wait()


async def _devtools_url(stderr: trio.abc.ReceiveStream) -> str:
    seen = b""
    while True:
        chunk = await stderr.receive_some(65536)
        if not chunk:
            raise RuntimeError(f"chromium exited before DevTools was ready: {seen[-2000:]!r}")
        seen += chunk
        match = re.search(rb"DevTools listening on (ws://\S+)", seen)
        if match:
            return match.group(1).decode()


async def _drain(stream: trio.abc.ReceiveStream) -> None:
    while await stream.receive_some(65536):
        pass
