"""zstd for the content codings: Python 3.14's standard `compression.zstd` (PEP 784)
where it exists, else the `zstandard` package (a dependency only below 3.14).

Both release the GIL while they work. Compressor objects are kept per thread
(workers reuse theirs); decompression is bounded, so a zstd bomb costs at most
`max_len + 1` bytes of output. Only the first frame of a body is read, as
browsers and curl send one.
"""

import sys
import threading
from types import ModuleType
from typing import Any


class ZstdDecodeError(Exception):
    """A body that is not valid zstd, or is cut short."""


class _Codec:
    name = ""

    def __init__(self, module: ModuleType) -> None:
        self._zstd = module
        self._local = threading.local()

    def _compressor(self, level: int) -> Any:
        """This thread's compressor for `level` (they are not shared across threads)."""
        cache: dict[int, Any] | None = getattr(self._local, "compressors", None)
        if cache is None:
            cache = self._local.compressors = {}
        compressor = cache.get(level)
        if compressor is None:
            compressor = cache[level] = self._zstd.ZstdCompressor(level=level)
        return compressor


class _StdlibStream:
    """A zstd frame compressed chunk by chunk, each chunk flushed (FLUSH_BLOCK):
    what has been compressed is decodable at once, as a streamed response needs."""

    def __init__(self, compressor: Any, module: ModuleType) -> None:
        self._c = compressor
        self._block = module.ZstdCompressor.FLUSH_BLOCK
        self._frame = module.ZstdCompressor.FLUSH_FRAME

    def chunk(self, data: bytes) -> bytes:
        out: bytes = self._c.compress(data, mode=self._block)
        return out

    def finish(self) -> bytes:
        out: bytes = self._c.flush(mode=self._frame)
        return out


class _ZstandardStream:
    """The same over `zstandard`'s compressobj."""

    def __init__(self, compressobj: Any, module: ModuleType) -> None:
        self._c = compressobj
        self._block = module.COMPRESSOBJ_FLUSH_BLOCK

    def chunk(self, data: bytes) -> bytes:
        out: bytes = self._c.compress(data) + self._c.flush(self._block)
        return out

    def finish(self) -> bytes:
        out: bytes = self._c.flush()
        return out


class StdlibZstd(_Codec):
    """Over a module with the `compression.zstd` interface (the standard one, or the
    `backports.zstd` package, which the tests use to check this on 3.13)."""

    name = "compression.zstd"

    def compress(self, body: bytes, level: int) -> bytes:
        out: bytes = self._compressor(level).compress(
            body, mode=self._zstd.ZstdCompressor.FLUSH_FRAME
        )
        return out

    def stream(self, level: int) -> _StdlibStream:
        """A compressor of its own for one streamed body (it lives across workers)."""
        return _StdlibStream(self._zstd.ZstdCompressor(level=level), self._zstd)

    def decompress(self, body: bytes, max_len: int) -> bytes:
        """At most `max_len + 1` bytes (more than `max_len`: the caller answers 413)."""
        decompressor = self._zstd.ZstdDecompressor()
        try:
            out: bytes = decompressor.decompress(body, max_length=max_len + 1)
        except self._zstd.ZstdError as exc:
            raise ZstdDecodeError(str(exc)) from None
        if len(out) <= max_len and not decompressor.eof:
            raise ZstdDecodeError("truncated zstd body")
        return out


class ZstandardZstd(_Codec):
    """Over the `zstandard` package."""

    name = "zstandard"

    def compress(self, body: bytes, level: int) -> bytes:
        out: bytes = self._compressor(level).compress(body)
        return out

    def stream(self, level: int) -> _ZstandardStream:
        """A compressor of its own for one streamed body (it lives across workers)."""
        return _ZstandardStream(self._zstd.ZstdCompressor(level=level).compressobj(), self._zstd)

    def decompress(self, body: bytes, max_len: int) -> bytes:
        """At most `max_len + 1` bytes (more than `max_len`: the caller answers 413)."""
        zstd = self._zstd
        try:
            if zstd.frame_content_size(body) > max_len:  # -1: not in the frame header
                return self._bounded(body, max_len)
            # A whole frame or an error, with at most max_len + 1 bytes allocated.
            out: bytes = zstd.ZstdDecompressor().decompress(body, max_output_size=max_len + 1)
            return out
        except zstd.ZstdError as exc:
            out = self._bounded(body, max_len)
            if len(out) > max_len:  # too large, not corrupt: 413
                return out
            raise ZstdDecodeError(str(exc)) from None

    def _bounded(self, body: bytes, max_len: int) -> bytes:
        """Up to max_len + 1 bytes of output, stopping quietly at truncation."""
        reader = self._zstd.ZstdDecompressor().stream_reader(body)
        out = bytearray()
        try:
            while len(out) <= max_len:
                chunk = reader.read(max_len + 1 - len(out))
                if not chunk:
                    break
                out += chunk
        except self._zstd.ZstdError:
            pass
        return bytes(out)


def default_codec() -> StdlibZstd | ZstandardZstd:
    if sys.version_info >= (3, 14):
        from compression import zstd

        return StdlibZstd(zstd)
    import zstandard

    return ZstandardZstd(zstandard)


ZSTD = default_codec()
