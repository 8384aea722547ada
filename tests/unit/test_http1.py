"""The sans-IO request parser, with byte strings: framing, limits and every refusal."""

import pytest

from mummy.core.http1 import ParsedRequest, ProtocolError, RequestParser


def parse_all(data: bytes, max_headers_len: int = 8192, max_body_len: int = 1 << 20):
    parser = RequestParser(max_headers_len, max_body_len)
    buf = bytearray(data)
    requests = []
    while (request := parser.next_request(buf)) is not None:
        requests.append(request)
    return requests, buf


def parse_one(data: bytes, **limits: int) -> ParsedRequest:
    requests, rest = parse_all(data, **limits)
    assert len(requests) == 1 and not rest
    return requests[0]


def refused(data: bytes, **limits: int) -> int:
    with pytest.raises(ProtocolError) as info:
        parse_all(data, **limits)
    return info.value.status


def test_simple_get() -> None:
    r = parse_one(b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nAccept:  */*  \r\n\r\n")
    assert (r.head.method, r.head.target, r.head.version) == ("GET", "/a?b=c", "HTTP/1.1")
    assert r.head.headers == [("Host", "x"), ("Accept", "*/*")]
    assert r.head.keep_alive and r.body == b""


def test_fed_one_byte_at_a_time() -> None:
    data = (
        b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nT: v\r\n\r\n"
    )
    parser = RequestParser(8192, 1 << 20)
    buf = bytearray()
    results = []
    for i in range(len(data)):
        buf += data[i : i + 1]
        request = parser.next_request(buf)
        if request is not None:
            results.append(request)
    assert [r.body for r in results] == [b"Wikipedia"] and not buf


def test_pipelined_requests_and_leftover() -> None:
    requests, rest = parse_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HT"
    )
    assert [r.head.target for r in requests] == ["/", "/2"]
    assert requests[0].body == b"abc" and rest == b"GET /3 HT"


def test_leading_empty_lines_are_ignored() -> None:
    assert parse_one(b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n").head.target == "/"


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        ("1.1", None, True),
        ("1.1", "close", False),
        ("1.1", "Keep-Alive, Close", False),
        ("1.0", None, False),
        ("1.0", "keep-alive", True),
        ("1.0", "KEEP-ALIVE", True),
    ],
)
def test_keep_alive(version: str, connection: str | None, keep_alive: bool) -> None:
    head = f"GET / HTTP/{version}\r\nHost: x\r\n"
    if connection:
        head += f"Connection: {connection}\r\n"
    assert parse_one((head + "\r\n").encode()).head.keep_alive is keep_alive


def test_http10_needs_no_host() -> None:
    assert parse_one(b"GET / HTTP/1.0\r\n\r\n").head.version == "HTTP/1.0"


def test_expect_continue_flag() -> None:
    parser = RequestParser(8192, 1 << 20)
    buf = bytearray(
        b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    )
    assert parser.next_request(buf) is None and parser.continue_due
    buf += b"ok"
    assert parser.next_request(buf).body == b"ok"  # type: ignore[union-attr]


def test_fallback_to_h11_for_valid_but_unusual_heads() -> None:
    # Tabs and obs-text in values, absolute-form and asterisk-form targets.
    r = parse_one(
        b"GET http://example.com/p?q HTTP/1.1\r\nHost: example.com\r\nX: a\tb\xe9\r\n\r\n"
    )
    assert r.head.target == "http://example.com/p?q"
    assert r.head.headers[1] == ("X", "a\tb\xe9")
    assert parse_one(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n").head.target == "*"


# Mummy's tests/test_requestsmuggling.nim, with the RFC's expectation: a 400 answer
# (Mummy closes without a word), and in both cases nothing after the first request runs.
CL_TE = (
    b"POST /search HTTP/1.1\r\nHost: vulnerable-website.com\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 49\r\n"
    b"Transfer-Encoding: chunked\r\n\r\ne\r\nq=smuggling&x=\r\n0\r\n\r\n"
    b"GET /404 HTTP/1.1\r\nFoo: x\r\n"
)
TE_CL = (
    b"POST /search HTTP/1.1\r\nHost: vulnerable-website.com\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n7c\r\nGET /404 HTTP/1.1\r\nHost: vulnerable-website.com\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 144\r\n\r\nx=\r\n0\r\n"
)


@pytest.mark.parametrize("data", [CL_TE, TE_CL], ids=["CL.TE", "TE.CL"])
def test_request_smuggling_refused(data: bytes) -> None:
    assert refused(data) == 400


HOST = b"Host: x\r\n"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        # Bad request lines (Mummy closes silently; RFC 9112 §3 answers 400/505).
        (b"GET /\r\n\r\n", 400),
        (b"GET / HTTP/1.1 x\r\n" + HOST + b"\r\n", 400),
        (b"GET / http/1.1\r\n" + HOST + b"\r\n", 400),
        (b"GET / HTTP/2.0\r\n" + HOST + b"\r\n", 505),
        (b"GET / HTTP/3.0\r\n\r\n", 505),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),  # the HTTP/2 preface, without h2
        (b"G(T / HTTP/1.1\r\n" + HOST + b"\r\n", 400),
        (b"GET  / HTTP/1.1\r\n" + HOST + b"\r\n", 400),
        (b"GET /a b HTTP/1.1\r\n" + HOST + b"\r\n", 400),
        # Host: RFC 9112 §3.2 (Mummy does not require it).
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400),
        # Field syntax.
        (b"GET / HTTP/1.1\r\n" + HOST + b"X: a\r\n b\r\n\r\n", 400),  # obs-fold
        (b"GET / HTTP/1.1\r\n" + HOST + b"\tX: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n" + HOST + b"X : a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n" + HOST + b"X(: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n" + HOST + b"no colon\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n" + HOST + b"X: a\x00b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n" + HOST + b"X: a\rb\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n" + HOST + b"X: a\nY: b\r\n\r\n", 400),
        # Content-Length (Mummy's derived cases: duplicate, +1, 01 allowed by RFC? see below).
        (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\na", 400),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: +1\r\n\r\na", 400),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 1x\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: \r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 1, 1\r\n\r\na", 400),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 99999999999999999999\r\n\r\n", 400),
        # Transfer-Encoding.
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked, chunked\r\n\r\n", 400),
        (
            b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        # Chunk sizes (chunk extensions are allowed by RFC 9112 §7.1.1; Mummy refuses them).
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nx\r\n", 400),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n-1\r\n", 400),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n a\r\n", 400),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n0x1\r\n", 400),
        (
            b"POST / HTTP/1.1\r\n"
            + HOST
            + b"Transfer-Encoding: chunked\r\n\r\n"
            + b"1" * 16
            + b"\r\n",
            400,
        ),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n", 400),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n1\nab\r\n", 400),
        # Expectations.
        (b"PUT / HTTP/1.1\r\n" + HOST + b"Expect: something\r\n\r\n", 417),
    ],
)
def test_refusals(data: bytes, status: int) -> None:
    assert refused(data) == status


