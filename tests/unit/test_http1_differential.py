"""The fast path accepts only a strict subset of the grammar, and on that subset it
gives exactly h11's answer: random and hand-picked request heads."""

import random

import h11
import pytest

from mummy.core.http1 import parse_head_fast

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VCHAR = "".join(chr(c) for c in range(0x21, 0x7F))
NOISE = ' \t\x00\x7f\x80\xe9\xff:;,"()/@'


def h11_parse(head: bytes) -> tuple[str, str, str, list[tuple[str, str]]] | None:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(head)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return None
    assert isinstance(event, h11.Request)
    headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in event.headers.raw_items()]
    version = "HTTP/" + event.http_version.decode()
    return event.method.decode(), event.target.decode(), version, headers


def fast_parse(head: bytes) -> tuple[str, str, str, list[tuple[str, str]]] | None:
    return parse_head_fast(head[:-2].decode("latin-1"))


def random_text(rng: random.Random, alphabet: str, lo: int, hi: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def random_head(rng: random.Random) -> bytes:
    method = random_text(rng, TCHAR if rng.random() < 0.9 else TCHAR + NOISE, 1, 8)
    target = "/" + random_text(rng, VCHAR if rng.random() < 0.9 else VCHAR + NOISE, 0, 20)
    version = rng.choice(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/1.2", "http/1.1", "HTTP/11"])
    lines = [f"{method} {target} {version}"]
    if version == "HTTP/1.1" or rng.random() < 0.5:
        lines.append(f"Host:{rng.choice(['', ' ', '  '])}example.com")
    for _ in range(rng.randint(0, 6)):
        name = random_text(rng, TCHAR if rng.random() < 0.9 else TCHAR + NOISE, 1, 10)
        alphabet = VCHAR + " " if rng.random() < 0.8 else VCHAR + NOISE
        value = random_text(rng, alphabet, 0, 24)
        if name.lower() in ("content-length", "transfer-encoding", "host"):
            continue  # framing is checked after both paths, not by this comparison
        lines.append(f"{name}:{rng.choice(['', ' ', '\t', '  '])}{value}{rng.choice(['', ' '])}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


HAND_PICKED = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET /a/b?c=d&e=%20f HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Spaces:   \r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX: a b  c\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX:\ta\t\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX: a\tb\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX: caf\xc3\xa9\r\n\r\n",
    b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX : a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n: a\r\n\r\n",
    b"GET / HTTP/1.2\r\nHost: x\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
    b"get /lower-case-method HTTP/1.1\r\nHost: x\r\n\r\n",
    b"M-SEARCH * HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /" + b"a" * 4000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
]


def check(head: bytes) -> bool:
    """True when the fast path accepted `head` (and then agreed with h11)."""
    fast = fast_parse(head)
    if fast is None:
        return False
    reference = h11_parse(head)
    assert reference is not None, f"fast path accepted what h11 refuses: {head!r}"
    assert fast == reference, f"fast path and h11 disagree on {head!r}"
    return True


@pytest.mark.parametrize("head", HAND_PICKED)
def test_hand_picked(head: bytes) -> None:
    check(head)


def test_random_heads() -> None:
    rng = random.Random(20261125)
    accepted = sum(check(random_head(rng)) for _ in range(5000))
    # Both outcomes must be well represented, or the comparison proves little.
    assert 1000 < accepted < 4500, accepted
