"""The answers the server makes on its own, for HTTP/1.1 and HTTP/2."""

from mummy.core.response import error_response, h2_error_response


def test_every_503_says_when_to_retry() -> None:
    wire = error_response(503, "busy")
    assert wire.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"\r\nRetry-After: 1\r\n" in wire and b"\r\nConnection: close\r\n" in wire
    fields, body = h2_error_response(503, "busy")
    assert ("retry-after", "1") in fields and body.startswith(b"503 Service Unavailable")


def test_a_given_retry_after_is_kept_and_not_doubled() -> None:
    wire = error_response(503, "busy", headers=(("Retry-After", "30"),))
    assert wire.count(b"Retry-After") == 1 and b"Retry-After: 30\r\n" in wire


def test_other_statuses_have_no_retry_after_and_http2_keeps_the_connection() -> None:
    assert b"Retry-After" not in error_response(400, "bad")
    fields, body = h2_error_response(400, "bad target")
    names = [name for name, _ in fields]
    assert "retry-after" not in names and "connection" not in names
    assert ("content-length", str(len(body))) in fields
