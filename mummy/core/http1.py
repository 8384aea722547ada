"""Sans-IO HTTP/1.1 request parsing (RFC 9112): bytes in, requests out.

No sockets, threads or clocks here. A `RequestParser` belongs to one connection
and is driven by the IO thread. Every protocol error is a `ProtocolError`
carrying the status code to answer with; the connection is closed after it.

Heads go through a fast path that accepts only a strict subset of the grammar
(token method, origin-form target, ASCII field values). Anything else is handed
to h11, whose answer on the strict subset is the same (tests/unit/test_http1_differential.py).
Framing (Content-Length, Transfer-Encoding, Host) is checked here, for both
paths, because h11 alone tolerates CL + TE and duplicate identical lengths.
"""

import re
from dataclasses import dataclass

import h11

from mummy.core.fields import TOKEN as _TOKEN
from mummy.core.fields import comma_tokens

# RFC 9112 §3: request-line = method SP request-target SP HTTP-version (origin-form only here)
_FAST_REQUEST_LINE = re.compile(r"(" + _TOKEN + r") (/[\x21-\x7e]*) HTTP/1\.([01])\r\n")
# RFC 9112 §5: field-line = field-name ":" OWS field-value OWS, restricted to visible ASCII
_FIELD_VALUE = r"(?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?"
_FAST_FIELDS = re.compile(rf"({_TOKEN}):[ \t]*({_FIELD_VALUE})[ \t]*\r\n")
_FAST_FIELD_BLOCK = re.compile(rf"(?:{_TOKEN}:[ \t]*{_FIELD_VALUE}[ \t]*\r\n)*")
_DIGITS = re.compile(r"[0-9]{1,18}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
# RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ),
# chunk-ext-val = token / quoted-string. Tokens cannot contain ";", and every quantifier
# is possessive, so a rejected line costs linear time (this runs on the IO thread).
_CHUNK_EXT = re.compile(
    rb"(?:[ \t]*+;[ \t]*+"
    + _TOKEN.encode()
    + rb"(?:[ \t]*+=[ \t]*+(?:"
    + _TOKEN.encode()
    + rb'|"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*+"))?+)*+[ \t]*+'
)

_MAX_CHUNK_LINE = 4096
_FRAMING_FIELDS = frozenset(
    ("host", "content-length", "transfer-encoding", "connection", "expect", "content-encoding")
)


class ProtocolError(Exception):
    """A request the server must refuse: answer `status` and close the connection."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(slots=True)
class RequestHead:
    method: str
    target: str
    version: str  # "HTTP/1.0", "HTTP/1.1" or "HTTP/2"
    headers: list[tuple[str, str]]
    keep_alive: bool
    expect_continue: bool
    content_length: int  # -1 when chunked
    chunked: bool
    content_encoding: str | None  # of the body, decoded on the worker


@dataclass(slots=True)
class ParsedRequest:
    head: RequestHead
    body: bytes
    received_at: float = 0.0  # time.monotonic() when it went to the workers
    stream_id: int = 0  # HTTP/2 only


def parse_head_fast(text: str) -> tuple[str, str, str, list[tuple[str, str]]] | None:
    """The strict subset: `text` is the head, latin-1 decoded, up to and including
    the CRLF of its last field line. Returns (method, target, version, headers) or
    None to defer to h11. Two regex calls and a findall: no per-line Python loop."""
    m = _FAST_REQUEST_LINE.match(text)
    if m is None:
        return None
    start = m.end()
    if _FAST_FIELD_BLOCK.fullmatch(text, start) is None:
        return None
    version = "HTTP/1.1" if m[3] == "1" else "HTTP/1.0"
    return m[1], m[2], version, _FAST_FIELDS.findall(text, start)


def parse_head_h11(head: bytes) -> tuple[str, str, str, list[tuple[str, str]]]:
    """The full grammar, through h11. `head` ends with the empty line (CRLF CRLF)."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=len(head) + 1)
    conn.receive_data(head)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError as exc:
        raise ProtocolError(exc.error_status_hint, str(exc)) from None
    if not isinstance(event, h11.Request):
        raise ProtocolError(400, "malformed request head")
    version = "HTTP/" + event.http_version.decode("ascii")
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise ProtocolError(505, f"{version} is not supported")
    # h11 validated every field line; split them ourselves so that duplicates it
    # folds away (identical Content-Length lines) stay visible to the framing checks.
    headers = []
    for line in head.split(b"\r\n")[1:-2]:
        name, _, value = line.partition(b":")
        headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return event.method.decode("ascii"), event.target.decode("ascii"), version, headers


def parse_head_slow(
    lines: list[bytearray], head: bytes
) -> tuple[str, str, str, list[tuple[str, str]]]:
    """What the fast path declined: `lines` are the head's lines without CRLFs,
    `head` the raw bytes including the final empty line."""
    # RFC 9112 §2.2: a bare CR or LF is not a line terminator we accept.
    crlf = head.count(b"\r\n")
    if head.count(b"\n") != crlf or head.count(b"\r") != crlf:
        raise ProtocolError(400, "bare CR or LF in request head")
    if lines[0].startswith(b"PRI * HTTP/2"):
        raise ProtocolError(
            400, "HTTP/2 is not enabled on this server (it needs: pip install mummy-server[h2])"
        )
    for line in lines[1:]:
        # RFC 9112 §5.2: obs-fold is rejected with 400.
        if line.startswith((b" ", b"\t")):
            raise ProtocolError(400, "obsolete line folding in request head")
    version = bytes(lines[0].rpartition(b" ")[2])
    if version.startswith(b"HTTP/") and version not in (b"HTTP/1.0", b"HTTP/1.1"):
        raise ProtocolError(505, f"{version.decode('latin-1')} is not supported")
    return parse_head_h11(head)


def frame_request(
    method: str, target: str, version: str, headers: list[tuple[str, str]], max_body_len: int
) -> RequestHead:
    """Apply RFC 9112 §6 framing rules and connection semantics to a parsed head."""
    content_length: list[str] = []
    transfer_encoding: list[str] = []
    connection: list[str] = []
    expect: list[str] = []
    content_encoding: list[str] = []
    hosts = 0
    for name, value in headers:
        key = name.lower()
        if key not in _FRAMING_FIELDS:
            continue
        if key == "host":
            hosts += 1
        elif key == "content-length":
            content_length.append(value)
        elif key == "transfer-encoding":
            transfer_encoding.append(value)
        elif key == "connection":
            connection.append(value)
        elif key == "expect":
            expect.append(value)
        else:
            content_encoding.append(value)
    http11 = version == "HTTP/1.1"
    # RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one otherwise.
    if hosts > 1 or (http11 and hosts == 0):
        raise ProtocolError(400, "an HTTP/1.1 request needs exactly one Host header")
    chunked = False
    length = 0
    if transfer_encoding:
        if not http11:
            # RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
            raise ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request")
        if content_length:
            # RFC 9112 §6.3: CL + TE is a smuggling attempt; refuse and close.
            raise ProtocolError(400, "both Content-Length and Transfer-Encoding")
        codings = comma_tokens(transfer_encoding)
        if len(transfer_encoding) > 1 or codings.count("chunked") > 1 or not codings:
            raise ProtocolError(400, "repeated or empty Transfer-Encoding")
        if codings != ["chunked"]:
            # RFC 9112 §6.1: an unknown transfer coding gets 501.
            raise ProtocolError(501, f"unsupported transfer coding {transfer_encoding[0]!r}")
        chunked = True
        length = -1
    elif content_length:
        if len(content_length) > 1:
            raise ProtocolError(400, "more than one Content-Length header")
        raw = content_length[0]
        if _DIGITS.fullmatch(raw) is None:
            raise ProtocolError(400, "invalid Content-Length")
        length = int(raw)
        if length > max_body_len:
            raise ProtocolError(413, "request body is larger than max_body_len")
    if connection:
        tokens = comma_tokens(connection)
        keep_alive = "close" not in tokens if http11 else "keep-alive" in tokens
    else:
        keep_alive = http11
    expect_continue = False
    if expect:
        if comma_tokens(expect) != ["100-continue"]:
            raise ProtocolError(417, "only 'Expect: 100-continue' is supported")
        expect_continue = http11
    return RequestHead(
        method,
        target,
        version,
        headers,
        keep_alive,
        expect_continue,
        length,
        chunked,
        ", ".join(content_encoding) if content_encoding else None,
    )


class RequestParser:
    """Turns a connection's receive buffer into complete requests, one at a time.

    `next_request(buf)` consumes one complete request from the front of `buf`
    (the connection's bytearray), or returns None when more bytes are needed.
    Owned by the IO thread; never shared.
    """

    __slots__ = (
        "_body",
        "_chunk_left",
        "_head",
        "_max_body_len",
        "_max_headers_len",
        "_pos",
        "_scan",
        "_trailer_len",
        "continue_due",
    )

    def __init__(self, max_headers_len: int, max_body_len: int) -> None:
        self._max_headers_len = max_headers_len
        self._max_body_len = max_body_len
        self._head: RequestHead | None = None
        self._scan = 0  # where the search for the end of the head resumes
        self._pos = 0  # chunked: bytes of buf already consumed
        self._chunk_left = -1  # chunked: -1 = expecting a size line, -2 = in trailers
        self._body = bytearray()
        self._trailer_len = 0
        # Set once when a head asking for 100-continue is waiting for its body.
        self.continue_due = False

    @property
    def idle(self) -> bool:
        """True between requests, when no part of a request head has been parsed."""
        return self._head is None

    def next_request(self, buf: bytearray) -> ParsedRequest | None:
        head = self._head
        if head is None:
            head = self._read_head(buf)
            if head is None:
                return None
        if head.chunked:
            body = self._read_chunked(buf)
            if body is None:
                return None
        else:
            n = head.content_length
            if len(buf) < n:
                return None
            body = bytes(buf[:n])
            del buf[:n]
        self._head = None
        self.continue_due = False
        return ParsedRequest(head, body)

    def _read_head(self, buf: bytearray) -> RequestHead | None:
        scan = self._scan
        if scan == 0:
            # RFC 9112 §2.2: ignore empty lines received before the request-line.
            while buf.startswith(b"\r\n"):
                del buf[:2]
            if buf == b"\r":
                return None  # maybe the CR of an empty line: wait for its LF
        end = buf.find(b"\r\n\r\n", scan - 3 if scan > 3 else 0)
        limit = self._max_headers_len
        if end < 0:
            if len(buf) > limit:
                raise ProtocolError(431, "request head is larger than max_headers_len")
            self._scan = len(buf)
            return None
        if end + 4 > limit:
            raise ProtocolError(431, "request head is larger than max_headers_len")
        parsed = parse_head_fast(buf[: end + 2].decode("latin-1"))
        if parsed is None:
            parsed = parse_head_slow(buf[:end].split(b"\r\n"), bytes(buf[: end + 4]))
        del buf[: end + 4]
        self._scan = 0
        method, target, version, headers = parsed
        head = frame_request(method, target, version, headers, self._max_body_len)
        self._head = head
        if head.chunked:
            self._pos = 0
            self._chunk_left = -1
            self._body = bytearray()
            self._trailer_len = 0
        self.continue_due = head.expect_continue and head.content_length != 0
        return head

    def _read_chunked(self, buf: bytearray) -> bytes | None:
        # RFC 9112 §7.1: chunk = chunk-size [chunk-ext] CRLF chunk-data CRLF;
        # last-chunk = 1*"0" [chunk-ext] CRLF; then trailer-section CRLF.
        pos = self._pos
        while True:
            if self._chunk_left == -1:
                eol = buf.find(b"\r\n", pos)
                # The same limit however the line arrives: a partial line may end in CR.
                if (
                    eol < 0 and len(buf) - pos > _MAX_CHUNK_LINE + 1
                ) or eol - pos > _MAX_CHUNK_LINE:
                    raise ProtocolError(400, "chunk size line too long")
                if eol < 0:
                    break
                line = bytes(buf[pos:eol])
                size_text, sep, ext = line.partition(b";")
                size_text = size_text.rstrip(b" \t")
                if _HEX.fullmatch(size_text) is None or (
                    sep and _CHUNK_EXT.fullmatch(b";" + ext) is None
                ):
                    raise ProtocolError(400, "invalid chunk size")
                size = int(size_text, 16)
                pos = eol + 2
                if size == 0:
                    self._chunk_left = -2
                    continue
                if len(self._body) + size > self._max_body_len:
                    raise ProtocolError(413, "request body is larger than max_body_len")
                self._chunk_left = size
            elif self._chunk_left == -2:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    # A trailer line counts with its CRLF; the final empty line does not.
                    # A partial line other than a lone CR will count at least one more byte.
                    partial = len(buf) - pos
                    lone_cr = partial == 1 and buf[pos] == 13
                    if (
                        partial
                        and not lone_cr
                        and self._trailer_len + partial + 1 > self._max_headers_len
                    ):
                        raise ProtocolError(431, "trailer section too large")
                    break
                if eol == pos:
                    del buf[: pos + 2]
                    self._pos = 0
                    body = bytes(self._body)
                    self._body = bytearray()
                    return body
                # Trailer fields are discarded (RFC 9112 §7.1.2 allows it).
                self._trailer_len += eol + 2 - pos
                if self._trailer_len > self._max_headers_len:
                    raise ProtocolError(431, "trailer section too large")
                pos = eol + 2
            else:
                size = self._chunk_left
                if len(buf) < pos + size + 2:
                    break
                if buf[pos + size : pos + size + 2] != b"\r\n":
                    raise ProtocolError(400, "chunk data not followed by CRLF")
                self._body += buf[pos : pos + size]
                pos += size + 2
                self._chunk_left = -1
        # Drop consumed bytes so a long body is not rescanned from its start.
        del buf[:pos]
        self._pos = 0
        return None
