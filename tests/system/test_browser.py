"""A real browser on the chat example: headless Chromium types a message into the page and
clicks Send; a `websockets` client sees it arrive, and the page shows the client's reply.
The same on the Server-Sent Events example: the page's EventSource shows the clock's ticks
and a message posted from here, and what is typed in the page reaches a raw SSE client.

Chromium is driven over the Chrome DevTools Protocol (CDP) on its own WebSocket, with the
same `websockets` client, so no browser-automation package is needed. Needs Debian's
`chromium` package (/usr/bin/chromium); the test is skipped without it.
"""

import itertools
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from tests.client import SseClient
from tests.servers import wait_for
from tests.system.test_websocket_examples import Example, recv_until

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_S = 60.0

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium package (/usr/bin/chromium)"
)


class DevTools:
    """A CDP connection to the browser, attached to one page (flat session mode)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.session: str | None = None

    def call(self, method: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        """Send one command and return its result, skipping the events in between."""
        request_id = next(self.ids)
        message: dict[str, Any] = {"id": request_id, "method": method, "params": params or {}}
        session = kw.get("session", self.session)
        if session is not None:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == request_id:
                if "error" in reply:
                    raise AssertionError(f"{method} failed: {reply['error']}")
                return reply["result"]

    def open(self, url: str) -> None:
        """A new tab, attached, with `url` loaded."""
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=None)
        self.session = self.call(
            "Target.attachToTarget",
            {"targetId": target["targetId"], "flatten": True},
            session=None,
        )["sessionId"]
        self.call("Page.navigate", {"url": url})

        def loaded() -> bool:
            # Until the new document has loaded, an evaluation may land in about:blank or
            # in a context that the navigation then destroys: ask again until it is the page.
            try:
                return self.evaluate("document.readyState + ' ' + location.href") == (
                    f"complete {url}"
                )
            except AssertionError as exc:
                if "context" not in str(exc).lower():
                    raise
                return False

        assert wait_for(loaded, TIMEOUT_S), f"{url} did not load"

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if a promise)."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for_text(self, wanted: str, element: str = "messages") -> str:
        """Wait (in the page) until the element with id `element` shows `wanted`;
        returns all it shows."""
        return str(
            self.evaluate(
                f"""new Promise((resolve, reject) => {{
                    const deadline = Date.now() + {TIMEOUT_S * 1000};
                    (function check() {{
                        const box = document.getElementById({json.dumps(element)});
                        const text = box ? box.innerText : "";
                        if (text.includes({json.dumps(wanted)})) resolve(text);
                        else if (Date.now() > deadline) reject(new Error("not seen: " + text));
                        else setTimeout(check, 20);
                    }})();
                }})"""
            )
        )

    def click(self, selector: str) -> None:
        """A real mouse click (press and release) at the middle of the element."""
        x, y = self.evaluate(
            f"""(() => {{
                const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();
                return [r.x + r.width / 2, r.y + r.height / 2];
            }})()"""
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )


@pytest.fixture
def chromium() -> Iterator[DevTools]:
    profile = Path(tempfile.mkdtemp(prefix="mummy-chromium-"))
    log = (profile.parent / f"{profile.name}.log").open("wb")
    proc = subprocess.Popen(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",  # we run as root in CI
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            # No background traffic: the machine's network is closed and refusals slow it.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",  # Chromium picks; DevToolsActivePort says which
            "about:blank",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        active = profile / "DevToolsActivePort"

        def listening() -> bool:
            # Chromium writes its port and path there once it listens.
            return active.exists() and len(active.read_text().split()) >= 2

        started = wait_for(lambda: listening() or proc.poll() is not None, TIMEOUT_S)
        if not (started and listening()):
            raise AssertionError(f"Chromium did not start: {Path(log.name).read_text()}")
        port, path = active.read_text().split()[:2]
        with ws_connect(
            f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=TIMEOUT_S
        ) as ws:
            yield DevTools(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        Path(log.name).unlink(missing_ok=True)
        shutil.rmtree(profile, ignore_errors=True)


def test_chat_page_in_chromium(chromium: DevTools) -> None:
    with Example("chat") as chat:
        talk(chat, chromium)
        chat.stop_cleanly()


def talk(chat: Example, chromium: DevTools) -> None:
    with chat.ws("/chat") as observer:
        assert observer.recv(timeout=TIMEOUT_S) == "Hello from WebSocket server!"
        observer.send("observer joined")
        recv_until(observer, "observer joined")  # now in the set of clients

        chromium.open(f"http://127.0.0.1:{chat.port}/")
        chromium.wait_for_text("Hello from WebSocket server!")
        chromium.evaluate('document.getElementById("message").focus()')
        chromium.call("Input.insertText", {"text": "typed in Chromium ✓"})
        chromium.click("#send")

        seen = recv_until(observer, "typed in Chromium ✓")
        assert "typed in Chromium ✓" in chromium.wait_for_text("typed in Chromium ✓")
        assert seen[-1] == "typed in Chromium ✓"
        assert chromium.evaluate('document.getElementById("message").value') == ""

        observer.send("seen it, thanks")
        shown = chromium.wait_for_text("seen it, thanks")
        assert shown.index("typed in Chromium ✓") < shown.index("seen it, thanks")


def test_sse_page_in_chromium(chromium: DevTools) -> None:
    with Example("sse") as sse, SseClient(sse.port) as observer:
        observer.read_until(lambda: any(block.event == "tick" for block in observer.blocks()))
        chromium.open(f"http://127.0.0.1:{sse.port}/")
        # A tick shown means the page's stream is registered: messages reach it too.
        assert "(tick " in chromium.wait_for_text("(tick ", element="clock")
        status, body = sse.get("/say", "POST", "posted from Python ✓".encode())
        assert status == 200 and int(body) == 2, body  # the page and the observer
        chromium.wait_for_text("posted from Python ✓")

        chromium.evaluate('document.getElementById("message").focus()')
        chromium.call("Input.insertText", {"text": "typed in Chromium"})
        chromium.click("#send")
        observer.read_until(
            lambda: any(block.data == "typed in Chromium" for block in observer.blocks())
        )
        shown = chromium.wait_for_text("typed in Chromium")
        assert shown.index("posted from Python ✓") < shown.index("typed in Chromium")
        assert "! connection lost" not in shown
        sse.stop_cleanly()
