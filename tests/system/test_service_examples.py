"""The examples that need a real service, each run as its own process on a free port:
advanced_websockets on Redis (two processes sharing channels; a Redis of the test's own,
killed and started again under it) and postgres_database on PostgreSQL (a new database
for each test). The services come from tests/services.py."""

import http.client
import json
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import redis
from psycopg import sql
from websockets.sync.client import ClientConnection

from tests.servers import HANG_S, free_port, wait_for
from tests.services import database_url, redis_url
from tests.system.test_websocket_examples import Example, recv_until

HEARTBEAT = '{"type":"heartbeat"}'


@pytest.fixture
def example() -> Iterator[Callable[..., Example]]:
    started: list[Example] = []

    def start(name: str, **env: str) -> Example:
        started.append(Example(name, **env))
        return started[-1]

    yield start
    for ex in started:
        ex.kill()


def stop_cleanly(ex: Example) -> None:
    """SIGTERM: the example exits 0, and printed no traceback."""
    output = ex.stop_cleanly()
    assert "Traceback" not in output, output


def next_text(ws: ClientConnection) -> str | bytes:
    """The next message that is not a heartbeat (which may come at any time)."""
    while (message := ws.recv(timeout=HANG_S)) == HEARTBEAT:
        pass
    return message


def subscribers(url: str, channel: str) -> int:
    """How many connections Redis has subscribed to `channel` (one per server process)."""
    with redis.Redis.from_url(url, socket_timeout=HANG_S) as client:
        return int(dict(client.pubsub_numsub(channel))[channel.encode()])


def redis_cli_publish(url: str, channel: str, text: str) -> int:
    """`redis-cli PUBLISH`; returns how many connections Redis delivered it to."""
    cli = shutil.which("redis-cli")
    assert cli, "redis-cli is needed by the tests (Debian package redis-tools)"
    argv = [cli, "-u", url, "PUBLISH", channel, text]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=HANG_S, check=True)
    return int(done.stdout)


def test_advanced_websockets_shares_channels_between_processes(example) -> None:
    url = redis_url()
    channel, other = f"news-{uuid.uuid4().hex}", f"sports-{uuid.uuid4().hex}"
    a = example("advanced_websockets", REDIS_URL=url, HEARTBEAT_SECONDS="1")
    b = example("advanced_websockets", REDIS_URL=url)
    assert a.get("/")[0] == 404
    assert a.get("/a/b")[0] == 404
    assert a.get(f"/{channel}", "PUT")[0] == 405
    with a.ws(f"/{channel}") as on_a, b.ws(f"/{channel}") as on_b, b.ws(f"/{other}") as fan:
        # The first message is the heartbeat, once Redis has the subscription.
        for ws in (on_a, on_b, fan):
            assert ws.recv(timeout=HANG_S) == HEARTBEAT
        assert subscribers(url, channel) == 2
        # A POST to B reaches both processes' sockets.
        assert b.get(f"/{channel}", "POST", b"posted on b") == (200, b"Published")
        assert next_text(on_a) == next_text(on_b) == "posted on b"
        # So does what any Redis client publishes.
        assert redis_cli_publish(url, channel, "from redis-cli") == 2
        assert next_text(on_a) == next_text(on_b) == "from redis-cli"
        # A client's message on A reaches the subscriber on B (and the sender).
        on_a.send("sent on a")
        assert next_text(on_b) == next_text(on_a) == "sent on a"
        # A channel's messages go to its own sockets only: B's process gets both messages,
        # in this order, so had it given "goal" to on_b, on_b would see it before "marker".
        assert a.get(f"/{other}", "POST", b"goal") == (200, b"Published")
        assert a.get(f"/{channel}", "POST", b"marker") == (200, b"Published")
        assert next_text(fan) == "goal"
        assert next_text(on_a) == next_text(on_b) == "marker"
        # Heartbeats keep coming (on A, once a second); mummy answers pings itself.
        recv_until(on_a, HEARTBEAT)
        recv_until(on_a, HEARTBEAT)
        assert on_a.ping(b"").wait(HANG_S)
        on_b.close()
        # B's last socket on the channel is gone: B's process unsubscribes.
        assert wait_for(lambda: subscribers(url, channel) == 1), "B never unsubscribed"
        assert b.get(f"/{channel}", "POST", b"after") == (200, b"Published")
        assert next_text(on_a) == "after"
    assert wait_for(lambda: subscribers(url, channel) == subscribers(url, other) == 0)
    stop_cleanly(a)
    stop_cleanly(b)


