"""Content-coding negotiation (RFC 9110 §12.5.3) and bounded request-body decoding."""

import gzip
import random
import zlib

import pytest
import zstandard

from mummy.core.compression import (
    DecodeError,
    NotAcceptable,
    compress,
    compressible,
    decode_body,
    negotiate,
)


@pytest.mark.parametrize(
    ("accept_encoding", "expected"),
    [
        (None, "identity"),
        ("", "identity"),
        ("gzip", "gzip"),
        ("GZIP", "gzip"),
        ("x-gzip", "gzip"),
        ("deflate", "deflate"),
        ("zstd", "zstd"),
        ("gzip, deflate, br, zstd", "zstd"),  # Chrome: all equal, zstd preferred
        ("gzip, deflate, br", "gzip"),  # Firefox, curl --compressed without zstd
        ("deflate, gzip", "gzip"),  # order in the header does not matter, q does
        ("  gzip ;  q=0.5 ,  zstd ; q=0.4 ", "gzip"),
        ("gzip;q=0.5, zstd;q=0.6", "zstd"),
        ("gzip;q=0", "identity"),
        ("gzip;q=0, zstd;q=0, deflate;q=0", "identity"),
        ("br", "identity"),
        ("*", "zstd"),
        ("*;q=0.5, gzip;q=0.8", "gzip"),
        ("gzip;q=0, *", "zstd"),
        ("identity", "identity"),
        ("identity, gzip;q=0.5", "identity"),
        ("identity;q=0.4, gzip;q=0.5", "gzip"),
        ("identity;q=0, gzip", "gzip"),
        ("*;q=0, gzip", "gzip"),
        ("gzip;q=bogus, deflate", "deflate"),
        ("gzip;q=2", "identity"),  # out of range: treated as refused
    ],
)
def test_negotiation(accept_encoding: str | None, expected: str) -> None:
    assert negotiate(accept_encoding) == expected


@pytest.mark.parametrize(
    "accept_encoding", ["identity;q=0", "*;q=0", "identity;q=0, br", "*;q=0, br"]
)
def test_not_acceptable(accept_encoding: str) -> None:
    with pytest.raises(NotAcceptable):
        negotiate(accept_encoding)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (None, True),
        ("text/html; charset=utf-8", True),
        ("TEXT/PLAIN", True),
        ("application/json", True),
        ("application/problem+json", True),
        ("application/javascript", True),
        ("image/svg+xml", True),
        ("application/wasm", True),
        ("image/png", False),
        ("image/jpeg", False),
        ("video/mp4", False),
        ("audio/mpeg", False),
        ("application/zip", False),
        ("application/gzip", False),
        ("application/octet-stream", False),
        ("font/woff2", False),
    ],
)
def test_compressible_types(content_type: str | None, expected: bool) -> None:
    assert compressible(content_type) is expected


BODY = b'{"name": "mummy", "values": [1, 2, 3]}' * 200


@pytest.mark.parametrize("coding", ["gzip", "deflate", "zstd"])
def test_compress_round_trips_with_standard_decoders(coding: str) -> None:
    data = compress(BODY, coding, gzip_level=6, zstd_level=3)
    assert len(data) < len(BODY)
    if coding == "gzip":
        assert gzip.decompress(data) == BODY
    elif coding == "deflate":
        assert zlib.decompress(data) == BODY  # the zlib format, RFC 9110 §8.4.1.2
    else:
        assert zstandard.ZstdDecompressor().decompress(data) == BODY


def test_decode_request_bodies() -> None:
    assert decode_body(gzip.compress(BODY), "gzip", 1 << 20) == BODY
    assert decode_body(zlib.compress(BODY), "deflate", 1 << 20) == BODY
    raw = zlib.compressobj(6, zlib.DEFLATED, -15)
    assert decode_body(raw.compress(BODY) + raw.flush(), "deflate", 1 << 20) == BODY
    assert decode_body(zstandard.ZstdCompressor().compress(BODY), "zstd", 1 << 20) == BODY
    assert decode_body(BODY, "identity", 1 << 20) == BODY


