"""Channels over WebSockets, shared by every server process through Redis pub/sub:
clients subscribe to a channel by URL and get what is published to it, plus a heartbeat
at least every 30 seconds.

- GET /<channel> upgrades and subscribes the WebSocket to <channel>;
- a TEXT message a client sends is published to its channel through Redis: every
  subscriber of every process gets it, the sender too;
- POST /<channel> publishes the request body and answers `Published` (503 while Redis is
  unreachable); any other program can publish too (`redis-cli PUBLISH <channel> <text>`);
- a WebSocket's first message is {"type":"heartbeat"}, sent once Redis has confirmed the
  subscription to its channel: everything published after it reaches the socket. Then a
  heartbeat every 30 s: JavaScript cannot see WebSocket pings, so a message is how a
  browser knows the line is alive.

One thread per process (`Subscriber`) owns a redis-py PubSub: it SUBSCRIBEs a channel when
the channel's first socket arrives here, UNSUBSCRIBEs it when the last leaves, and sends each
published message to the channel's sockets in this process. Handlers publish with one
shared `redis.Redis`, whose connection pool is thread-safe. When the connection to Redis
is lost (Redis restarted), the thread reconnects with backoff (0.1 s, doubling up to 5 s)
and resubscribes every channel that still has sockets; what was published in between is
lost, as pub/sub always loses what is sent to a subscriber that is not connected.

How this differs from Mummy's examples/advanced_websockets.nim:

- Mummy's sends SUBSCRIBE and UNSUBSCRIBE from the handlers, on the connection its
  receiving thread reads. A redis-py PubSub must stay on one thread, so here handlers only
  record that a channel gained its first or lost its last socket, and the subscriber thread
  sends the command when it next looks (it reads Redis 0.1 s at a time).
- Mummy's receiving thread ends the process when the Redis connection fails; here the
  subscriber thread reconnects and resubscribes.
- Mummy's sends the first heartbeat at OPEN, before the SUBSCRIBE; here it waits for
  Redis's confirmation, so that a client knows from when on it misses nothing.
- In Mummy's only Redis publishes; here clients do too, by a message or a POST.
- Mummy's answers a client's Ping with a Pong in its handler; mummy does that itself.
- It listens on PORT (default 8080), not 8123, and finds Redis at REDIS_URL (default
  redis://localhost:6379/0); HEARTBEAT_SECONDS (default 30) sets the heartbeat period. The
  4 workers and the 30 heartbeat buckets (one sent each second, so 300k clients mean 10k
  sends a second rather than 300k at once) are as in Mummy's.

Run: redis-server, then .venv-ft/bin/python examples/advanced_websockets.py and, in another
shell, PORT=8081 .venv-ft/bin/python examples/advanced_websockets.py; connect any WebSocket
client to ws://localhost:8080/news, then `curl -d hello http://localhost:8081/news`.
"""

import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.client import PubSub
from redis.retry import Retry

import mummy

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
HEARTBEAT = '{"type":"heartbeat"}'
NOT_PUBLISHED = '{"type":"error","error":"not published: Redis is unavailable"}'
BUCKETS = 30
READ_S = 0.1  # how long the subscriber thread waits for Redis before it looks for changes
BACKOFF_S = (0.1, 5.0)  # first and longest wait before reconnecting to Redis

log = logging.getLogger("advanced_websockets")


@dataclass(eq=False, slots=True)
class Channel:
    """One channel's sockets in this process. Until Redis confirms the subscription on the
    current connection (`confirmed`), a new socket waits in `waiting` for its first
    heartbeat, and gets no message."""

    sockets: set[mummy.WebSocket] = field(default_factory=set)
    waiting: set[mummy.WebSocket] = field(default_factory=set)
    confirmed: bool = False


