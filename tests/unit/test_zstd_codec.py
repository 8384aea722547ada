"""Both zstd codecs mummy can use: `zstandard` (below Python 3.14) and the standard
library's `compression.zstd` (3.14+), checked here through its backport
(`backports.zstd`, the same interface) so that the 3.14 path runs in CI on 3.13."""

import sys

import pytest

from mummy.core.zstd_codec import ZSTD, StdlibZstd, ZstandardZstd, ZstdDecodeError


def stdlib_module():
    if sys.version_info >= (3, 14):
        from compression import zstd

        return zstd
    from backports import zstd

    return zstd


def codecs():
    found = [StdlibZstd(stdlib_module())]
    if sys.version_info < (3, 14):
        import zstandard

        found.append(ZstandardZstd(zstandard))
    return found


BODY = b'{"id": 1, "name": "mummy", "tags": ["a", "b"]}\n' * 2000
CODECS = codecs()
IDS = [c.name for c in CODECS]


def test_the_default_codec_is_the_standard_library_one_from_3_14() -> None:
    expected = "compression.zstd" if sys.version_info >= (3, 14) else "zstandard"
    assert ZSTD.name == expected


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
@pytest.mark.parametrize("level", [1, 3, 19])
def test_round_trip_and_every_codec_reads_the_others_frames(codec, level) -> None:
    frame = codec.compress(BODY, level)
    assert len(frame) < len(BODY) // 10
    for other in CODECS:
        assert other.decompress(frame, len(BODY)) == BODY
    # The compressor is reused by this thread: a second body is its own whole frame.
    assert codec.decompress(codec.compress(b"second", level), 100) == b"second"


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
def test_a_bomb_stops_one_byte_past_the_limit(codec) -> None:
    bomb = codec.compress(b"\0" * 50_000_000, 3)
    assert len(bomb) < 10_000
    out = codec.decompress(bomb, 1000)
    assert len(out) == 1001 and out == b"\0" * 1001


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
def test_a_frame_without_its_size_in_the_header_is_bounded_too(codec) -> None:
    # Compressed as a stream: the frame header does not say the content size.
    compressor = stdlib_module().ZstdCompressor(level=3)
    frame = compressor.compress(b"x" * 5_000_000) + compressor.flush()
    out = codec.decompress(frame, 1000)
    assert len(out) == 1001


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
def test_truncated_and_corrupt_bodies_are_errors(codec) -> None:
    frame = codec.compress(BODY, 3)
    with pytest.raises(ZstdDecodeError):
        codec.decompress(frame[: len(frame) // 2], len(BODY))
    with pytest.raises(ZstdDecodeError):
        codec.decompress(b"not zstd at all", len(BODY))
