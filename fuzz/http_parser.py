"""Fuzz target: the sans-IO HTTP/1.1 request parser (mummy.core.http1.RequestParser).

Input: byte 0 picks the size limits, byte 1 seeds the split points, the rest is
what a client sent. It is parsed whole, in pieces cut at up to 8 seeded points, and
one byte at a time. A failure is any exception but ProtocolError, a ProtocolError
whose status is not 4xx, 501 or 505, an outcome that depends on the split, or a
first request that h11 reads differently while both accept it.

Run through ci/fuzz.py, or:
    .venv-gil/bin/python fuzz/http_parser.py fuzz/corpus/http_parser -max_total_time=30
"""

import itertools
import random
import sys

import atheris

with atheris.instrument_imports():
    import h11

    from mummy.core.http1 import ParsedRequest, ProtocolError, RequestParser

LIMITS = [(8192, 1 << 20), (8192, 1 << 20), (64, 16), (300, 100)]

Fields = tuple[str, str, str, tuple[tuple[str, str], ...], bytes]
Outcome = tuple[list[Fields], bytes, int | None]


def fields(request: ParsedRequest) -> Fields:
    head = request.head
    return head.method, head.target, head.version, tuple(head.headers), request.body


def parse(pieces: list[bytes], limits: tuple[int, int]) -> tuple[Outcome, list[int], str]:
    """The outcome, where in the joined input each request started, and the reason
    for a refusal ("" without one)."""
    parser = RequestParser(*limits)
    buf = bytearray()
    requests: list[Fields] = []
    starts = [0]
    fed = 0
    try:
        for piece in pieces:
            buf += piece
            fed += len(piece)
            while (request := parser.next_request(buf)) is not None:
                requests.append(fields(request))
                starts.append(fed - len(buf))
    except ProtocolError as exc:
        if not (400 <= exc.status < 500 or exc.status in (501, 505)):
            raise AssertionError(f"refused with status {exc.status}: {exc.reason}") from None
        return (requests, b"", exc.status), starts, exc.reason
    return (requests, bytes(buf), None), starts, ""


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(c for c in set(cuts) if 0 < c < len(data)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


def known_bug_cuts(data: bytes, starts: list[int]) -> set[int]:
    """KNOWN BUG (tests/unit/test_http1_properties.py::test_leading_empty_line_split_*):
    a cut between the CR and LF of an empty line before a request gets a 400."""
    bad = set()
    for start in starts:
        pos = start
        while data.startswith(b"\r\n", pos):
            bad.add(pos + 1)
            pos += 2
    return bad


def trailer_limit_bug(whole: Outcome, pieces: Outcome, reason: str) -> bool:
    """KNOWN BUG (test_trailer_limit_does_not_depend_on_how_it_arrives): trailers of
    exactly max_headers_len bytes get 431 when the final LF arrives on its own."""
    return (
        reason == "trailer section too large"
        and pieces[0] == whole[0][: len(pieces[0])]
        and (len(pieces[0]) < len(whole[0]) or whole[2] is None)
    )


def hits_known_backtracking(data: bytes) -> bool:
    """KNOWN BUG (test_chunk_extension_refusal_is_not_exponential): _CHUNK_EXT takes
    time exponential in the ';' and '=' of a chunk line that it refuses."""
    return any(line.count(b";") + line.count(b"=") >= 12 for line in data.split(b"\r\n"))


def normal(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """h11 lower-cases Transfer-Encoding values; nothing else differs in form."""
    return [(n, v.lower() if n.lower() == "transfer-encoding" else v) for n, v in headers]


def h11_first(data: bytes) -> tuple[str, str, str, list[tuple[str, str]], bytes] | None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
    conn.receive_data(data)
    request, body = None, b""
    try:
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                return None
    except h11.RemoteProtocolError:
        return None
    assert request is not None
    headers = normal(
        [(n.decode("latin-1"), v.decode("latin-1")) for n, v in request.headers.raw_items()]
    )
    version = "HTTP/" + request.http_version.decode()
    return request.method.decode(), request.target.decode(), version, headers, body


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    limits = LIMITS[data[0] % len(LIMITS)]
    rng = random.Random(data[1])
    payload = data[2:]
    if hits_known_backtracking(payload):
        return
    whole, starts, _ = parse([payload], limits)
    bad = known_bug_cuts(payload, starts)
    cuts = [rng.randrange(len(payload) + 1) for _ in range(rng.randint(1, 8))]
    for cut in (cuts, range(1, len(payload))):
        pieces = split(payload, [c for c in cut if c not in bad])
        outcome, _, reason = parse(pieces, limits)
        if outcome != whole and not trailer_limit_bug(whole, outcome, reason):
            raise AssertionError(f"{outcome!r} in pieces {pieces!r}, {whole!r} whole")
    requests = whole[0]
    if requests:
        theirs = h11_first(payload)
        if theirs is not None:
            method, target, version, headers, body = requests[0]
            if (method, target, version, normal(list(headers)), body) != theirs:
                raise AssertionError(f"h11 reads the first request as {theirs!r}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
