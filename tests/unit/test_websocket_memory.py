"""What an open WebSocket keeps (the idle-connection figure of the bench is 10,000 of
them): the frame protocol and nothing of the handshake."""

import gc
import tracemalloc

import h11

from mummy.core.wsengine import open_websocket
from tests.unit.test_fuzz_regressions import open_socket, upgrade_request


def test_an_open_websocket_keeps_no_handshake_state() -> None:
    gc.collect()
    before = sum(isinstance(o, h11.Connection) for o in gc.get_objects())
    engines = [open_socket(offer_deflate=True) for _ in range(50)]
    gc.collect()
    after = sum(isinstance(o, h11.Connection) for o in gc.get_objects())
    assert after == before, "the h11 handshake of each WebSocket is still alive"
    assert len(engines) == 50


def test_the_upgrade_check_builds_no_header_index() -> None:
    """The upgrade request lives as long as its WebSocket (`ws.request`): the handshake
    reads the pairs and leaves the lazily built index unbuilt (a handler that reads
    the headers builds it then)."""
    request = upgrade_request()
    response, _ = open_websocket(request, True, 1 << 16, 1024)  # type: ignore[arg-type]
    assert response.startswith(b"HTTP/1.1 101 ")
    assert request.headers._index is None
    assert request.headers["upgrade"] == "websocket"  # still readable


def test_bytes_kept_per_websocket() -> None:
    """Engine, frame protocol and permessage-deflate state, measured with tracemalloc:
    about 2.4 KiB on both builds today (5.5 KiB before the handshake state was dropped)."""
    open_socket(offer_deflate=True)  # warm caches: the first of anything costs more
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        engines = [open_socket(offer_deflate=True) for _ in range(200)]
        gc.collect()
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    per = (end - start) / len(engines)
    assert per < 3 * 1024, f"{per:.0f} bytes per open WebSocket"
