"""A clock and a chat over Server-Sent Events: one long response per browser tab.

GET / serves a page whose script opens `new EventSource("/events")`. GET /events answers
with `request.respond_sse()` and keeps the EventStream in a set; the handler returns at
once, so an open stream holds no worker. A background thread sends a "tick" event every
second (its id counts the ticks) and POST /say sends its body as a "message" event to
every open stream, answering how many it reached. A stream whose `send` returns False
(the client left) is dropped from the set.

Run: .venv-ft/bin/python examples/sse.py, then open http://localhost:8080/ in a few tabs,
or `curl -N http://localhost:8080/events` and `curl -d hello http://localhost:8080/say`.
"""

import itertools
import os
import threading
import time

import mummy

PAGE = """<!DOCTYPE html>
<title>mummy server-sent events</title>
<div>Server time: <span id="clock">waiting for the first tick</span></div>
<input id="message" type="text" autofocus>
<button id="send" type="button">Send</button>
<div>Messages received:</div>
<div id="messages"></div>
<script>
  var source = new EventSource("/events");
  function show(text) {
    var div = document.createElement("div");
    div.textContent = text;
    document.getElementById("messages").appendChild(div);
  }
  source.addEventListener("tick", function (event) {
    document.getElementById("clock").textContent = event.data + " (tick " + event.lastEventId + ")";
  });
  source.onmessage = function (event) { show(event.data); };
  // EventSource reconnects by itself, sending the last id it saw as Last-Event-ID.
  source.onerror = function () { show("! connection lost, reconnecting"); };
  function send() {
    var input = document.getElementById("message");
    fetch("/say", { method: "POST", body: input.value });
    input.value = "";
  }
  document.getElementById("send").onclick = send;
  document.getElementById("message").onkeydown = function (event) {
    if (event.key === "Enter") send();
  };
</script>
"""

streams: set[mummy.EventStream] = set()
streams_lock = threading.Lock()


def broadcast(data: str, event: str, id: str | None = None) -> int:
    """Send one event to every open stream; returns how many took it."""
    # Copy under the lock, send outside it: send() only queues the bytes, but a lock
    # held meanwhile would hold up every tab that connects or leaves.
    with streams_lock:
        everyone = list(streams)
    gone = [stream for stream in everyone if not stream.send(data, event=event, id=id)]
    with streams_lock:
        streams.difference_update(gone)
    return len(everyone) - len(gone)


def tick_forever() -> None:
    for tick in itertools.count(1):
        time.sleep(1.0)
        broadcast(time.strftime("%H:%M:%S"), "tick", str(tick))


def handler(request: mummy.Request) -> None:
    if request.path == "/" and request.method == "GET":
        request.respond(200, {"Content-Type": "text/html; charset=utf-8"}, PAGE)
    elif request.path == "/events" and request.method == "GET":
        stream = request.respond_sse()
        last = request.headers.get("Last-Event-ID")
        if last is not None:  # a browser reconnecting after a drop says where it was
            stream.send(f"welcome back; the last tick you saw was {last}")
        with streams_lock:
            streams.add(stream)
    elif request.path == "/say" and request.method == "POST":
        reached = broadcast(request.body.decode("utf-8", "replace"), "message")
        request.respond(200, {"Content-Type": "text/plain"}, f"{reached}\n")
    elif request.path in ("/", "/events", "/say"):
        request.respond(405, {"Allow": "POST" if request.path == "/say" else "GET"})
    else:
        request.respond(404, {"Content-Type": "text/plain"}, "Not Found")


server = mummy.Server(handler)

if __name__ == "__main__":
    # A daemon: it must not keep the process alive once serve() has returned.
    threading.Thread(target=tick_forever, name="clock", daemon=True).start()
    server.serve(int(os.environ.get("PORT", "8080")))