@pytest.mark.parametrize(
    ("body", "coding", "status"),
    [
        (b"plain", "br", 415),
        (b"plain", "gzip, zstd", 415),
        (b"not gzip at all", "gzip", 400),
        (gzip.compress(BODY)[:-20], "gzip", 400),
        (b"\x28\xb5\x2f\xfd garbage", "zstd", 400),
    ],
)
def test_decode_errors(body: bytes, coding: str, status: int) -> None:
    with pytest.raises(DecodeError) as info:
        decode_body(body, coding, 1 << 20)
    assert info.value.status == status


def test_gzip_bomb_is_cut_off_at_the_limit() -> None:
    # 64 MB of zeros gzip to ~64 KB: decoding stops at max_len + 1 bytes of output.
    obj = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(obj.compress(bytes(1 << 20)) for _ in range(64)) + obj.flush()
    assert len(bomb) < 100_000
    with pytest.raises(DecodeError) as info:
        decode_body(bomb, "gzip", 1 << 20)
    assert info.value.status == 413


def test_zstd_bomb_of_a_gigabyte_is_cut_off_at_the_limit() -> None:
    # A 1 GB frame built from a stream, without ever holding 1 GB here either.
    cctx = zstandard.ZstdCompressor(level=19)
    chunk = bytes(1 << 20)
    obj = cctx.compressobj(size=1 << 30)
    bomb = b"".join(obj.compress(chunk) for _ in range(1024)) + obj.flush()
    assert len(bomb) < 200_000
    with pytest.raises(DecodeError) as info:
        decode_body(bomb, "zstd", 1 << 20)
    assert info.value.status == 413


ENCODERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,  # the zlib format (RFC 9110 §8.4.1.2)
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


def decoded(data: bytes, coding: str, max_len: int = 4096) -> bytes | int:
    """decode_body's answer: the bytes, or the status of its DecodeError."""
    try:
        return decode_body(data, coding, max_len)
    except DecodeError as exc:
        return exc.status


def reference(data: bytes, coding: str) -> bytes | int:
    """What the standard decoders read from `data` (zlib format for "deflate" when its
    header checks, raw deflate otherwise), or 400 where they refuse it."""
    try:
        if coding == "gzip":
            return zlib.decompress(data, 31)
        if coding == "deflate":
            zlib_format = len(data) >= 2 and (data[0] * 256 + data[1]) % 31 == 0
            return zlib.decompress(data, 15 if zlib_format else -15)
        return zstandard.ZstdDecompressor().decompress(data)
    except (zlib.error, zstandard.ZstdError):
        return 400


def test_random_bodies_round_trip_and_random_bytes_are_read_as_the_standard_decoders_do() -> None:
    rng = random.Random(0)
    for n in range(300):
        payload = rng.randbytes(n * 13 % 4096)
        for coding, encode in ENCODERS.items():
            assert decode_body(encode(payload), coding, 4096) == payload, (coding, len(payload))
        for coding in ("gzip", "deflate", "zstd"):
            data = rng.randbytes(n % 64 + 1)
            assert decoded(data, coding) == reference(data, coding), (coding, data)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "zstd"])
def test_a_truncated_body_is_refused_with_400(coding: str) -> None:
    rng = random.Random(1)
    for n in range(1, 100):
        wire = ENCODERS[coding](rng.randbytes(n))
        assert decoded(wire[:-1], coding) == 400, (coding, n)


def test_raw_deflate_bodies_that_pass_the_zlib_header_check_are_read_too() -> None:
    # About 1 raw deflate stream in 31 starts with two bytes that pass RFC 1950's
    # FCHECK; those were read as zlib and refused. Every body here must decode.
    lookalikes = 0
    for size in range(1, 400):
        data = bytes((i * 7 + size) % 251 for i in range(size)) * 3
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        raw = packer.compress(data) + packer.flush()
        lookalikes += (raw[0] * 256 + raw[1]) % 31 == 0
        assert decode_body(raw, "deflate", 1 << 20) == data
        assert decode_body(zlib.compress(data), "deflate", 1 << 20) == data
    assert lookalikes > 0  # the case this test is about occurred
