"""Responses (RFC 9110 §6, RFC 9112 §4, RFC 9113 §8.2): one rule set, two framings.

`encode_response` runs on the worker that calls `respond()`: it negotiates the
content coding, compresses, applies the rules (status range, no
Transfer-Encoding, no body on 204/304, HEAD's Content-Length, Date,
connection-specific fields) once in `_checked`, and frames the result for
HTTP/1.1 (`serialize`) or HTTP/2 (`h2_fields`). The IO thread only copies bytes.
"""

import threading
import time
from collections.abc import Mapping
from email.utils import formatdate

from mummy.core.compression import NotAcceptable, compress, compressible, negotiate
from mummy.core.config import ServerConfig
from mummy.core.connection import Connection
from mummy.core.fields import (
    BAD_VALUE_RE,
    CONNECTION_FIELDS,
    NO_BODY_STATUSES,
    REASONS,
    TOKEN_RE,
    comma_tokens,
)
from mummy.core.messages import H2Response, Http1Response
from mummy.errors import MummyError

# Each worker thread's caches: status -> status line, and (name, value) -> (lower-cased
# name, encoded HTTP/1.1 field line) for ordinary fields that passed validation. Per
# thread, not shared: on 3.13t a dict that every worker reads on every request is
# locked on many of those reads, and a contended lock spins with sched_yield (measured
# with strace on `/`: ~8 yields per request fewer with per-thread caches).
_local = threading.local()
_FIELD_CACHE_SIZE = 1024


def _caches() -> tuple[dict[int, bytes], dict[tuple[str, str], tuple[str, bytes]]]:
    try:
        caches: tuple[dict[int, bytes], dict[tuple[str, str], tuple[str, bytes]]]
        caches = _local.caches
    except AttributeError:
        caches = _local.caches = ({}, {})
    return caches


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
    if TOKEN_RE.fullmatch(name) is None:
        raise MummyError(f"invalid header name {name!r}")
    if BAD_VALUE_RE.search(value) is not None:
        raise MummyError(f"header {name!r} has a CR, LF or NUL in its value")


def status_line(status: int) -> bytes:
    lines = _caches()[0]
    line = lines.get(status)
    if line is None:
        # RFC 9112 §4: the reason-phrase may be empty, the space before it may not.
        line = f"HTTP/1.1 {status} {REASONS.get(status, '')}\r\n".encode("ascii")
        lines[status] = line
    return line


# What `_checked` returns: the fields kept, as (lower-cased name, value, HTTP/1.1
# line); the Content-Length to send (None: none); whether a Date was given; and
# whether the handler asked to close the connection.
_Checked = tuple[list[tuple[str, str, bytes]], str | None, bool, bool]


def _checked(
    status: int, headers: list[tuple[str, str]], body: bytes | None, head_request: bool
) -> _Checked:
    """The rules both framings follow; `body` None for a streamed body (its length
    is unknown: a Content-Length is the handler's promise). Raises MummyError for a
    response that cannot be sent as given; nothing is sent then."""
    if not isinstance(status, int) or not 200 <= status <= 999:
        raise MummyError(
            f"status {status!r} is not a final HTTP status code (200-999); "
            "1xx responses are sent by the server itself"
        )
    fields: list[tuple[str, str, bytes]] = []
    content_length: str | None = None
    has_date = wants_close = False
    cache = _caches()[1]
    for name, value in headers:
        known = cache.get((name, value))
        if known is not None:
            fields.append((known[0], value, known[1]))
            continue
        check_field(name, value)
        key = name.lower()
        if key == "content-length":
            content_length = value
            continue
        if key == "transfer-encoding":
            raise MummyError(
                "do not set Transfer-Encoding: mummy frames every response itself "
                "(Content-Length, or chunked for respond_stream)"
            )
        if key == "connection":
            # RFC 9110 §7.6.1: the server manages its connections; the one wish a
            # handler may have about it is to close this one.
            wants_close = wants_close or "close" in comma_tokens([value])
            continue
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
            cache[name, value] = (key, line)
        fields.append((key, value, line))
    if body is None:
        if content_length is not None and not (
            content_length.isdigit() and content_length.isascii()
        ):
            raise MummyError(f"invalid Content-Length {content_length!r}")
    elif status in NO_BODY_STATUSES or (content_length is not None and head_request and not body):
        # RFC 9110 §8.6 and §9.3.2: a 304 or a HEAD response may carry the length the
        # GET's 200 would have; a 204 none, and neither a body.
        if body:
            raise MummyError(f"a {status} response cannot have a body")
        if status == 204 and content_length is not None:
            raise MummyError("a 204 response cannot have a Content-Length")
        if content_length is not None and not (
            content_length.isdigit() and content_length.isascii()
        ):
            raise MummyError(f"invalid Content-Length {content_length!r}")
    else:
        if content_length is not None and content_length != str(len(body)):
            raise MummyError(
                f"Content-Length {content_length} does not match the body ({len(body)} bytes); "
                "leave Content-Length out and mummy sets it"
            )
        content_length = str(len(body))
    return fields, content_length, has_date, wants_close