def test_leading_zeros_in_lengths_are_valid() -> None:
    # RFC 9110 §8.6 and RFC 9112 §7.1: 1*DIGIT and 1*HEXDIG; Mummy refuses these.
    assert parse_one(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 01\r\n\r\na").body == b"a"
    chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0a\r\n"
    assert parse_one(chunked + b"0123456789\r\n00\r\n\r\n").body == b"0123456789"


def test_head_size_limit() -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 100 + b"\r\n\r\n"
    assert parse_one(head, max_headers_len=len(head)).head.target == "/"
    assert refused(head, max_headers_len=len(head) - 1) == 431
    # Without an end of head in sight, refused as soon as the limit is passed.
    assert refused(b"GET / HTTP/1.1\r\nX: " + b"a" * 200, max_headers_len=100) == 431


def test_body_size_limit_declared_and_chunked() -> None:
    assert (
        refused(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n", max_body_len=10) == 413
    )
    chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert parse_one(chunked + b"a\r\n0123456789\r\n0\r\n\r\n", max_body_len=10).body
    assert refused(chunked + b"a\r\n0123456789\r\n1\r\n", max_body_len=10) == 413


def test_declared_body_too_large_is_refused_before_the_body_arrives() -> None:
    parser = RequestParser(8192, 100)
    with pytest.raises(ProtocolError) as info:
        parser.next_request(bytearray(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n"))
    assert info.value.status == 413


def test_trailer_section_is_bounded() -> None:
    chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
    assert refused(chunked + b"T: " + b"v" * 200 + b"\r\n", max_headers_len=100) == 431


# Mummy's tests/test.nim: headerContainsToken, ported to the token lists we use for
# Connection, Transfer-Encoding and Expect (RFC 9110 §5.6.1, case-insensitive).
@pytest.mark.parametrize(
    ("value", "token", "found"),
    [
        ("a", "a", True),
        ("a", "A", True),
        ("a", "b", False),
        ("a,b", "b", True),
        ("a,b", "B", True),
        ("a,b", "c", False),
        ("a, bbbb,cc  ,     dd   ,,", "bbbb", True),
        ("a, bbbb,cc  ,     dd   ,,", "BbBB", True),
        ("a, bbbb,cc  ,     dd   ,,", "cc", True),
        ("a, bbbb,cc  ,     dd   ,,", "DD", True),
        ("a, bbbb,cc  ,     dd   ,,", "d", False),  # no partial-token match
    ],
)
def test_header_tokens(value: str, token: str, found: bool) -> None:
    from mummy.core.fields import comma_tokens

    assert (token.lower() in comma_tokens([value])) is found


# Mummy's strictParseInt / strictParseHex cases, as Content-Length and chunk-size values.
# RFC 9110 §8.6 (1*DIGIT) and RFC 9112 §7.1 (1*HEXDIG) allow leading zeros; Mummy does not.
@pytest.mark.parametrize("value", ["", "+", "-", "-0", "+1", "10a", "-1", "1.0", " 1", "0x1"])
def test_invalid_content_length_values(value: str) -> None:
    head = f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {value}\r\n\r\n".encode()
    # " 1" is read as "1" (OWS is not part of the value), so it waits for a body.
    if value == " 1":
        assert parse_all(head)[0] == []
    else:
        assert refused(head) == 400


@pytest.mark.parametrize("value", ["0", "010", "9999", "1048576"])
def test_valid_content_length_values(value: str) -> None:
    n = int(value)
    request = parse_one(
        f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {value}\r\n\r\n".encode() + b"a" * n,
        max_body_len=1 << 20,
    )
    assert len(request.body) == n


@pytest.mark.parametrize(
    ("size", "ok"),
    [("0f", True), ("00", True), ("F", True), ("1" * 15, False), ("0x1", False), ("", False)],
)
def test_chunk_size_values(size: str, ok: bool) -> None:
    data = (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + size.encode()
        + b"\r\n"
    )
    n = int(size, 16) if ok else 0
    if ok:
        body = parse_one(
            data + b"z" * n + (b"\r\n0\r\n\r\n" if n else b"\r\n"), max_body_len=1 << 20
        ).body
        assert body == b"z" * n
    else:
        # 15 hex digits is more than any body we would take: refused as too large or invalid.
        assert refused(data + b"z\r\n0\r\n\r\n") in (400, 413)