class Hub:
    """The channels of this process, which of them gained their first or lost their last
    socket since the subscriber thread last looked, and the heartbeat buckets.

    Any thread may call any method; `lock` guards every field. Only the subscriber thread
    removes a channel (in `still_wanted`), so its SUBSCRIBE and UNSUBSCRIBE commands follow
    the channels one by one. A socket's first heartbeat is sent under the lock, so that it
    comes before any message `deliver` sends to it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.channels: dict[str, Channel] = {}
        self.changed: set[str] = set()
        self.buckets: list[set[mummy.WebSocket]] = [set() for _ in range(BUCKETS)]

    def join(self, websocket: mummy.WebSocket, name: str) -> None:
        with self.lock:
            channel = self.channels.get(name)
            if channel is None:
                channel = self.channels[name] = Channel()
                self.changed.add(name)
            channel.sockets.add(websocket)
            if channel.confirmed:
                self._greet(websocket)
            else:
                channel.waiting.add(websocket)

    def leave(self, websocket: mummy.WebSocket, name: str) -> None:
        with self.lock:
            channel = self.channels.get(name)
            if channel is not None:
                channel.sockets.discard(websocket)
                channel.waiting.discard(websocket)
                if not channel.sockets:
                    self.changed.add(name)
            self.buckets[hash(websocket) % BUCKETS].discard(websocket)

    def _greet(self, websocket: mummy.WebSocket) -> None:
        """With the lock held: the first heartbeat, then one every period."""
        self.buckets[hash(websocket) % BUCKETS].add(websocket)
        websocket.send(HEARTBEAT)

    def take_changes(self) -> set[str]:
        with self.lock:
            changed, self.changed = self.changed, set()
        return changed

    def take_all(self) -> set[str]:
        """Every channel, for a new connection to Redis (which makes pending changes moot)."""
        with self.lock:
            self.changed.clear()
            return set(self.channels)

    def still_wanted(self, name: str) -> bool:
        """Whether the channel has sockets; if it has none, it is forgotten."""
        with self.lock:
            channel = self.channels.get(name)
            if channel is None:
                return False
            if channel.sockets:
                return True
            del self.channels[name]
            return False

    def confirm(self, name: str) -> None:
        """Redis is subscribed: greet the sockets that waited for it."""
        with self.lock:
            channel = self.channels.get(name)
            if channel is not None:
                channel.confirmed = True
                for websocket in channel.waiting:
                    self._greet(websocket)
                channel.waiting.clear()

    def connection_lost(self) -> None:
        """Sockets that join from now on wait for the next connection's confirmation."""
        with self.lock:
            for channel in self.channels.values():
                channel.confirmed = False

    def deliver(self, name: str, text: str) -> None:
        with self.lock:
            channel = self.channels.get(name)
            sockets = list(channel.sockets - channel.waiting) if channel is not None else []
        # send() only queues the frame, so a slow subscriber holds up no one.
        for websocket in sockets:
            websocket.send(text)

    def bucket(self, index: int) -> list[mummy.WebSocket]:
        with self.lock:
            return list(self.buckets[index])