def serialize(
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    head_request: bool,
    http10: bool,
    keep_alive: bool,
) -> tuple[bytes, bool]:
    """An HTTP/1.1 response: (wire bytes, keep the connection open). `keep_alive` is
    what the request and the server allow; the handler may still ask to close."""
    fields, content_length, has_date, wants_close = _checked(status, headers, body, head_request)
    out = [status_line(status)]
    out += [line for _, _, line in fields]
    if content_length is not None:
        out.append(b"Content-Length: %s\r\n" % content_length.encode("ascii"))
    keep_alive = keep_alive and not wants_close
    _end_head(out, has_date=has_date, keep_alive=keep_alive, http10=http10)
    if body and not head_request:
        out.append(body)
    return b"".join(out), keep_alive


def _end_head(out: list[bytes], *, has_date: bool, keep_alive: bool, http10: bool) -> None:
    """The end of an HTTP/1.1 head: Date, the connection's fate, the blank line."""
    if not has_date:
        out.append(b"Date: " + http_date().encode("ascii") + b"\r\n")
    if not keep_alive:
        out.append(b"Connection: close\r\n")
    elif http10:
        out.append(b"Connection: keep-alive\r\n")
    out.append(b"\r\n")


def _h2_list(
    kept: list[tuple[str, str, bytes]], content_length: str | None, has_date: bool
) -> list[tuple[str, str]]:
    """Checked fields for HTTP/2: lower-case names, no connection-specific fields
    (RFC 9113 §8.2.2), the length and the date."""
    fields = [(key, value) for key, value, _ in kept if key not in CONNECTION_FIELDS]
    if content_length is not None:
        fields.append(("content-length", content_length))
    if not has_date:
        fields.append(("date", http_date()))
    return fields


def h2_fields(
    status: int, headers: list[tuple[str, str]], body: bytes, *, head_request: bool
) -> tuple[list[tuple[str, str]], bytes]:
    """The same response for HTTP/2. Returns (fields, body to send)."""
    kept, content_length, has_date, _ = _checked(status, headers, body, head_request)
    return _h2_list(kept, content_length, has_date), b"" if head_request else body


def _error_parts(
    status: int, message: str, headers: tuple[tuple[str, str], ...]
) -> tuple[list[tuple[str, str]], bytes]:
    """The fields and body of a response the server makes on its own. Every 503
    says when to come back (RFC 9110 §10.2.3), one second unless `headers` do."""
    body = f"{status} {REASONS.get(status, 'Error')}: {message}\n".encode()
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


def error_message(
    conn: Connection, stream_id: int, status: int, why: str
) -> Http1Response | H2Response:
    """The server's own answer to a request no handler saw, in its protocol:
    HTTP/1.1 closes the connection after it; HTTP/2 answers on the stream only."""
    if stream_id:
        fields, body = h2_error_response(status, why)
        return H2Response(conn, stream_id, status, fields, body)
    return Http1Response(conn, error_response(status, why), keep_alive=False)


def _content_coding(status: int, pairs: list[tuple[str, str]], accept_encoding: str | None) -> str:
    """The content coding for a response the handler sent in identity, when the
    response and the client allow one ('identity' otherwise); edits `pairs`
    (Content-Encoding, Vary, Content-Length) to say so. Raises NotAcceptable when
    the client refuses identity and all we offer."""
    if status in NO_BODY_STATUSES or status < 200:
        return "identity"
    content_type = None
    for name, value in pairs:
        key = name.lower()
        if key == "content-encoding":
            return "identity"
        if key == "content-type":
            content_type = value
    if not compressible(content_type):
        return "identity"
    coding = negotiate(accept_encoding)
    # The choice depended on Accept-Encoding: caches must know (RFC 9110 §12.5.5).
    vary = [i for i, (name, _) in enumerate(pairs) if name.lower() == "vary"]
    if not vary:
        pairs.append(("Vary", "Accept-Encoding"))
    elif "accept-encoding" not in pairs[vary[0]][1].lower():
        name, value = pairs[vary[0]]
        pairs[vary[0]] = (name, f"{value}, Accept-Encoding")
    if coding != "identity":
        pairs[:] = [(n, v) for n, v in pairs if n.lower() != "content-length"]
        pairs.append(("Content-Encoding", coding))
    return coding


def _content_coded(
    status: int,
    pairs: list[tuple[str, str]],
    data: bytes,
    accept_encoding: str | None,
    config: ServerConfig,
) -> bytes:
    """`data` compressed when `_content_coding` picks a coding, else as it is."""
    coding = _content_coding(status, pairs, accept_encoding)
    if coding == "identity":
        return data
    return compress(data, coding, gzip_level=config.gzip_level, zstd_level=config.zstd_level)


