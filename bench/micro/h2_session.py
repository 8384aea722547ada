"""What one HTTP/2 request costs in mummy's H2Session (the pure-Python `h2` state machine,
HPACK and frames), without sockets or threads.

Usage: .venv-ft/bin/python bench/micro/h2_session.py [--rounds N] [--json]
(or `./bench/run --only micro`)

A client H2Connection frames 10 GETs at a time (h2load's `-m 10`, with h2load's
header fields); the session parses them, answers each with a 13-byte body and three
fields, and frames the answers. Only the session's side is timed: receive, respond,
data_to_send. Printed: the best of 5 runs, in microseconds per request, next to the
whole HTTP/1.1 request of `request_budget.py` for scale. With --json: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from h2.config import H2Configuration
from h2.connection import H2Connection

from mummy.core.h2session import H2Session

BATCH = 10
REQUEST = [
    (":method", "GET"),
    (":path", "/"),
    (":scheme", "http"),
    (":authority", "127.0.0.1:8080"),
    ("user-agent", "h2load nghttp2/1.52.0"),
    ("accept", "*/*"),
]
FIELDS = [
    ("content-type", "text/plain"),
    ("content-length", "13"),
    ("date", "Wed, 02 Dec 2026 14:00:00 GMT"),
]


def session_us(rounds: int) -> float:
    """Session seconds per request over `rounds` batches, on a fresh connection."""
    client = H2Connection(H2Configuration(client_side=True))
    client.initiate_connection()
    server = H2Session(max_headers_len=8192, max_body_len=1 << 20, max_streams=100)
    server.start()
    client.receive_data(server.data_to_send())
    server.receive(client.data_to_send())
    client.receive_data(server.data_to_send())
    spent, stream_id = 0.0, 1
    for _ in range(rounds):
        for _ in range(BATCH):
            client.send_headers(stream_id, REQUEST, end_stream=True)
            stream_id += 2
        wire = client.data_to_send()
        started = time.perf_counter()
        for request in server.receive(wire):
            server.respond(request.stream_id, 200, FIELDS, b"Hello, World!")
        out = server.data_to_send()
        spent += time.perf_counter() - started
        client.receive_data(out)
    return spent / (rounds * BATCH) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=500, help="batches of 10 per run")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    session_us(50)  # warm up
    best = min(session_us(args.rounds) for _ in range(5))
    result = {"us per request (session: parse, answer, frame)": best}
    if args.json:
        print(json.dumps(result))
        return
    gil = "GIL" if getattr(sys, "_is_gil_enabled", lambda: True)() else "free-threaded"
    print(f"H2Session, {best:.1f} us per request (best of 5); {sys.version.split()[0]} {gil}")


if __name__ == "__main__":
    main()
