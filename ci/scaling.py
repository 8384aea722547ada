"""The GIL vs no-GIL figure at the end of ./ci/test: a CPU-bound handler's req/s
with 1 and 2 workers on each build (wrk, 2 s each, loopback). A figure, not a
test: nothing here can fail the run except a server that does not start."""

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILDS = [
    ("3.13t (no GIL)", ROOT / ".venv-ft/bin/python"),
    ("3.13 (GIL)", ROOT / ".venv-gil/bin/python"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(python: Path, workers: int) -> float:
    port = free_port()
    server = subprocess.Popen(
        [str(python), "examples/bench_app.py", str(port), str(workers)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"{python} examples/bench_app.py did not start") from None
                time.sleep(0.1)
        out = subprocess.run(
            ["wrk", "-t1", "-c8", "-d2s", f"http://127.0.0.1:{port}/cpu"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        return float(match[1]) if match else 0.0
    finally:
        server.terminate()
        server.wait(10)


def main() -> int:
    print("\n== scaling: /cpu (~1 ms of Python per request), req/s by workers (wrk -c8, 2 s)")
    print(f"{'':16}{'1 worker':>10}{'2 workers':>11}{'ratio':>8}")
    for name, python in BUILDS:
        one, two = measure(python, 1), measure(python, 2)
        ratio = two / one if one else 0.0
        print(f"{name:16}{one:>10.0f}{two:>11.0f}{ratio:>7.2f}x")
    print("(2 cores, shared with wrk: the free-threaded build can use both for Python)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
