"""Soak test: mixed load with injected faults against a mummy server in a subprocess.

The server (bench/apps/soak_app.py) runs on its own interpreter so that its open
file descriptors, threads and RSS can be read from /proc/PID while client threads
here send, until the time is up:

- keep-alive GETs (some pipelined), GETs with gzip-compressed answers, POSTs with
  Content-Length and chunked bodies (echoed), WebSocket echo sessions, and requests
  whose handler raises (answered 500);
- faults: disconnects mid-request and mid-response, resets (SO_LINGER 0) at every
  stage, oversized heads (431), malformed requests (400, 501, 505) and slowloris
  clients (408).

Checks, each of which makes the exit status 1 when it fails:
1. every well-formed request was answered, and answered correctly;
2. no 5xx answer except from the handler that raises;
3. the server's fd and thread counts come back to their starting values once the
   load stops.
Reported only: RSS every 30 s (growth after the warm-up is flagged), request counts
by kind, how the faults were answered, and error lines in the server's log.

Run: .venv-ft/bin/python bench/soak.py [--seconds 600] [--clients 8] [--json PATH]
(or `./bench/run --only soak`, which records its result with the other benchmarks'). It
runs on the interpreter under test (it needs `websockets`), not as an orchestrator. The
server's output goes to bench/results/logs/soak-server.log.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import select
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.procs import Server, ServerFailed, free_port
from websockets.sync.client import connect as ws_connect

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "bench" / "apps" / "soak_app.py"
IO_TIMEOUT = 15.0  # every socket operation of a client; nothing here waits longer
HOST = b"Host: soak\r\n"
# As in bench/apps/soak_app.py: GET /text?n=N answers text_body(N), /big BIG_LEN bytes.
ALPHABET = b"abcdefghijklmnopqrstuvwxyz0123456789 \n"
BIG_LEN = 2 * 1024 * 1024
HEADER_TIMEOUT = 2.0  # the app's header_timeout
MAX_SAMPLES = 20  # failure messages kept per check

WELL_FORMED = ("get", "get_gzip", "post", "post_chunked", "websocket", "raise")
FAULTS = (
    "abort_mid_request",
    "abort_mid_response",
    "reset",
    "oversized_head",
    "malformed",
    "slowloris",
)
WEIGHTS = {
    "get": 30,
    "get_gzip": 10,
    "post": 15,
    "post_chunked": 10,
    "websocket": 10,
    "raise": 3,
    "abort_mid_request": 4,
    "abort_mid_response": 3,
    "reset": 4,
    "oversized_head": 3,
    "malformed": 5,
}
# (request, the status it must get); the connection must be closed after it.
MALFORMED = [
    (b"GET / HTTP/1.1\r\n" + HOST + b"Bad Header\r\n\r\n", 400),
    (b"GET /\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + HOST + b"X: a\nY: b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + HOST + b"X: a\r\n folded\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    (
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
        400,
    ),
    (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    (b"GET / HTTP/2.0\r\n" + HOST + b"\r\n", 505),
    (b"GET /%zz HTTP/1.1\r\n" + HOST + b"\r\n", 400),
]


class Mismatch(Exception):
    """The server's answer was not the one expected."""


