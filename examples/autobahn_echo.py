"""An echo server for the Autobahn|Testsuite fuzzing client (ci/autobahn.py runs it).

Every request that asks to upgrade gets a WebSocket; every TEXT and BINARY message is
sent back as it came. Messages up to 16 MiB are accepted (Autobahn's 9.x cases send that
much); the send buffer keeps its default (1 MiB): it bounds a backlog the reader is not
taking, not the size of one message. Anything else gets a plain 200 (how ci/autobahn.py
knows the server is up).

Run: .venv-ft/bin/python examples/autobahn_echo.py [PORT]   (else $PORT, else 9001)
"""

import os
import sys

import mummy


def handler(request: mummy.Request) -> None:
    if "upgrade" in request.headers.get("connection", "").lower():
        try:
            request.upgrade_to_websocket()
        except mummy.MummyError:
            pass  # already answered 400 or 426, and the case fails as it should
    else:
        request.respond(200, {"Content-Type": "text/plain"}, "autobahn echo server\n")


def websocket_handler(
    websocket: mummy.WebSocket, event: mummy.Event, message: mummy.Message | None
) -> None:
    if message is not None and message.kind in (mummy.MessageKind.TEXT, mummy.MessageKind.BINARY):
        websocket.send(message.data, message.kind)


server = mummy.Server(
    handler,
    websocket_handler,
    max_message_len=16 << 20,
)

if __name__ == "__main__":
    port = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "9001")
    server.serve(int(port), "127.0.0.1")
