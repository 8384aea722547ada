"""The load generators, each as a Workload: wrk (HTTP/1.1), h2load (h2c, prior knowledge)
and the Node.js `ws` client in bench/ws-client, with the parsers of their output (the
streams driver's clients, bench/sse-client.py and curl, are in bench/drivers/streams.py)."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from harness import BENCH, HOST
from harness.machine import first_line
from harness.runner import Running, Sample, Workload

WS_CLIENT = BENCH / "ws-client"
UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
UNIT_BYTES = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


def versions() -> dict[str, str]:
    found = {
        "wrk": first_line(["wrk", "-v"]),
        "h2load": first_line(["h2load", "--version"]),
        "node": first_line(["node", "--version"]),
        "curl": first_line(["curl", "--version"]),
    }
    ws = WS_CLIENT / "node_modules/ws/package.json"
    if ws.exists():
        found["ws (node)"] = json.loads(ws.read_text())["version"]
    return found


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


# wrk


def parse_wrk(output: str) -> dict[str, Any]:
    """req/s, p50/p99 (ms), requests, bytes read, socket errors and non-2xx/3xx."""
    parsed: dict[str, Any] = {}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", output):
        parsed["rps"] = float(m.group(1))
    for name, label in (("p50_ms", "50"), ("p99_ms", "99")):
        if m := re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.MULTILINE):
            parsed[name] = float(m.group(1)) * UNIT_MS[m.group(2)]
    if m := re.search(r"(\d+) requests in [\d.]+\w+, ([\d.]+)(B|KB|MB|GB|TB) read", output):
        parsed["requests"] = int(m.group(1))
        parsed["bytes_per_response"] = (
            float(m.group(2)) * UNIT_BYTES[m.group(3)] / max(1, int(m.group(1)))
        )
    if m := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        parsed["socket_errors"] = sum(int(x) for x in m.groups())
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        parsed["non_2xx"] = int(m.group(1))
    return parsed


def wrk(
    name: str,
    path: str,
    connections: int,
    *,
    threads: int = 2,
    headers: Mapping[str, str] | None = None,
    warmup_s: float = 1.0,
    params: Mapping[str, Any] | None = None,
) -> Workload:
    """`wrk -t<threads> -c<connections> -d<secs>s --latency [-H ...]` on `path`, after a
    warm-up run of the same command."""
    extra = [a for k, v in (headers or {}).items() for a in ("-H", f"{k}: {v}")]

    def command(port: int, seconds: float) -> list[str]:
        secs = max(1, round(seconds))  # wrk takes whole seconds
        return [
            *("wrk", f"-t{threads}", f"-c{connections}", f"-d{secs}s", "--latency", *extra),
            f"http://{HOST}:{port}{path}",
        ]

    def warmup(running: Running) -> None:
        subprocess.run(command(running.port, warmup_s), capture_output=True, timeout=60)

    def measure(running: Running, seconds: float) -> Sample:
        argv = command(running.port, seconds)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        metrics = parse_wrk(done.stdout)
        error = None if "rps" in metrics else f"no req/s in wrk's output: {done.stderr[-200:]!r}"
        return Sample(metrics, argv, error)

    settings = {"path": path, "connections": connections, "wrk_threads": threads}
    return Workload(name, {**settings, **(params or {})}, measure, warmup if warmup_s else None)


# h2load


def parse_h2load(output: str) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    if m := re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", output):
        parsed["rps"] = float(m.group(1))
    if m := re.search(
        r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed,"
        r" (\d+) errored, (\d+) timeout",
        output,
    ):
        keys = ("requests", "succeeded", "failed", "errored", "timeout")
        parsed.update(zip(keys, map(int, m.groups()), strict=True))
    if m := re.search(r"status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", output):
        parsed["non_2xx"] = sum(map(int, m.groups()))
    if m := re.search(r"Application protocol: (\S+)", output):
        parsed["protocol"] = m.group(1)
    return parsed


def request_log_stats(path: Path) -> dict[str, Any]:
    """p50/p99/max (ms) from h2load's --log-file (start, status, microseconds to the end
    of the response; a line per request of the timed phase). h2load 1.52 prints no
    percentiles. A request whose headers came during the warm-up is logged with status
    0: counted apart, not as an error."""
    times: list[float] = []
    no_status = non_2xx = 0
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 3:
            times.append(int(parts[2]) / 1e3)
            no_status += parts[1] == "0"
            non_2xx += int(parts[1]) >= 300
    if not times:
        return {}
    times.sort()
    return {
        "p50_ms": percentile(times, 0.50),
        "p99_ms": percentile(times, 0.99),
        "max_ms": times[-1],
        "logged": len(times),
        "no_status": no_status,
        "logged_non_2xx": non_2xx,
    }


def h2load(
    name: str, path: str, clients: int, streams: int, warmup_s: float = 1.0, **params: Any
) -> Workload:
    """`h2load -c<clients> -m<streams> -t1 -D<secs> --warm-up-time <warm-up>`: h2c with
    prior knowledge, clients x streams requests in flight."""

    def measure(running: Running, seconds: float) -> Sample:
        with tempfile.TemporaryDirectory(prefix="bench-h2load-") as tmp:
            log = Path(tmp) / "requests.tsv"
            argv = [
                *("h2load", f"-c{clients}", f"-m{streams}", "-t1", f"-D{seconds:g}"),
                *([f"--warm-up-time={warmup_s:g}"] if warmup_s else []),
                f"--log-file={log}",
                f"http://{HOST}:{running.port}{path}",
            ]
            timeout = seconds + warmup_s + 60
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
            metrics = parse_h2load(done.stdout)
            if log.exists():
                metrics.update(request_log_stats(log))
        error = None
        if "rps" not in metrics:
            error = f"no req/s in h2load's output (exit {done.returncode})"
        elif metrics.get("protocol") != "h2c":
            error = f"h2load spoke {metrics.get('protocol')}, not h2c"
        argv[-2] = "--log-file=<tmp>"
        return Sample(metrics, argv, error)

    settings = {"path": path, "clients": clients, "streams_per_client": streams}
    return Workload(name, {**settings, "warmup_s": warmup_s, **params}, measure)


# The Node.js ws client (bench/ws-client/client.js)


def ensure_ws_client() -> None:
    if shutil.which("node") is None:
        raise RuntimeError("node is missing: apt-get install nodejs npm")
    if not (WS_CLIENT / "node_modules/ws/package.json").exists():
        print("installing the ws client: npm ci in bench/ws-client", flush=True)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=WS_CLIENT, check=True)


def ws_echo(
    clients: int, size: int, deflate: bool, warmup_s: float = 2.0, payload: str = "x"
) -> Workload:
    """`clients` connections, each sending a `size`-byte text message and waiting for the
    echo before the next; permessage-deflate offered or not. `payload`: "x" (x's) or
    "json" (JSON records that deflate ~5:1); the server's bytes per echo on the wire
    are measured too."""

    def measure(running: Running, seconds: float) -> Sample:
        argv = [
            *("node", str(WS_CLIENT / "client.js"), "echo", f"ws://{HOST}:{running.port}/ws"),
            *(str(clients), f"{seconds:g}", str(size), f"{warmup_s:g}"),
            "on" if deflate else "off",
            payload,
        ]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + warmup_s + 120
        )
        lines = done.stdout.strip().splitlines()
        event = json.loads(lines[-1]) if lines else {"phase": "error", "message": done.stderr}
        if event.get("phase") != "echo":
            return Sample({}, argv, str(event.get("message", event))[-300:])
        keys = ("msgs_per_s", "p50_ms", "p99_ms", "max_ms", "errors", "stalled")
        keys += ("wire_bytes_per_echo",)
        metrics = {k: event[k] for k in keys}
        metrics["deflate_negotiated"] = event["deflate"]
        return Sample(metrics, argv)

    what = f"{size:,} B" if payload == "x" else f"{size // 1024} KiB JSON"
    name = f"echo {what}, deflate {'offered' if deflate else 'off'}"
    params = {"clients": clients, "size": size, "deflate_offered": deflate, "warmup_s": warmup_s}
    params["payload"] = payload
    return Workload(name, params, measure, main=("msgs_per_s", "msg/s"))


def open_then_broadcast(
    running: Running, argv: list[str], connections: int, broadcasts: int
) -> tuple[dict[str, Any], tuple[Any, Any, Any], list[dict[str, Any]]]:
    """Run a client that opens `connections` (bench/ws-client's idle mode,
    bench/sse-client.py) and then times `broadcasts` to all of them: its `opened`
    event, the server's (RSS before, RSS once open, threads), and its rounds. Raises
    what reading the client raises; the client never outlives the call."""
    assert running.server is not None
    time.sleep(1)
    before = running.server.status_field("VmRSS")
    client = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert client.stdin is not None and client.stdout is not None
    try:
        opened = read_event(client.stdout, "opened")
        time.sleep(min(2.0, 0.5 + connections / 5000))  # the last OPEN events run
        after = running.server.status_field("VmRSS")
        threads = running.server.status_field("Threads")
        rounds = broadcast_rounds(client, broadcasts)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    return opened, (before, after, threads), rounds


def broadcast_rounds(client: subprocess.Popen[str], broadcasts: int) -> list[dict[str, Any]]:
    """Drive a client whose connections are open: tell it to go, read its `broadcasts`
    rounds, tell it to close and wait until it is done."""
    assert client.stdin is not None and client.stdout is not None
    client.stdin.write("go\n")
    client.stdin.flush()
    rounds = [read_event(client.stdout, "broadcast") for _ in range(broadcasts)]
    client.stdin.write("close\n")
    client.stdin.flush()
    read_event(client.stdout, "done")
    client.wait(60)
    return rounds


def read_event(stdout: IO[str], phase: str) -> dict[str, Any]:
    """The next JSON line of a client that reports by phases (bench/ws-client/client.js,
    bench/sse-client.py); raises RuntimeError if it is not `phase`."""
    line = stdout.readline()
    event: dict[str, Any] = json.loads(line) if line else {"phase": "error", "message": "exit"}
    if event.get("phase") != phase:
        raise RuntimeError(f"expected {phase!r} from the client, got {event}")
    return event


def ws_idle(connections: int, broadcasts: int) -> Workload:
    """Open `connections` WebSockets (permessage-deflate offered), read the server's RSS
    before and once all are open, then time `broadcasts` POST /broadcast to all of them."""

    def measure(running: Running, seconds: float) -> Sample:
        del seconds  # the work is fixed
        assert running.server is not None
        base = f"{HOST}:{running.port}"
        argv = [
            *("node", str(WS_CLIENT / "client.js"), "idle", f"ws://{base}/ws"),
            *(str(connections), f"http://{base}/broadcast", str(broadcasts)),
        ]
        try:
            opened, (before, after, threads), rounds = open_then_broadcast(
                running, argv, connections, broadcasts
            )
        except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
            return Sample({}, argv, str(exc)[-300:])
        received = sorted(r["all_received_ms"] for r in rounds if r["all_received_ms"])
        metrics = {
            "connections": opened["connections"],
            "failed": opened["failed"],
            "open_s": opened["open_s"],
            "deflate_negotiated": opened["deflate"],
            "rss_before_kib": before,
            "rss_open_kib": after,
            "kib_per_connection": (after - before) / max(1, opened["connections"]),
            "server_threads": threads,
            "broadcast_queued_ms": sorted(r["server_queued_ms"] for r in rounds)[len(rounds) // 2],
            "broadcast_received_ms": received[len(received) // 2] if received else None,
        }
        lost = sum(r["received"] != r["clients"] for r in rounds)
        error = f"{lost} broadcasts lost messages" if lost else opened["first_error"]
        return Sample(metrics, argv, error)

    params = {"connections": connections, "broadcasts": broadcasts}
    return Workload(
        f"{connections:,} idle WebSockets", params, measure, main=("kib_per_connection", "KiB")
    )
