"""WebSockets, the basics: GET / serves a page whose script opens ws://<host>/ws; the
server upgrades GET /ws, greets the client with "Hello world from WebSocket!", and prints
every message it receives.

Run: .venv-ft/bin/python examples/basic_websockets.py, then open http://localhost:8080/
"""

import os

import mummy

PAGE = """<!DOCTYPE html>
<title>mummy WebSocket</title>
<script>
  // location.host, not a fixed localhost:8080, so that any PORT works.
  var ws = new WebSocket("ws://" + location.host + "/ws");
  ws.onmessage = function (event) {
    document.body.textContent = event.data;
  };
</script>
"""


def handler(request: mummy.Request) -> None:
    if request.method != "GET":
        request.respond(405, {"Allow": "GET"})
    elif request.path == "/":
        request.respond(200, {"Content-Type": "text/html; charset=utf-8"}, PAGE)
    elif request.path == "/ws":
        websocket = request.upgrade_to_websocket()
        # Frames sent now go out right after the 101 response.
        websocket.send("Hello world from WebSocket!")
    else:
        request.respond(404, {"Content-Type": "text/plain"}, "Not Found")


def websocket_handler(
    websocket: mummy.WebSocket, event: mummy.Event, message: mummy.Message | None
) -> None:
    if event is mummy.Event.MESSAGE and message is not None:
        print(f"{message.kind.name}: {message.data!r}", flush=True)


server = mummy.Server(handler, websocket_handler)

if __name__ == "__main__":
    server.serve(int(os.environ.get("PORT", "8080")))