def encode_response(
    conn: Connection,
    stream_id: int,
    request_method: str,
    request_version: str,
    request_keep_alive: bool,
    request_headers: Mapping[str, str],
    status: int,
    pairs: list[tuple[str, str]],
    data: bytes,
    *,
    compress_body: bool,
    config: ServerConfig,
    server_closing: bool,
) -> tuple[Http1Response | H2Response, int, int]:
    """The message to post for a handler's response to a request (its stream id,
    0 for HTTP/1.x; its method, version, keep-alive allowance (RFC 9112 §9.3) and
    fields), with the status and body size sent (406 replaces a response the
    client cannot accept). Raises MummyError as `serialize` does. Whether an
    HTTP/1.1 connection stays open is decided here, once: the request allows it,
    the server is not closing, the handler did not ask to close."""
    if compress_body and config.compress and len(data) > config.compress_min_size:
        try:
            accept = request_headers.get("accept-encoding")
            data = _content_coded(status, pairs, data, accept, config)
        except NotAcceptable:
            # RFC 9110 §15.5.7: the client refuses identity and all we offer.
            status, pairs = 406, [("Content-Type", "text/plain; charset=utf-8")]
            data = b"406 Not Acceptable: no acceptable content coding\n"
    head_request = request_method == "HEAD"
    if stream_id:
        fields, body = h2_fields(status, pairs, data, head_request=head_request)
        return H2Response(conn, stream_id, status, fields, body), status, len(data)
    wire, keep_alive = serialize(
        status,
        pairs,
        data,
        head_request=head_request,
        http10=request_version == "HTTP/1.0",
        keep_alive=request_keep_alive and not server_closing,
    )
    return Http1Response(conn, wire, keep_alive), status, len(data)


# How a streamed HTTP/1.x body is delimited (RFC 9112 §6.3).
CHUNKED = 1  # Transfer-Encoding: chunked (HTTP/1.1)
LENGTH = 2  # the handler's Content-Length
UNTIL_CLOSE = 3  # the connection's end (HTTP/1.0 without a Content-Length)


class StreamHead:
    """What `stream_head` decided for a streamed response: the HTTP/1.1 head (or
    the HTTP/2 fields), how the body is delimited, its content coding, whether the
    connection stays open after it, and whether there is a body at all (not for
    HEAD, 204 and 304: then the head is the whole response)."""

    __slots__ = ("coding", "fields", "framing", "keep_alive", "length", "no_body", "status", "wire")

    def __init__(
        self,
        status: int,
        *,
        wire: bytes,
        fields: list[tuple[str, str]],
        framing: int,
        length: int | None,
        coding: str,
        keep_alive: bool,
        no_body: bool,
    ) -> None:
        self.status = status
        self.wire = wire
        self.fields = fields
        self.framing = framing
        self.length = length
        self.coding = coding
        self.keep_alive = keep_alive
        self.no_body = no_body


def stream_head(
    stream_id: int,
    request_method: str,
    request_version: str,
    request_keep_alive: bool,
    request_headers: Mapping[str, str],
    status: int,
    pairs: list[tuple[str, str]],
    *,
    compress_body: bool,
    config: ServerConfig,
    server_closing: bool,
) -> StreamHead:
    """The head of a streamed response (`encode_response`'s rules, a body of unknown
    length). A handler's Content-Length delimits the body and turns compression off
    (the compressed length is unknown); otherwise HTTP/1.1 is chunked and HTTP/1.0
    ends with the connection. Raises MummyError as `serialize` does, NotAcceptable
    when the client refuses every coding (`compress_body` only)."""
    head_request = request_method == "HEAD"
    no_body = head_request or status in NO_BODY_STATUSES
    given_length = any(name.lower() == "content-length" for name, _ in pairs)
    coding = "identity"
    if compress_body and config.compress and not given_length and not no_body:
        coding = _content_coding(status, pairs, request_headers.get("accept-encoding"))
    elif compress_body and config.compress and head_request and not given_length:
        _content_coding(status, pairs, request_headers.get("accept-encoding"))  # same fields
    kept, content_length, has_date, wants_close = _checked(status, pairs, None, head_request)
    length = None if content_length is None else int(content_length)
    if stream_id:
        return StreamHead(
            status,
            wire=b"",
            fields=_h2_list(kept, content_length, has_date),
            framing=LENGTH if length is not None else CHUNKED,
            length=length,
            coding=coding,
            keep_alive=True,
            no_body=no_body,
        )
    http10 = request_version == "HTTP/1.0"
    keep_alive = request_keep_alive and not server_closing and not wants_close
    out = [status_line(status)]
    out += [line for _, _, line in kept]
    if no_body or content_length is not None:
        framing = LENGTH
        if content_length is not None:
            out.append(b"Content-Length: %s\r\n" % content_length.encode("ascii"))
    elif http10:
        framing, keep_alive = UNTIL_CLOSE, False
    else:
        framing = CHUNKED
        out.append(b"Transfer-Encoding: chunked\r\n")
    _end_head(out, has_date=has_date, keep_alive=keep_alive, http10=http10)
    return StreamHead(
        status,
        wire=b"".join(out),
        fields=[],
        framing=framing,
        length=length if not no_body else 0,
        coding=coding,
        keep_alive=keep_alive,
        no_body=no_body,
    )