class RedisServer:
    """A redis-server of the test's own on a port that stays its own: `kill()` and
    `start()` again are a Redis restart (with no persistence: it comes back empty)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.log = directory / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        server = shutil.which("redis-server")
        assert server, "redis-server is needed by the tests (Debian package redis-server)"
        argv = [server, "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.directory)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        proc = self.proc
        assert wait_for(lambda: proc.poll() is not None or self.pongs()), self.log.read_text()
        assert proc.poll() is None, self.log.read_text()

    def pongs(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_timeout=1) as client:
                return bool(client.ping())
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def own_redis(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


def test_advanced_websockets_resubscribes_when_redis_restarts(example, own_redis) -> None:
    url = own_redis.url
    ex = example("advanced_websockets", REDIS_URL=url)
    with ex.ws("/kept") as kept, ex.ws("/gone") as gone:
        for ws in (kept, gone):
            assert ws.recv(timeout=HANG_S) == HEARTBEAT
        gone.close()
        assert wait_for(lambda: subscribers(url, "gone") == 0), "/gone was never unsubscribed"
        own_redis.kill()
        # While Redis is down: a POST is refused, a client's message comes back as an error.
        status, body = ex.get("/kept", "POST", b"lost")
        assert (status, body) == (503, b"Not published: Redis is unavailable\n")
        kept.send("lost too")
        assert json.loads(next_text(kept)) == {
            "type": "error",
            "error": "not published: Redis is unavailable",
        }
        with ex.ws("/late") as late:  # a channel first asked for while Redis is down
            own_redis.start()
            # Its first heartbeat comes once the example has reconnected and subscribed.
            assert late.recv(timeout=HANG_S) == HEARTBEAT
            assert wait_for(lambda: subscribers(url, "kept") == 1), "/kept not resubscribed"
            assert subscribers(url, "late") == 1
            assert subscribers(url, "gone") == 0  # it has no socket any more
            assert redis_cli_publish(url, "kept", "back") == 1
            assert next_text(kept) == "back"
            assert ex.get("/late", "POST", b"late news") == (200, b"Published")
            assert next_text(late) == "late news"
    stop_cleanly(ex)


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """The URL of a new, empty database, dropped after the test."""
    admin = database_url()
    name = f"mummy_test_{uuid.uuid4().hex}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlsplit(admin)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))


def http_get(port: int, target: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_S)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def counter_table(url: str) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass('counter')::text").fetchone()
    assert row is not None
    return row[0]


def test_postgres_database_creates_its_table_and_counts_every_increment(
    example, fresh_database
) -> None:
    assert counter_table(fresh_database) is None
    ex = example("postgres_database", DATABASE_URL=fresh_database)
    assert counter_table(fresh_database) == "counter"
    assert http_get(ex.port, "/get") == (200, "Count: 0\n")
    clients, each = 40, 10
    start = threading.Barrier(clients)
    failures: list[str] = []

    def increment() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", ex.port, timeout=HANG_S)
        try:
            start.wait(HANG_S)
            for _ in range(each):
                conn.request("GET", "/inc")
                response = conn.getresponse()
                answer = (response.status, response.read())
                if answer != (200, b"Done"):
                    failures.append(repr(answer))
        finally:
            conn.close()

    threads = [threading.Thread(target=increment) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HANG_S)
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert failures == []
    assert http_get(ex.port, "/get") == (200, f"Count: {clients * each}\n")
    assert http_get(ex.port, "/nope")[0] == 404
    stop_cleanly(ex)
    # Started again, it keeps the table it finds, and the count.
    again = example("postgres_database", DATABASE_URL=fresh_database)
    assert http_get(again.port, "/get") == (200, f"Count: {clients * each}\n")
    assert http_get(again.port, "/inc") == (200, "Done")
    assert http_get(again.port, "/get") == (200, f"Count: {clients * each + 1}\n")
    stop_cleanly(again)


def test_postgres_database_answers_503_when_the_database_is_gone(example, fresh_database) -> None:
    ex = example("postgres_database", DATABASE_URL=fresh_database)
    assert http_get(ex.port, "/inc") == (200, "Done")
    name = urlsplit(fresh_database).path[1:]
    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    # Its open connections were cut and no new one can be made: 503, never a 500 or a hang.
    for target in ("/get", "/inc", "/get"):
        status, body = http_get(ex.port, target)
        assert status == 503, body
        assert body in (
            "The database is unavailable\n",
            "No database connection within 5.0 s: all busy, or none can be opened\n",
        )
    stop_cleanly(ex)
