"""Slow clients: a normal keep-alive client's latency (sequential GETs of `/`) on mummy
(4 workers, header_timeout 5 s), with no attackers and with 1,000 attackers trickling an
endless request head (a header line every 0.5 s), and how many attackers were still
connected once header_timeout had passed. 3.13t and the GIL build. --quick: 50
attackers, 3.13t."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from harness import HOST
from harness.load import percentile
from harness.runner import Context, Group, Running, Sample, Workload

TITLE = "Slow clients: a normal client's latency among slowloris attackers"
HEADER_TIMEOUT_S = 5.0  # --quick: 1 s
WORKERS = 4


def normal_client(port: int, seconds: float) -> list[float]:
    """Sequential keep-alive GETs for `seconds`; each request's latency in ms."""
    latencies = []
    with socket.create_connection((HOST, port), timeout=10) as sock:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while not data.endswith(b"Hello, World!"):
                data += sock.recv(4096)
            latencies.append((time.perf_counter() - started) * 1e3)
    return latencies


def still_open(socks: list[socket.socket]) -> int:
    """Attackers the server has not closed (no EOF, no reset yet)."""
    count = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            while sock.recv(65536):
                pass
        except BlockingIOError:
            count += 1
        except OSError:
            pass
    return count


def attack(attackers: int, header_timeout: float) -> Workload:
    def measure(running: Running, seconds: float) -> Sample:
        socks = []
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(0.5):
                for sock in socks:
                    try:
                        sock.send(b"X-a: b\r\n")
                    except OSError:
                        pass

        trickler = threading.Thread(target=trickle, daemon=True)
        try:
            for _ in range(attackers):
                sock = socket.create_connection((HOST, running.port), timeout=10)
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
                socks.append(sock)
            trickler.start()
            latencies = sorted(normal_client(running.port, seconds))
            stop.set()
            if attackers:  # the deadline runs from the head's first byte; timers tick each 1 s
                time.sleep(max(0.0, header_timeout + 2.0 - seconds))
            metrics = {
                "requests": len(latencies),
                "rps": len(latencies) / seconds,
                "p50_ms": percentile(latencies, 0.50),
                "p99_ms": percentile(latencies, 0.99),
                "attackers_still_open": still_open(socks),
            }
        except OSError as exc:
            return Sample({}, [], f"{type(exc).__name__}: {exc}")
        finally:
            stop.set()
            for sock in socks:
                sock.close()
        error = (
            f"{metrics['attackers_still_open']} attackers outlived header_timeout"
            if metrics["attackers_still_open"]
            else None
        )
        return Sample(metrics, ["(in bench/run) normal client + attackers"], error)

    return Workload(
        f"{attackers:,} attackers", {"attackers": attackers}, measure, main=("p99_ms", "ms p99")
    )


def plan(ctx: Context) -> tuple[list[Group], dict[str, Any]]:
    counts = (0, 50) if ctx.quick else (0, 1000)
    timeout = 1.0 if ctx.quick else HEADER_TIMEOUT_S
    groups = []
    for interp in ctx.builds("ft") if ctx.quick else ctx.builds():
        args = [str(WORKERS), str(timeout)]
        settings = f"workers={WORKERS}, header_timeout={timeout:g}"
        spec = ctx.mummy(interp, "mummy_app.py", args, settings)
        groups.append(Group(spec, [attack(n, timeout) for n in counts]))
    return groups, {"header_timeout_s": timeout, "workers": WORKERS}