def text_body(n: int) -> bytes:
    return (ALPHABET * (n // len(ALPHABET) + 1))[:n]


# --- the server process ---------------------------------------------------------


def start_server(python: str) -> tuple[Server, int]:
    """bench/apps/soak_app.py on `python`, answering; (server, port)."""
    port = free_port()
    env = {"PYTHONPATH": os.environ.get("PYTHONPATH") or str(ROOT)}
    server = Server([python, str(APP), str(port)], "soak-server", ROOT, env)
    try:
        server.wait_ready("http1", port)
    except ServerFailed:
        server.stop()
        raise
    return server, port


# --- what the clients saw ---------------------------------------------------------


class Tally:
    """Counts and samples from every client thread; one lock guards all of it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ok: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.failures: list[str] = []  # well-formed requests answered wrongly or not at all
        self.fault_surprises: list[str] = []  # faults answered otherwise than expected
        self.stray_5xx: list[str] = []

    def passed(self, kind: str, n: int = 1) -> None:
        with self.lock:
            self.ok[kind] += n

    def fail(self, kind: str, exc: BaseException) -> None:
        message = f"{kind}: {type(exc).__name__}: {exc}"
        with self.lock:
            self.failed[kind] += 1
            samples = self.failures if kind in WELL_FORMED else self.fault_surprises
            if len(samples) < MAX_SAMPLES:
                samples.append(message)

    def saw_status(self, kind: str, status: int, expected: int) -> None:
        """A 5xx is stray unless it is the answer the request must get (500 from the
        raising handler, 501 and 505 for some malformed requests)."""
        if status >= 500 and status != expected:
            with self.lock:
                if len(self.stray_5xx) < MAX_SAMPLES:
                    self.stray_5xx.append(f"{kind}: {status}, expected {expected}")
                self.failed["stray_5xx"] += 1

    def total_ok(self) -> int:
        with self.lock:
            return sum(self.ok.values())


class HttpClient:
    """One keep-alive connection with a response reader that keeps what it read
    past the end of one response for the next (pipelining)."""

    def __init__(self, port: int, tally: Tally, kind: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.buf = b""
        self.tally = tally
        self.kind = kind

    def close(self) -> None:
        self.sock.close()

    def _more(self) -> None:
        data = self.sock.recv(262144)
        if not data:
            raise Mismatch(f"connection closed mid-response after {len(self.buf)} bytes")
        self.buf += data

    def response(self, expected: int = 200) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            self._more()
        body, self.buf = self.buf[:length], self.buf[length:]
        self.tally.saw_status(self.kind, status, expected)
        return status, headers, body

    def expect(self, status: int, body: bytes | None = None) -> dict[str, str]:
        got, headers, data = self.response(status)
        if got != status:
            raise Mismatch(f"status {got}, expected {status}: {data[:200]!r}")
        if body is not None and data != body:
            raise Mismatch(f"wrong body: {len(data)} bytes, expected {len(body)}")
        return headers

    def read_until_close(self) -> bytes:
        data = self.buf
        while chunk := self.sock.recv(65536):
            data += chunk
        return data


def get(port: int, tally: Tally, rng: random.Random) -> None:
    client = HttpClient(port, tally, "get")
    try:
        for _ in range(rng.randint(1, 20)):
            n = rng.choice((1, 1, 1, 3))  # sometimes three pipelined
            client.sock.sendall((b"GET /hello HTTP/1.1\r\n" + HOST + b"\r\n") * n)
            for _ in range(n):
                client.expect(200, b"hello")
                tally.passed("get")
    finally:
        client.close()


def get_gzip(port: int, tally: Tally, rng: random.Random) -> None:
    client = HttpClient(port, tally, "get_gzip")
    try:
        for _ in range(rng.randint(1, 5)):
            n = rng.randint(0, 100_000)
            client.sock.sendall(
                b"GET /text?n=%d HTTP/1.1\r\n%sAccept-Encoding: gzip\r\n\r\n" % (n, HOST)
            )
            status, headers, body = client.response()
            if headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            if status != 200 or body != text_body(n):
                raise Mismatch(f"GET /text?n={n}: status {status}, {len(body)} bytes")
            tally.passed("get_gzip")
    finally:
        client.close()


def post(port: int, tally: Tally, rng: random.Random) -> None:
    client = HttpClient(port, tally, "post")
    try:
        for _ in range(rng.randint(1, 5)):
            body = rng.randbytes(rng.choice((0, rng.randint(1, 1000), rng.randint(1, 200_000))))
            head = b"POST /echo HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n" % (HOST, len(body))
            client.sock.sendall(head + body)
            client.expect(200, body)
            tally.passed("post")
    finally:
        client.close()


def post_chunked(port: int, tally: Tally, rng: random.Random) -> None:
    client = HttpClient(port, tally, "post_chunked")
    try:
        for _ in range(rng.randint(1, 3)):
            body = rng.randbytes(rng.randint(0, 100_000))
            client.sock.sendall(
                b"POST /echo HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\n" % HOST
            )
            pos = 0
            while pos < len(body):
                size = rng.randint(1, 20_000)
                chunk = body[pos : pos + size]
                client.sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                pos += size
            client.sock.sendall(b"0\r\nX-Trailer: t\r\n\r\n")
            client.expect(200, body)
            tally.passed("post_chunked")
    finally:
        client.close()


def websocket(port: int, tally: Tally, rng: random.Random) -> None:
    with ws_connect(
        f"ws://127.0.0.1:{port}/ws",
        proxy=None,
        open_timeout=IO_TIMEOUT,
        close_timeout=IO_TIMEOUT,
        ping_interval=None,
    ) as ws:
        for _ in range(rng.randint(1, 10)):
            size = rng.randint(0, 30_000)
            message: str | bytes = (
                rng.randbytes(size) if rng.random() < 0.5 else text_body(size).decode()
            )
            ws.send(message)
            echo = ws.recv(timeout=IO_TIMEOUT)
            if echo != message:
                raise Mismatch(f"WebSocket echo differs ({len(echo)} vs {len(message)})")
            tally.passed("websocket")


def raising(port: int, tally: Tally, rng: random.Random) -> None:
    client = HttpClient(port, tally, "raise")
    try:
        client.sock.sendall(b"GET /raise HTTP/1.1\r\n" + HOST + b"\r\n")
        client.expect(500)
        # The connection survives a handler that raised.
        client.sock.sendall(b"GET /hello HTTP/1.1\r\n" + HOST + b"\r\n")
        client.expect(200, b"hello")
        tally.passed("raise")
    finally:
        client.close()


def partial_request(rng: random.Random) -> bytes:
    body = rng.randbytes(5000)
    whole = rng.choice(
        (
            b"GET /hello HTTP/1.1\r\n" + HOST + b"X-Padding: " + b"p" * 500 + b"\r\n\r\n",
            b"POST /echo HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s" % (HOST, len(body), body),
            b"POST /echo HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\n1388\r\n%s\r\n0\r\n\r\n"
            % (HOST, body),
        )
    )
    return whole[: rng.randint(1, len(whole) - 1)]


def abort_mid_request(port: int, tally: Tally, rng: random.Random) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(partial_request(rng))
        time.sleep(rng.choice((0, 0, 0.01, 0.1)))
    tally.passed("abort_mid_request")


def abort_mid_response(port: int, tally: Tally, rng: random.Random) -> None:
    client = HttpClient(port, tally, "abort_mid_response")
    try:
        client.sock.sendall(b"GET /big HTTP/1.1\r\n" + HOST + b"\r\n")
        client._more()
        if not client.buf.startswith(b"HTTP/1.1 200 "):
            raise Mismatch(f"GET /big answered {client.buf[:40]!r}")
        if rng.random() < 0.5:
            client._more()
    finally:
        client.close()
    tally.passed("abort_mid_response")


def reset(port: int, tally: Tally, rng: random.Random) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        stage = rng.randrange(4)
        if stage == 1:
            sock.sendall(partial_request(rng))
        elif stage == 2:  # while the handler runs
            sock.sendall(b"GET /slow?ms=50 HTTP/1.1\r\n" + HOST + b"\r\n")
            time.sleep(0.01)
        elif stage == 3:  # while the response is being sent
            sock.sendall(b"GET /big HTTP/1.1\r\n" + HOST + b"\r\n")
            sock.recv(1000)
    finally:
        sock.close()
    tally.passed("reset")


def oversized_head(port: int, tally: Tally, rng: random.Random) -> None:
    client = HttpClient(port, tally, "oversized_head")
    try:
        size = rng.randint(8200, 20_000)
        client.sock.sendall(b"GET / HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * size + b"\r\n\r\n")
        client.expect(431)
        client.read_until_close()
    finally:
        client.close()
    tally.passed("oversized_head")


def malformed(port: int, tally: Tally, rng: random.Random) -> None:
    data, status = rng.choice(MALFORMED)
    client = HttpClient(port, tally, "malformed")
    try:
        client.sock.sendall(data)
        client.expect(status)
        if rest := client.read_until_close():
            raise Mismatch(f"more after the {status}: {rest[:100]!r}")
    finally:
        client.close()
    tally.passed("malformed")


def slowloris(port: int, tally: Tally, rng: random.Random) -> None:
    """An endless head, a line every 0.3 s: cut off with 408 after header_timeout."""
    client = HttpClient(port, tally, "slowloris")
    try:
        client.sock.sendall(b"GET /hello HTTP/1.1\r\n" + HOST)
        until = time.monotonic() + HEADER_TIMEOUT + 10
        while time.monotonic() < until:
            readable, _, _ = select.select([client.sock], [], [], 0.3)
            if readable:
                break
            try:
                client.sock.sendall(b"X-Slow: %d\r\n" % rng.randrange(1000))
            except OSError:
                break
        client.expect(408)
    finally:
        client.close()
    tally.passed("slowloris")


KINDS: dict[str, Callable[[int, Tally, random.Random], None]] = {
    "get": get,
    "get_gzip": get_gzip,
    "post": post,
    "post_chunked": post_chunked,
    "websocket": websocket,
    "raise": raising,
    "abort_mid_request": abort_mid_request,
    "abort_mid_response": abort_mid_response,
    "reset": reset,
    "oversized_head": oversized_head,
    "malformed": malformed,
    "slowloris": slowloris,
}


def client_loop(
    port: int, tally: Tally, seed: int, deadline: float, kinds: list[str], weights: list[int]
) -> None:
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        kind = rng.choices(kinds, weights)[0]
        try:
            KINDS[kind](port, tally, rng)
        except Exception as exc:
            tally.fail(kind, exc)


# --- the run --------------------------------------------------------------------------


def rss_mb(server: Server) -> float:
    return server.status_field("VmRSS") / 1024


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def rss_table(samples: list[tuple[float, float, int, int, int]]) -> list[str]:
    """One row per 30 s (and the last sample): elapsed, RSS, fds, threads, requests."""
    rows = ["   t (s)   RSS (MB)   fds   threads       done   done/s"]
    last_t, last_n, next_row = 0.0, 0, 0.0
    for i, (t, rss, fds, threads, done) in enumerate(samples):
        if t + 1e-9 >= next_row or i == len(samples) - 1:
            rate = f"{(done - last_n) / (t - last_t):7.0f}" if t - last_t >= 1 else "      -"
            rows.append(f"{t:8.0f} {rss:10.1f} {fds:5d} {threads:9d} {done:10d} {rate}")
            last_t, last_n = t, done
            next_row = (int(t // 30) + 1) * 30
    return rows


def scan_log(path: Path) -> dict[str, Any]:
    """The server's log, less the tracebacks that GET /raise is there to cause."""
    raised, other = 0, []
    expected = ("Traceback (most recent call last):", "RuntimeError: raised on purpose")
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("handler raised on GET /raise"):
            raised += 1
        elif line and not line.startswith((" ", *expected)):
            other.append(line)
    return {"raising_handler_tracebacks": raised, "other_lines": other[:MAX_SAMPLES]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    server, port = start_server(args.python)
    log_path = server.log_path
    tally = Tally()
    samples: list[tuple[float, float, int, int, int]] = []
    try:
        time.sleep(0.5)
        start_fds, start_threads = server.fds(), server.status_field("Threads")
        start = time.monotonic()
        deadline = start + args.seconds
        kinds = list(WEIGHTS)
        weights = [WEIGHTS[k] for k in kinds]
        clients = [
            threading.Thread(
                target=client_loop,
                args=(port, tally, args.seed + i, deadline, kinds, weights),
                name=f"soak-client-{i}",
                daemon=True,
            )
            for i in range(args.clients)
        ]
        clients += [
            threading.Thread(
                target=client_loop,
                args=(port, tally, args.seed + 1000 + i, deadline, ["slowloris"], [1]),
                name=f"soak-slowloris-{i}",
                daemon=True,
            )
            for i in range(2)
        ]
        for thread in clients:
            thread.start()
        peak_fds = peak_threads = 0
        while time.monotonic() < deadline and server.proc.poll() is None:
            fds, threads = server.fds(), server.status_field("Threads")
            peak_fds, peak_threads = max(peak_fds, fds), max(peak_threads, threads)
            samples.append(
                (time.monotonic() - start, rss_mb(server), fds, threads, tally.total_ok())
            )
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        # Every client operation is bounded by IO_TIMEOUT (slowloris by header_timeout + 10 s).
        for thread in clients:
            thread.join(timeout=max(1.0, deadline + 3 * IO_TIMEOUT - time.monotonic()))
        stuck = [t.name for t in clients if t.is_alive()]
        alive = server.proc.poll() is None
        if alive:
            threads = server.status_field("Threads")
            now = time.monotonic() - start
            samples.append((now, rss_mb(server), server.fds(), threads, tally.total_ok()))
            # Closed connections linger up to 2 s; idle keep-alive ones time out in 5 s.
            back = wait_until(
                lambda: (
                    server.fds() <= start_fds and server.status_field("Threads") <= start_threads
                ),
                30,
            )
            end_fds, end_threads = server.fds(), server.status_field("Threads")
        else:
            back, end_fds, end_threads = False, -1, -1
    finally:
        exit_code = server.stop()
    warmup = min(120.0, args.seconds * 0.2)
    after = [rss for t, rss, *_ in samples if t >= warmup]
    # Means over the first and the last 60 s after the warm-up, not single noisy samples.
    window = max(1, min(60, len(after) // 3))
    start_rss = sum(after[:window]) / window if after else 0.0
    end_rss = sum(after[-window:]) / window if after else 0.0
    growth = end_rss - start_rss
    well_formed = {k: {"ok": tally.ok[k], "failed": tally.failed[k]} for k in WELL_FORMED}
    faults = {k: {"as_expected": tally.ok[k], "otherwise": tally.failed[k]} for k in FAULTS}
    correct = alive and not stuck and not any(tally.failed[k] for k in WELL_FORMED)
    return {
        "python": args.python,
        "seconds": args.seconds,
        "clients": args.clients,
        "server_log": str(log_path),
        "server_exit_code": exit_code,
        "well_formed": well_formed,
        "faults": faults,
        "failures": tally.failures,
        "fault_surprises": tally.fault_surprises,
        "stray_5xx": tally.stray_5xx,
        "stuck_clients": stuck,
        "fds": {"start": start_fds, "peak": peak_fds, "end": end_fds},
        "threads": {"start": start_threads, "peak": peak_threads, "end": end_threads},
        "rss_table": rss_table(samples),
        "rss_mb": {
            "start": samples[0][1] if samples else 0.0,
            "after_warmup": start_rss,
            "end": end_rss,
            "growth_after_warmup": growth,
            "warmup_seconds": warmup,
            "window_seconds": window,
        },
        # Growth after the warm-up beyond 10 % and 5 MB is worth a look, not a failure.
        "rss_growth_flag": bool(after) and growth > max(5.0, 0.1 * start_rss),
        "log": scan_log(log_path),
        "checks": {
            "well_formed_answered_correctly": correct,
            "no_stray_5xx": tally.failed["stray_5xx"] == 0,
            "fds_and_threads_back": back,
        },
    }


def report(result: dict[str, Any]) -> None:
    print(f"soak: {result['seconds']} s, {result['clients']} clients + 2 slowloris, ", end="")
    print(f"server on {result['python']}")
    print("\nwell-formed requests (ok / failed):")
    for kind, c in result["well_formed"].items():
        print(f"  {kind:14} {c['ok']:9d} / {c['failed']}")
    print("faults (answered as expected / otherwise):")
    for kind, c in result["faults"].items():
        print(f"  {kind:18} {c['as_expected']:6d} / {c['otherwise']}")
    print("\nserver RSS over time:")
    for row in result["rss_table"]:
        print("  " + row)
    rss = result["rss_mb"]
    print(
        f"  RSS (mean of {rss['window_seconds']} samples) after the {rss['warmup_seconds']:.0f} s "
        f"warm-up {rss['after_warmup']:.1f} MB, at the end {rss['end']:.1f} MB "
        f"(growth {rss['growth_after_warmup']:+.1f} MB)"
        + ("  << FLAG: RSS grew after warm-up" if result["rss_growth_flag"] else "")
    )
    fds, threads = result["fds"], result["threads"]
    print(f"fds: start {fds['start']}, peak {fds['peak']}, after the load {fds['end']}")
    print(f"threads: start {threads['start']}, peak {threads['peak']}, after {threads['end']}")
    log = result["log"]
    print(
        f"server log: {log['raising_handler_tracebacks']} tracebacks from GET /raise, "
        f"{len(log['other_lines'])} other lines ({result['server_log']}); "
        f"exit code {result['server_exit_code']}"
    )
    for name in ("failures", "fault_surprises", "stray_5xx", "stuck_clients"):
        for line in result[name]:
            print(f"  {name}: {line}")
    for line in log["other_lines"]:
        print(f"  log: {line}")
    print()
    for check, passed in result["checks"].items():
        print(f"{'PASS' if passed else 'FAIL'}  {check}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="load duration")
    parser.add_argument("--clients", type=int, default=8, help="client threads (+2 slowloris)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--python", default=sys.executable, help="the server's interpreter")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    result = run(args)
    report(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if all(result["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
