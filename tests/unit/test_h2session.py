"""The HTTP/2 session without sockets: a client H2Connection talks to mummy's H2Session
(the same code the workers run), and what hpack logs."""

import logging

import h2.config
import h2.connection
import h2.events
import hpack.hpack

from mummy.core.h2session import H2Session, _DebugOff


def pair() -> tuple[h2.connection.H2Connection, H2Session]:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    server = H2Session(max_headers_len=8192, max_body_len=1 << 20, max_streams=100)
    server.start()
    client.receive_data(server.data_to_send())
    server.receive(client.data_to_send())
    client.receive_data(server.data_to_send())
    return client, server


def test_streams_of_one_write_come_out_as_requests_and_answers_frame_back() -> None:
    client, server = pair()
    ids = []
    for path in ("/a", "/b", "/c"):
        stream_id = client.get_next_available_stream_id()
        fields = [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "x")]
        client.send_headers(stream_id, fields, end_stream=True)
        ids.append(stream_id)
    requests = server.receive(client.data_to_send())
    got = [(r.stream_id, r.head.target) for r in requests]
    assert got == list(zip(ids, ["/a", "/b", "/c"], strict=True))
    assert server.active_streams == 3
    for r in reversed(requests):  # answered in any order
        server.respond(r.stream_id, 200, [("content-type", "text/plain")], r.head.target.encode())
    events = client.receive_data(server.data_to_send())
    bodies = {e.stream_id: e.data for e in events if isinstance(e, h2.events.DataReceived)}
    assert bodies == {ids[0]: b"/a", ids[1]: b"/b", ids[2]: b"/c"}
    assert server.active_streams == 0


def test_hpack_debug_calls_are_dropped_while_its_logger_is_off() -> None:
    """hpack calls log.debug ~20 times a request; with its logger below DEBUG at import
    the stand-in drops them, and everything else still reaches the real logger."""
    real = logging.getLogger("hpack.hpack")
    assert not real.isEnabledFor(logging.DEBUG)  # the test run's logging config
    stand_in = hpack.hpack.log
    assert isinstance(stand_in, _DebugOff)
    assert stand_in.name == "hpack.hpack"
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    real.addHandler(handler)
    try:
        stand_in.debug("dropped %s", 1)
        stand_in.warning("kept %s", 2)
    finally:
        real.removeHandler(handler)
    assert [r.getMessage() for r in records] == ["kept 2"]
