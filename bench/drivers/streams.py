"""Streamed responses on mummy (bench/apps/stream_app.py, 4 workers), 3.13t and the GIL
build. Open streams: 10,000 Server-Sent Events streams opened by bench/sse-client.py
(one thread, epoll; run by bench/run's own interpreter): the server's RSS before and
after is the memory a stream costs, then 5 broadcasts (one event with an id to every
stream, sent from the handler's thread) are timed from the POST until every stream had
it. A streamed body: GET /big?mb=1024, 1 GiB in 64 KiB chunks of one bytes object,
uncompressed, read by curl over HTTP/1.1 (chunked) and over h2c with prior knowledge:
MB/s, and the size checked. --quick: 200 streams, 1 broadcast, a 64 MiB body."""

from __future__ import annotations

import shutil
import subprocess
import sys
from typing import Any

from harness import BENCH, HOST
from harness.load import open_then_broadcast
from harness.runner import Context, Group, Running, Sample, Workload

TITLE = "Streamed responses: open Server-Sent Events streams and a 1 GiB body (curl)"
WORKERS = 4
STREAMS, BROADCASTS = 10_000, 5
BODY_MIB = 1024
CLIENT = BENCH / "sse-client.py"
CURL_FLAGS = {"HTTP/1.1": ("--http1.1", "1.1"), "h2c": ("--http2-prior-knowledge", "2")}
CURL_OUT = "%{speed_download} %{size_download} %{http_version} %{response_code}"


def ensure_curl() -> None:
    if shutil.which("curl") is None:
        raise RuntimeError("curl is missing: apt-get install curl")
    features = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout
    if "HTTP2" not in features:
        raise RuntimeError("this curl has no HTTP/2 (no HTTP2 in `curl --version`)")


def open_streams(streams: int, broadcasts: int) -> Workload:
    """Open `streams` SSE streams, read the server's RSS before and once all are open,
    then time `broadcasts` POST /broadcast to all of them."""

    def measure(running: Running, seconds: float) -> Sample:
        del seconds  # the work is fixed
        assert running.server is not None
        base = f"http://{HOST}:{running.port}"
        argv = [sys.executable, str(CLIENT), f"{base}/events", str(streams)]
        argv += [f"{base}/broadcast", str(broadcasts)]
        try:
            opened, (before, after, threads), rounds = open_then_broadcast(
                running, argv, streams, broadcasts
            )
        except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
            return Sample({}, argv, str(exc)[-300:])
        received = sorted(r["all_received_ms"] for r in rounds if r["all_received_ms"])
        queued = sorted(r["server_queued_ms"] for r in rounds if r["server_queued_ms"] is not None)
        metrics = {
            "streams": opened["streams"],
            "failed": opened["failed"],
            "open_s": opened["open_s"],
            "rss_before_kib": before,
            "rss_open_kib": after,
            "kib_per_stream": (after - before) / max(1, opened["streams"]),
            "server_threads": threads,
            "broadcast_queued_ms": queued[len(queued) // 2] if queued else None,
            "broadcast_received_ms": received[len(received) // 2] if received else None,
        }
        lost = sum(r["received"] != r["expected"] or r["sent"] != r["expected"] for r in rounds)
        error = f"{lost} broadcasts lost events" if lost else opened["first_error"]
        return Sample(metrics, argv, error)

    params = {"streams": streams, "broadcasts": broadcasts}
    return Workload(
        f"{streams:,} open SSE streams", params, measure, main=("kib_per_stream", "KiB")
    )


def streamed_body(mib: int, protocol: str) -> Workload:
    """One GET /big?mb=`mib` read by curl into /dev/null; its average speed and size."""
    flag, version = CURL_FLAGS[protocol]
    expected = mib << 20

    def measure(running: Running, seconds: float) -> Sample:
        del seconds  # the work is fixed
        url = f"http://{HOST}:{running.port}/big?mb={mib}"
        argv = ["curl", "-s", flag, "--max-time", "600", "-o", "/dev/null", "-w", CURL_OUT, url]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=660)
        except subprocess.TimeoutExpired:
            return Sample({}, argv, "curl did not finish in 660 s")
        parts = done.stdout.split()
        if len(parts) != 4:
            return Sample({}, argv, f"curl exited {done.returncode}: {done.stdout!r}")
        speed, size, spoken, status = float(parts[0]), int(parts[1]), parts[2], parts[3]
        metrics = {"mb_per_s": speed / 1e6, "bytes": size, "http_version": spoken}
        error = None
        if done.returncode != 0 or status != "200":
            error = f"curl exited {done.returncode}, status {status}"
        elif spoken != version:
            error = f"curl spoke HTTP/{spoken}, not HTTP/{version}"
        elif size != expected:
            error = f"read {size:,} bytes, not {expected:,}"
        return Sample(metrics, argv, error)

    size = f"{mib // 1024} GiB" if mib >= 1024 else f"{mib} MiB"
    params = {"path": f"/big?mb={mib}", "protocol": protocol, "bytes_expected": expected}
    return Workload(f"{size} body, {protocol}", params, measure, main=("mb_per_s", "MB/s"))


def plan(ctx: Context) -> tuple[list[Group], dict[str, Any]]:
    ensure_curl()
    streams, broadcasts = (200, 1) if ctx.quick else (STREAMS, BROADCASTS)
    mib = 64 if ctx.quick else BODY_MIB
    groups = []
    for interp in ctx.builds():
        spec = ctx.mummy(interp, "stream_app.py", [str(WORKERS)], f"workers={WORKERS}")
        # A server of its own: its RSS before the streams open is not the bodies'.
        groups.append(Group(spec, [open_streams(streams, broadcasts)]))
        groups.append(Group(spec, [streamed_body(mib, p) for p in CURL_FLAGS]))
    settings = {
        "workers": WORKERS,
        "streams": streams,
        "broadcasts": broadcasts,
        "body_mib": mib,
        "chunk_bytes": 64 * 1024,
    }
    return groups, settings
