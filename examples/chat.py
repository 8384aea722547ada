"""A broadcast chat over WebSockets: every message a client sends goes to every client.

GET / serves a page with an input box; its script opens ws://<host>/chat. GET /chat
upgrades and greets with "Hello from WebSocket server!". OPEN adds the WebSocket to a set
of clients, MESSAGE re-sends the text to each of them (the sender included), CLOSE
removes it. Handlers run on many worker threads at once, so a lock guards the set.

Run: .venv-ft/bin/python examples/chat.py, then open http://localhost:8080/ in a few tabs.
"""

import os
import threading

import mummy

PAGE = """<!DOCTYPE html>
<title>mummy chat</title>
<input id="message" type="text" autofocus>
<button id="send" type="button">Send</button>
<div>Messages received:</div>
<div id="messages"></div>
<script>
  var ws = new WebSocket("ws://" + location.host + "/chat");
  function show(text) {
    var div = document.createElement("div");
    div.textContent = text;
    document.getElementById("messages").appendChild(div);
  }
  ws.onmessage = function (event) { show(event.data); };
  ws.onerror = function () { show("! WebSocket error"); };
  ws.onclose = function () { show("! WebSocket closed"); };
  function send() {
    var input = document.getElementById("message");
    ws.send(input.value);
    input.value = "";
  }
  document.getElementById("send").onclick = send;
  document.getElementById("message").onkeydown = function (event) {
    if (event.key === "Enter") send();
  };
</script>
"""

clients: set[mummy.WebSocket] = set()
clients_lock = threading.Lock()


def handler(request: mummy.Request) -> None:
    if request.method != "GET":
        request.respond(405, {"Allow": "GET"})
    elif request.path == "/":
        request.respond(200, {"Content-Type": "text/html; charset=utf-8"}, PAGE)
    elif request.path == "/chat":
        websocket = request.upgrade_to_websocket()
        websocket.send("Hello from WebSocket server!")
    else:
        request.respond(404, {"Content-Type": "text/plain"}, "Not Found")


def websocket_handler(
    websocket: mummy.WebSocket, event: mummy.Event, message: mummy.Message | None
) -> None:
    if event is mummy.Event.OPEN:
        with clients_lock:
            clients.add(websocket)
    elif event is mummy.Event.MESSAGE and message is not None:
        if message.kind not in (mummy.MessageKind.TEXT, mummy.MessageKind.BINARY):
            return  # pings and pongs are not chat (the server answers pings itself)
        # Copy under the lock, send outside it: send() only queues, but there is no
        # reason to hold up OPEN and CLOSE of other clients meanwhile.
        with clients_lock:
            everyone = list(clients)
        for client in everyone:
            client.send(message.data, message.kind)
    elif event is mummy.Event.CLOSE:
        with clients_lock:
            clients.discard(websocket)


server = mummy.Server(handler, websocket_handler)

if __name__ == "__main__":
    server.serve(int(os.environ.get("PORT", "8080")))
