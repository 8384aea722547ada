"""Serializing responses (RFC 9112 §4, RFC 9110 §6): status line, fields, body.

Runs on the worker that calls `respond()`, so the IO thread only copies bytes.
"""

import re
import time
from email.utils import formatdate
from http import HTTPStatus

from mummy.errors import MummyError

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: field values never contain CR, LF or NUL.
_BAD_VALUE = re.compile(r"[\x00\r\n]")
_REASONS = {s.value: s.phrase for s in HTTPStatus}
_STATUS_LINES: dict[int, bytes] = {}
# (name, value) -> the encoded field line, for ordinary fields that passed validation.
# Shared by all workers: dict reads and writes are atomic on both builds.
_FIELD_LINES: dict[tuple[str, str], bytes] = {}
_FIELD_CACHE_SIZE = 4096

# RFC 9110 §6.4.1: these statuses never carry content.
NO_BODY_STATUSES = frozenset({204, 304})

_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    """The Date header value (RFC 9110 §6.6.1), recomputed at most once a second.

    Any thread may call it; a race only computes the same string twice.
    """
    global _date_cache
    now = int(time.time())
    cached = _date_cache
    if cached[0] != now:
        cached = (now, formatdate(now, usegmt=True))
        _date_cache = cached
    return cached[1]


def check_field(name: str, value: str) -> None:
    """A field a handler may send: a token name, and no CR, LF or NUL in the value
    (RFC 9110 §5.5), so no response splitting."""
    if _TOKEN.fullmatch(name) is None:
        raise MummyError(f"invalid header name {name!r}")
    if _BAD_VALUE.search(value) is not None:
        raise MummyError(f"header {name!r} has a CR, LF or NUL in its value")


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        # RFC 9112 §4: the reason-phrase may be empty, the space before it may not.
        line = f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n".encode("ascii")
        _STATUS_LINES[status] = line
    return line


def serialize(
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    head_request: bool,
    http10: bool,
    keep_alive: bool,
) -> tuple[bytes, bool]:
    """Returns (wire bytes, keep_alive). Raises MummyError for a response that
    cannot be sent as given; nothing is sent then."""
    if not isinstance(status, int) or not 200 <= status <= 999:
        raise MummyError(
            f"status {status!r} is not a final HTTP status code (200-999); "
            "1xx responses are sent by the server itself"
        )
    out = [status_line(status)]
    content_length: str | None = None
    has_date = False
    cache = _FIELD_LINES
    for name, value in headers:
        line = cache.get((name, value))
        if line is not None:
            out.append(line)
            continue
        check_field(name, value)
        key = name.lower()
        if key == "content-length":
            content_length = value
            continue
        if key == "connection":
            if "close" in (t.strip(" \t") for t in value.lower().split(",")):
                keep_alive = False
            continue
        if key == "transfer-encoding":
            raise MummyError(
                "do not set Transfer-Encoding: responses are sent whole, with Content-Length"
            )
        try:
            line = f"{name}: {value}\r\n".encode("latin-1")
        except UnicodeEncodeError:
            raise MummyError(
                f"header {name!r} has characters outside latin-1; encode the value "
                "(e.g. RFC 8187 or percent-encoding)"
            ) from None
        if key == "date":
            has_date = True
        elif len(cache) < _FIELD_CACHE_SIZE:
            # Validated and encoded once: most responses repeat the same few fields.
            cache[name, value] = line
        out.append(line)
    if status in NO_BODY_STATUSES:
        if body:
            raise MummyError(f"a {status} response cannot have a body")
        if status == 204 and content_length is not None:
            raise MummyError("a 204 response cannot have a Content-Length")
        if content_length is not None:
            out.append(f"Content-Length: {content_length}\r\n".encode("latin-1"))
    elif content_length is not None and (head_request and not body):
        # RFC 9110 §9.3.2: a HEAD response may carry the length the GET would have.
        if not content_length.isdigit():
            raise MummyError(f"invalid Content-Length {content_length!r}")
        out.append(f"Content-Length: {content_length}\r\n".encode("ascii"))
    else:
        if content_length is not None and content_length != str(len(body)):
            raise MummyError(
                f"Content-Length {content_length} does not match the body ({len(body)} bytes); "
                "leave Content-Length out and mummy sets it"
            )
        out.append(b"Content-Length: %d\r\n" % len(body))
    if not has_date:
        out.append(b"Date: " + http_date().encode("ascii") + b"\r\n")
    if not keep_alive:
        out.append(b"Connection: close\r\n")
    elif http10:
        out.append(b"Connection: keep-alive\r\n")
    out.append(b"\r\n")
    if body and not head_request:
        out.append(body)
    return b"".join(out), keep_alive


def _error_parts(
    status: int, message: str, headers: tuple[tuple[str, str], ...]
) -> tuple[list[tuple[str, str]], bytes]:
    """The fields and body of a response the server makes on its own. Every 503
    says when to come back (RFC 9110 §10.2.3), one second unless `headers` do."""
    body = f"{status} {_REASONS.get(status, 'Error')}: {message}\n".encode()
    pairs = [("Content-Type", "text/plain; charset=utf-8"), *headers]
    if status == 503 and not any(name.lower() == "retry-after" for name, _ in headers):
        pairs.append(("Retry-After", "1"))
    return pairs, body


def error_response(
    status: int, message: str, *, close: bool = True, headers: tuple[tuple[str, str], ...] = ()
) -> bytes:
    """A small plain-text HTTP/1.1 response the server sends on its own (4xx/5xx)."""
    pairs, body = _error_parts(status, message, headers)
    wire, _ = serialize(status, pairs, body, head_request=False, http10=False, keep_alive=not close)
    return wire


def h2_error_response(
    status: int, message: str, *, headers: tuple[tuple[str, str], ...] = ()
) -> tuple[list[tuple[str, str]], bytes]:
    """The same answer for one HTTP/2 stream: (fields, body); the connection stays."""
    pairs, body = _error_parts(status, message, headers)
    return h2_fields(status, pairs, body, head_request=False)


def h2_fields(
    status: int, headers: list[tuple[str, str]], body: bytes, *, head_request: bool
) -> tuple[list[tuple[str, str]], bytes]:
    """The same response for HTTP/2 (RFC 9113 §8.2): lower-case field names, no
    connection-specific fields, Content-Length and Date added. Returns (fields,
    body to send). Raises MummyError as `serialize` does."""
    if not isinstance(status, int) or not 200 <= status <= 999:
        raise MummyError(f"status {status!r} is not a final HTTP status code (200-999)")
    fields: list[tuple[str, str]] = []
    content_length: str | None = None
    has_date = False
    for name, value in headers:
        check_field(name, value)
        key = name.lower()
        if key == "content-length":
            content_length = value
        elif key in ("connection", "keep-alive", "proxy-connection", "upgrade"):
            continue
        elif key == "transfer-encoding":
            raise MummyError(
                "do not set Transfer-Encoding: responses are sent whole, with Content-Length"
            )
        else:
            has_date = has_date or key == "date"
            fields.append((key, value))
    if status in NO_BODY_STATUSES:
        if body:
            raise MummyError(f"a {status} response cannot have a body")
    elif content_length is not None and head_request and not body:
        fields.append(("content-length", content_length))
    else:
        if content_length is not None and content_length != str(len(body)):
            raise MummyError(
                f"Content-Length {content_length} does not match the body ({len(body)} bytes)"
            )
        fields.append(("content-length", str(len(body))))
    if not has_date:
        fields.append(("date", http_date()))
    return fields, b"" if head_request else body
