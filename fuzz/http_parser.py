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
    whole, _, _ = parse([payload], limits)
    cuts = [rng.randrange(len(payload) + 1) for _ in range(rng.randint(1, 8))]
    for cut in (cuts, range(1, len(payload))):
        pieces = split(payload, list(cut))
        outcome, _, _ = parse(pieces, limits)
        if outcome != whole:
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