class Subscriber:
    """The thread that owns this process's PubSub: no other thread touches it or the
    fields below, which describe its current connection."""

    def __init__(self, hub: Hub, client: redis.Redis) -> None:
        self.hub = hub
        self.client = client
        self.subscribed: set[str] = set()  # SUBSCRIBE sent, and no UNSUBSCRIBE since
        self.unanswered: Counter[str] = Counter()  # SUBSCRIBEs whose reply is still to come
        self.heard_from_redis = False

    def run(self) -> None:
        delay = BACKOFF_S[0]
        while True:
            pubsub = self.client.pubsub()
            self.subscribed.clear()
            self.unanswered.clear()
            self.heard_from_redis = False
            try:
                self.listen(pubsub)
            except redis.RedisError as error:
                self.hub.connection_lost()
                if self.heard_from_redis:
                    delay = BACKOFF_S[0]
                log.warning("Redis connection lost (%s); reconnecting in %.1f s", error, delay)
            finally:
                pubsub.close()
            time.sleep(delay)
            delay = min(2 * delay, BACKOFF_S[1])

    def listen(self, pubsub: PubSub) -> None:
        """Follow the hub's channels and deliver what Redis sends, until the connection
        fails (a RedisError)."""
        changed = self.hub.take_all()
        while True:
            self.follow(pubsub, changed | self.hub.take_changes())
            changed = set()
            message = pubsub.get_message(timeout=READ_S)
            if message is not None:
                self.heard_from_redis = True
                self.handle(message)

    def follow(self, pubsub: PubSub, names: set[str]) -> None:
        join, leave = [], []
        for name in names:
            if self.hub.still_wanted(name):
                if name not in self.subscribed:
                    join.append(name)
            elif name in self.subscribed:
                leave.append(name)
        if join:
            pubsub.subscribe(*join)
            self.subscribed.update(join)
            self.unanswered.update(join)
        if leave:
            pubsub.unsubscribe(*leave)
            self.subscribed.difference_update(leave)

    def handle(self, message: dict[str, Any]) -> None:
        name = message["channel"].decode()
        if message["type"] == "message":
            self.hub.deliver(name, message["data"].decode("utf-8", "replace"))
        elif message["type"] == "subscribe":
            # A channel left and joined again has two replies coming: the second counts.
            self.unanswered[name] -= 1
            if self.unanswered[name] <= 0:
                del self.unanswered[name]
                if name in self.subscribed:
                    self.hub.confirm(name)


hub = Hub()
# One retry: after Redis restarts, the pool's idle connection is dead and the retry
# reconnects; while Redis is down, a publish fails at once.
publisher = redis.Redis.from_url(REDIS_URL, retry=Retry(NoBackoff(), 1), socket_timeout=5)


def channel_of(path: str) -> str | None:
    """The channel a path names: one non-empty segment."""
    name = path[1:]
    return name if name and "/" not in name else None


def publish(channel: str, text: str | bytes) -> bool:
    """Publish through Redis; False if Redis cannot be reached."""
    try:
        publisher.publish(channel, text)
    except (redis.ConnectionError, redis.TimeoutError) as error:
        log.warning("cannot publish to %r: %s", channel, error)
        return False
    return True


def handler(request: mummy.Request) -> None:
    channel = channel_of(request.path)
    if channel is None:
        request.respond(404, {"Content-Type": "text/plain"}, "Use /<channel>\n")
    elif request.method == "GET":
        request.upgrade_to_websocket()  # OPEN subscribes it: the channel is in its request
    elif request.method == "POST":
        if publish(channel, request.body):
            request.respond(200, {"Content-Type": "text/plain"}, "Published")
        else:
            headers = {"Content-Type": "text/plain", "Retry-After": "1"}
            request.respond(503, headers, "Not published: Redis is unavailable\n")
    else:
        request.respond(405, {"Allow": "GET, POST"})


def websocket_handler(
    websocket: mummy.WebSocket, event: mummy.Event, message: mummy.Message | None
) -> None:
    channel = channel_of(websocket.request.path)
    assert channel is not None  # only such paths are upgraded
    if event is mummy.Event.OPEN:
        hub.join(websocket, channel)
    elif event is mummy.Event.MESSAGE and message is not None:
        if message.kind is mummy.MessageKind.TEXT:
            assert isinstance(message.data, str)
            if not publish(channel, message.data):
                websocket.send(NOT_PUBLISHED)
    elif event is mummy.Event.CLOSE:
        hub.leave(websocket, channel)


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
    # No retry inside redis-py: a lost connection reaches Subscriber.run, which resubscribes.
    subscriber = Subscriber(hub, redis.Redis.from_url(REDIS_URL, retry=Retry(NoBackoff(), 0)))
    threading.Thread(target=subscriber.run, name="redis-subscriber", daemon=True).start()
    threading.Thread(target=send_heartbeats, args=(period,), name="heartbeat", daemon=True).start()
    server.serve(int(os.environ.get("PORT", "8080")))
