"""Does a cold download stall everyone else? The latency of `GET /` on one keep-alive
connection while one client downloads a file with a cold page cache (mummy's IO
thread sends files with os.sendfile, SENDFILE_CAP bytes a call, so each call may
wait for the disk), against the same requests with no download.

Usage: .venv-ft/bin/python bench/micro/sendfile_stall.py [--mib N] [--json]

An in-process server (StaticFiles, 4 workers) on 127.0.0.1; the file (N MiB, 1024 by
default) is written to a temporary directory, read back once, then evicted from the
page cache (fsync + POSIX_FADV_DONTNEED) before the cold download; curl reads it as
fast as it can while this process sends `GET /` one after another and times each.
Printed: p50, p99 and max milliseconds of `/`, idle and during the download, the
download's MB/s, and how much of the file was still cached when it started (fincore).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.pagecache import evict, resident_bytes

import mummy
from mummy.core.files import SENDFILE_CAP

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


def write_file(path: Path, mib: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(mib):
            f.write(block[i % 256 :] + block[: i % 256])  # no two MiB alike
        f.flush()
        os.fsync(f.fileno())
    with open(path, "rb") as f:
        while f.read(1 << 24):  # read back once: the host's cache is then warm for all
            pass


def latencies(port: int, until: threading.Event | float) -> list[float]:
    """Times (ms) of sequential GET / on one connection, until the event is set or
    the monotonic deadline passes."""
    sock = socket.create_connection(("127.0.0.1", port))
    times = []
    try:
        while True:
            if isinstance(until, threading.Event) and until.is_set():
                break
            if isinstance(until, float) and time.monotonic() >= until:
                break
            start = time.perf_counter()
            sock.sendall(REQUEST)
            data = b""
            while not data.endswith(b"Hello"):
                chunk = sock.recv(4096)
                if not chunk:
                    raise RuntimeError("the server closed the connection")
                data += chunk
            times.append((time.perf_counter() - start) * 1000)
    finally:
        sock.close()
    return times


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "requests": len(ordered),
        "p50_ms": ordered[len(ordered) // 2],
        "p99_ms": ordered[int(len(ordered) * 0.99)],
        "max_ms": ordered[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mummy-sendfile-") as tmp:
        root = Path(tmp)
        path = root / "big.bin"
        write_file(path, args.mib)
        files = mummy.StaticFiles(root, prefix="/static/")

        def handler(request: mummy.Request) -> None:
            if request.path.startswith("/static/"):
                files(request)
            else:
                request.respond(200, {"Content-Type": "text/plain"}, "Hello")

        server = mummy.Server(handler, workers=4)
        server.start(0, "127.0.0.1")
        try:
            idle = summary(latencies(server.port, time.monotonic() + 3.0))
            evict(path)
            cached = resident_bytes(path) / (1 << 20)
            done = threading.Event()
            result: dict[str, str] = {}

            def download() -> None:
                url = f"http://127.0.0.1:{server.port}/static/big.bin"
                out = subprocess.run(
                    ["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download}", url],
                    capture_output=True,
                    text=True,
                )
                result["speed"] = out.stdout
                done.set()

            thread = threading.Thread(target=download)
            thread.start()
            busy = summary(latencies(server.port, done))
            thread.join()
        finally:
            server.close()
    report = {
        "file_mib": args.mib,
        "sendfile_cap_kib": SENDFILE_CAP // 1024,
        "cached_mib_at_start": cached,
        "download_mb_s": float(result.get("speed") or 0) / 1e6,
        "idle": idle,
        "during_cold_download": busy,
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"file {args.mib} MiB, {cached} MiB cached at start, cap {SENDFILE_CAP // 1024} KiB")
    print(f"download: {report['download_mb_s']:.0f} MB/s")
    for name in ("idle", "during_cold_download"):
        s = report[name]
        assert isinstance(s, dict)
        print(
            f"GET / {name:22} n={s['requests']:6}  p50 {s['p50_ms']:.3f} ms  "
            f"p99 {s['p99_ms']:.3f} ms  max {s['max_ms']:.3f} ms"
        )


if __name__ == "__main__":
    main()
