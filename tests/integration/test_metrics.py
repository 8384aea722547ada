"""`metrics_port`: Prometheus metrics on their own listener, scraped after known
traffic, the numbers checked exactly."""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
import urllib.request

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect as ws_connect

import mummy
from tests.client import connect, read_response
from tests.servers import HANG_S, free_port, serving, wait_for


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=HANG_S) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests_total(samples: dict, method: str, status: str, protocol: str) -> float:
    labels = (("method", method), ("protocol", protocol), ("status", status))
    return samples.get(("mummy_requests_total", labels), 0.0)


def connections(samples: dict) -> dict[str, float]:
    return {
        dict(labels)["protocol"]: value
        for (name, labels), value in samples.items()
        if name == "mummy_connections"
    }


def handler(request: mummy.Request) -> None:
    if request.path == "/boom":
        raise ValueError("a handler that fails: 500")
    if request.path == "/ws":
        request.upgrade_to_websocket()
        return
    if request.path == "/slow":
        time.sleep(0.3)
    request.respond(404 if request.path == "/missing" else 200, None, "body")


def echo(ws: mummy.WebSocket, event: mummy.Event, message: mummy.Message | None) -> None:
    if message is not None:
        ws.send(message.data, message.kind)


def get(port: int, path: str, method: str = "GET") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_S)
    conn.request(method, path, body=b"x" if method == "POST" else None)
    status = conn.getresponse().status
    conn.close()
    return status


def test_a_scrape_counts_exactly_the_traffic_sent() -> None:
    metrics_port = free_port()
    server = mummy.Server(handler, echo, workers=2)
    with serving(server, metrics_port=metrics_port):
        port = server.port
        assert [get(port, p) for p in ("/", "/", "/", "/missing", "/boom")] == [200] * 3 + [
            404,
            500,
        ]
        assert get(port, "/", "POST") == 200
        assert get(port, "/", "BREW") == 200  # an unknown method is counted as "other"
        with httpx.Client(http1=False, http2=True) as client:
            assert client.get(f"http://127.0.0.1:{port}/").http_version == "HTTP/2"
            with contextlib.ExitStack() as opened:
                sockets = [
                    opened.enter_context(ws_connect(f"ws://127.0.0.1:{port}/ws")) for _ in range(2)
                ]
                opened.enter_context(connect(port))  # an HTTP/1.1 connection, silent
                for ws in sockets:
                    ws.send("ping")
                    assert ws.recv(HANG_S) == "ping"
                samples = scrape(metrics_port)
                assert requests_total(samples, "GET", "2xx", "http1") == 3
                assert requests_total(samples, "GET", "1xx", "http1") == 2  # the 101s
                assert requests_total(samples, "GET", "4xx", "http1") == 1
                assert requests_total(samples, "GET", "5xx", "http1") == 1
                assert requests_total(samples, "POST", "2xx", "http1") == 1
                assert requests_total(samples, "other", "2xx", "http1") == 1
                assert requests_total(samples, "GET", "2xx", "http2") == 1
                assert samples[("mummy_request_duration_seconds_count", ())] == 10
                assert samples[("mummy_websockets", ())] == 2
                # Once the server has seen the one-shot clients leave:
                expected = {"http1": 1, "http2": 1, "websocket": 2, "tls_handshake": 0}
                assert wait_for(lambda: connections(scrape(metrics_port)) == expected)
                assert samples[("mummy_workers", ())] == 2
                # A worker may still be returning from the last echo when it was read.
                assert wait_for(lambda: scrape(metrics_port)[("mummy_workers_busy", ())] == 0)
                assert samples[("mummy_queue_depth", ())] == 0
                assert samples[("mummy_sse_streams", ())] == 0
                assert samples[("mummy_responses_shed_total", ())] == 0
                assert samples[("mummy_bytes_sent_total", ())] > 0
                assert 0 <= samples[("mummy_io_loop_busy_ratio", (("loop", "0"),))] <= 1
        # The client's TCP connections have closed: the gauges come back down.
        assert wait_for(lambda: scrape(metrics_port)[("mummy_websockets", ())] == 0)
        assert wait_for(lambda: set(connections(scrape(metrics_port)).values()) == {0})


def test_busy_workers_queue_depth_and_shed_requests() -> None:
    metrics_port = free_port()
    gate = threading.Event()

    def blocking(request: mummy.Request) -> None:
        gate.wait(HANG_S)
        request.respond(200, None, "late")

    server = mummy.Server(blocking, workers=1, queue_timeout=0.05)
    with serving(server, metrics_port=metrics_port):
        socks = [connect(server.port) for _ in range(3)]
        for sock in socks:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_for(lambda: scrape(metrics_port)[("mummy_queue_depth", ())] == 2)
        samples = scrape(metrics_port)
        assert samples[("mummy_workers_busy", ())] == 1
        time.sleep(0.1)  # the two queued requests wait past queue_timeout (that is the test)
        gate.set()
        statuses = sorted(read_response(sock)[0] for sock in socks)
        assert statuses == [200, 503, 503]
        samples = scrape(metrics_port)
        assert samples[("mummy_responses_shed_total", ())] == 2
        assert requests_total(samples, "GET", "5xx", "http1") == 2
        assert requests_total(samples, "GET", "2xx", "http1") == 1
        for sock in socks:
            sock.close()


def test_the_metrics_listener_is_not_the_apps_port() -> None:
    metrics_port = free_port()
    with serving(mummy.Server(handler, workers=2), metrics_port=metrics_port) as server:
        assert get(server.port, "/metrics") == 200  # the app's own answer, not metrics
        assert get(metrics_port, "/metrics") == 200
        # Closed with the server.
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2)
