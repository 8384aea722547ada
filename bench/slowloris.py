#!/usr/bin/env python3
"""Slowloris figures (issue 7): a normal keep-alive client's latency with and without
1,000 attackers trickling endless request heads, against mummy on 3.13t.

Run: .venv-ft/bin/python bench/slowloris.py [--attackers 1000] [--seconds 10]
Prints p50/p99 of the normal client and how many attackers were still connected
after header_timeout (plus a margin). Loopback only, bounded in count and time.
"""

import argparse
import resource
import socket
import statistics
import threading
import time

import mummy


def hello(request: mummy.Request) -> None:
    request.respond(200, {"Content-Type": "text/plain"}, "ok")


def normal_client(port: int, seconds: float) -> list[float]:
    """Sequential keep-alive GETs for `seconds`; returns each request's latency."""
    latencies = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while not data.endswith(b"ok"):
                data += sock.recv(4096)
            latencies.append(time.perf_counter() - t0)
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def run(attackers: int, seconds: float, header_timeout: float) -> None:
    server = mummy.Server(hello, workers=4, header_timeout=header_timeout)
    server.start(0, "127.0.0.1")
    socks: list[socket.socket] = []
    stop = threading.Event()
    try:
        for _ in range(attackers):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            socks.append(sock)

        def trickle() -> None:
            while not stop.is_set():
                for sock in socks:
                    try:
                        sock.send(b"X-a: b\r\n")
                    except OSError:
                        pass
                time.sleep(0.5)

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        latencies = normal_client(server.port, seconds)
        stop.set()
        trickler.join()
        time.sleep(max(0.0, header_timeout + 1.0 - seconds))
        still_open = 0
        for sock in socks:
            sock.setblocking(False)
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
            except BlockingIOError:
                still_open += 1  # no EOF yet
            except OSError:
                pass
        p50 = statistics.median(latencies) * 1e3
        p99 = percentile(latencies, 0.99) * 1e3
        print(
            f"| {attackers:>5} | {len(latencies):>8} | {p50:6.2f} ms | {p99:6.2f} ms "
            f"| {still_open:>5} |"
        )
    finally:
        stop.set()
        for sock in socks:
            sock.close()
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--attackers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--header-timeout", type=float, default=5.0)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"header_timeout={args.header_timeout}s, normal client: sequential keep-alive GETs")
    print("| attackers | requests | p50 | p99 | attackers still open after header_timeout |")
    print("|---:|---:|---:|---:|---:|")
    for attackers in (0, args.attackers):
        run(attackers, args.seconds, args.header_timeout)


if __name__ == "__main__":
    main()
