"""Channels over WebSockets: clients subscribe to a channel by URL and get what is
published to it, plus a heartbeat at least every 30 seconds.

- GET /<channel> upgrades and subscribes the WebSocket to <channel>;
- a TEXT message a client sends is published to its channel (the sender gets it too);
- POST /<channel> publishes the request body (what another server would do);
- every subscriber gets {"type":"heartbeat"} when it opens and then every 30 s. JavaScript
  cannot see WebSocket pings, so a message is how a browser knows the line is alive.

How this differs from Mummy's examples/advanced_websockets.nim:

- Mummy's uses Redis pub/sub as the hub, so that several server processes share channels
  and other servers can publish; here the hub is in-process (`Hub`, a dict of sets under
  one lock), so channels live in this process only. Clients publish by sending a message,
  other programs by POST; in Mummy's, publishing was done through Redis only.
- Mummy's answers a client's Ping with a Pong in its handler; mummy does that itself.
- It listens on PORT (default 8080), not 8123; HEARTBEAT_SECONDS (default 30) sets the
  heartbeat period. The 4 workers and the 30 heartbeat buckets (one sent each second, so
  300k clients mean 10k sends a second rather than 300k at once) are as in Mummy's.

Run: .venv-ft/bin/python examples/advanced_websockets.py, then, with any WebSocket client,
connect to ws://localhost:8080/news and `curl -d hello http://localhost:8080/news`.
"""

import os
import threading
import time

import mummy

HEARTBEAT = '{"type":"heartbeat"}'
BUCKETS = 30


class Hub:
    """Channels and their subscribers, and the heartbeat buckets. Any thread may call
    any method; `lock` guards every field."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.channels: dict[str, set[mummy.WebSocket]] = {}
        self.buckets: list[set[mummy.WebSocket]] = [set() for _ in range(BUCKETS)]

    def subscribe(self, websocket: mummy.WebSocket, channel: str) -> None:
        with self.lock:
            self.channels.setdefault(channel, set()).add(websocket)
            self.buckets[hash(websocket) % BUCKETS].add(websocket)

    def unsubscribe(self, websocket: mummy.WebSocket, channel: str) -> None:
        with self.lock:
            subscribers = self.channels.get(channel, set())
            subscribers.discard(websocket)
            if not subscribers:
                self.channels.pop(channel, None)
            self.buckets[hash(websocket) % BUCKETS].discard(websocket)

    def publish(self, channel: str, text: str) -> int:
        """Send `text` to the channel's subscribers; returns how many there were."""
        with self.lock:
            subscribers = list(self.channels.get(channel, ()))
        # send() only queues the frame, so a slow subscriber holds up no one.
        for websocket in subscribers:
            websocket.send(text)
        return len(subscribers)

    def bucket(self, index: int) -> list[mummy.WebSocket]:
        with self.lock:
            return list(self.buckets[index])


hub = Hub()


def channel_of(path: str) -> str | None:
    """The channel a path names: one non-empty segment."""
    name = path[1:]
    return name if name and "/" not in name else None


def handler(request: mummy.Request) -> None:
    channel = channel_of(request.path)
    if channel is None:
        request.respond(404, {"Content-Type": "text/plain"}, "Use /<channel>\n")
    elif request.method == "GET":
        request.upgrade_to_websocket()  # OPEN subscribes it: the channel is in its request
    elif request.method == "POST":
        count = hub.publish(channel, request.body.decode("utf-8", "replace"))
        request.respond(200, {"Content-Type": "text/plain"}, f"{count}\n")
    else:
        request.respond(405, {"Allow": "GET, POST"})


def websocket_handler(
    websocket: mummy.WebSocket, event: mummy.Event, message: mummy.Message | None
) -> None:
    channel = channel_of(websocket.request.path)
    assert channel is not None  # only such paths are upgraded
    if event is mummy.Event.OPEN:
        hub.subscribe(websocket, channel)
        # After subscribing: a client that has its first heartbeat gets all that follows.
        websocket.send(HEARTBEAT)
    elif event is mummy.Event.MESSAGE and message is not None:
        if message.kind is mummy.MessageKind.TEXT:
            assert isinstance(message.data, str)
            hub.publish(channel, message.data)
    elif event is mummy.Event.CLOSE:
        hub.unsubscribe(websocket, channel)


def send_heartbeats(period: float) -> None:
    """Each tick, heartbeat one bucket: every WebSocket hears from us once a period.
    Ticks are scheduled from a fixed start, so the work done does not add up as drift."""
    tick = period / BUCKETS
    next_tick = time.monotonic()
    index = 0
    while True:
        next_tick += tick
        time.sleep(max(0.0, next_tick - time.monotonic()))
        for websocket in hub.bucket(index):
            websocket.send(HEARTBEAT)
        index = (index + 1) % BUCKETS


server = mummy.Server(handler, websocket_handler, workers=4)

if __name__ == "__main__":
    period = float(os.environ.get("HEARTBEAT_SECONDS", "30"))
    threading.Thread(target=send_heartbeats, args=(period,), name="heartbeat", daemon=True).start()
    server.serve(int(os.environ.get("PORT", "8080")))
