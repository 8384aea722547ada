"""Content codings (RFC 9110 §8.4): negotiating, compressing responses and
decompressing request bodies. Everything here runs on worker threads.

zlib and zstd (mummy.core.zstd_codec: the standard library's on 3.14+, else
`zstandard`, which keeps the GIL off on 3.13t) release the GIL while they work.
Each worker thread keeps its own zstd compressors and reuses them; gzip and
deflate get a fresh zlib object per response.
"""

import zlib
from typing import Protocol

from mummy.core.zstd_codec import ZSTD, ZstdDecodeError

# Among codings a client accepts equally, the first wins.
PREFERENCE = ("zstd", "gzip", "deflate")
_ALIASES = {"x-gzip": "gzip"}

# Compressible media types besides text/*: RFC 6839 suffixes and common formats.
_COMPRESSIBLE = frozenset(
    (
        "application/json",
        "application/javascript",
        "application/ecmascript",
        "application/xml",
        "application/xhtml+xml",
        "application/rss+xml",
        "application/atom+xml",
        "application/ld+json",
        "application/manifest+json",
        "application/x-www-form-urlencoded",
        "application/graphql",
        "application/wasm",
        "application/x-javascript",
        "application/x-ndjson",
        "application/yaml",
        "application/toml",
        "application/csv",
        "application/rtf",
        "application/x-sh",
        "application/sql",
        "application/vnd.api+json",
        "image/svg+xml",
        "image/x-icon",
        "image/bmp",
        "font/ttf",
        "font/otf",
        "application/vnd.ms-fontobject",
    )
)


class NotAcceptable(Exception):
    """The client refuses identity and every coding we have (answer 406)."""


class DecodeError(Exception):
    """A request body that cannot be decoded; `status` is 400, 413 or 415."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def compressible(content_type: str | None) -> bool:
    if content_type is None:
        return True
    media = content_type.partition(";")[0].strip().lower()
    return media.startswith("text/") or media in _COMPRESSIBLE or media.endswith(("+json", "+xml"))


def _qvalue(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def coding_q(accept_encoding: str | None, coding: str) -> float:
    """The client's q-value for `coding` (RFC 9110 §12.5.3): its own entry, else '*'."""
    if accept_encoding is None:
        return 0.0
    star = None
    for element in accept_encoding.split(","):
        name, *params = element.split(";")
        name = _ALIASES.get(name.strip().lower(), name.strip().lower())
        if name == coding:
            return _qvalue(params)
        if name == "*":
            star = _qvalue(params)
    return star or 0.0


def negotiate(accept_encoding: str | None) -> str:
    """The coding to use: 'zstd', 'gzip', 'deflate' or 'identity' (RFC 9110 §12.5.3).

    No Accept-Encoding at all means identity (the RFC allows any coding, but
    clients that send none rarely decode one). Raises NotAcceptable when the
    client refuses identity and everything we offer.
    """
    if accept_encoding is None:
        return "identity"
    explicit: dict[str, float] = {}
    star: float | None = None
    for element in accept_encoding.split(","):
        coding, *params = element.split(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = _qvalue(params)
        if coding == "*":
            star = q
        else:
            coding = _ALIASES.get(coding, coding)
            explicit[coding] = max(q, explicit.get(coding, 0.0))
    default = star if star is not None else 0.0
    best, best_q = "identity", 0.0
    for coding in PREFERENCE:
        q = explicit.get(coding, default)
        if q > best_q:
            best, best_q = coding, q
    # identity is acceptable unless refused explicitly or by "*;q=0" (RFC 9110 §12.5.3);
    # when not listed it is the least preferred of what is acceptable.
    identity_q = explicit.get("identity", 0.0 if star == 0.0 else 0.001)
    if best_q > 0 and best_q >= identity_q:
        return best
    if identity_q > 0:
        return "identity"
    raise NotAcceptable(accept_encoding)


def compress(body: bytes, coding: str, *, gzip_level: int, zstd_level: int) -> bytes:
    if coding == "zstd":
        return ZSTD.compress(body, zstd_level)
    # wbits 31: gzip container; 15: zlib container, which is what "deflate" means
    # (RFC 9110 §8.4.1.2), not the raw deflate stream Mummy sends.
    obj = zlib.compressobj(gzip_level, zlib.DEFLATED, 31 if coding == "gzip" else 15)
    return obj.compress(body) + obj.flush()


class StreamCompressor(Protocol):
    """One streamed body's compressor: `chunk` returns the compressed chunk, flushed
    so the client can decode it on arrival; `finish` ends the stream."""

    def chunk(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class _ZlibStream:
    def __init__(self, level: int, wbits: int) -> None:
        self._c = zlib.compressobj(level, zlib.DEFLATED, wbits)

    def chunk(self, data: bytes) -> bytes:
        # Z_SYNC_FLUSH: everything so far is decodable, and the dictionary is kept.
        return self._c.compress(data) + self._c.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._c.flush()


def stream_compressor(coding: str, *, gzip_level: int, zstd_level: int) -> StreamCompressor:
    """A compressor for one streamed body in `coding` ('zstd', 'gzip' or 'deflate')."""
    if coding == "zstd":
        return ZSTD.stream(zstd_level)
    return _ZlibStream(gzip_level, 31 if coding == "gzip" else 15)


def decode_body(body: bytes, content_encoding: str, max_len: int) -> bytes:
    """Undo a request's Content-Encoding, never holding more than max_len + 1 bytes
    of output (so a zip bomb costs at most that much memory)."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return body
    if len(codings) > 1:
        raise DecodeError(415, "only one Content-Encoding is supported on request bodies")
    coding = _ALIASES.get(codings[0], codings[0])
    if coding == "zstd":
        out = _zstd_decode(body, max_len)
    elif coding == "gzip":
        out = _zlib_decode(body, 31, max_len)
    elif coding == "deflate":
        # Accept both the zlib format (RFC 1950) and, as many clients send, raw
        # deflate (RFC 1951); 1 in 31 raw bodies also passes the zlib header check.
        if _looks_like_zlib(body):
            try:
                out = _zlib_decode(body, 15, max_len)
            except DecodeError:
                out = _zlib_decode(body, -15, max_len)
        else:
            out = _zlib_decode(body, -15, max_len)
    else:
        raise DecodeError(415, f"unsupported Content-Encoding {content_encoding!r}")
    if len(out) > max_len:
        raise DecodeError(413, "decoded request body is larger than max_body_len")
    return out


def _looks_like_zlib(body: bytes) -> bool:
    """RFC 1950 §2.2: CM 8 (deflate), a window of at most 32 KiB, FCHECK right."""
    return (
        len(body) >= 2
        and body[0] & 0x0F == 8
        and body[0] >> 4 <= 7
        and (body[0] * 256 + body[1]) % 31 == 0
    )


def _zlib_decode(body: bytes, wbits: int, max_len: int) -> bytes:
    obj = zlib.decompressobj(wbits)
    try:
        out = obj.decompress(body, max_len + 1)
    except zlib.error as exc:
        raise DecodeError(400, f"corrupt compressed body: {exc}") from None
    if len(out) <= max_len and not obj.eof:
        raise DecodeError(400, "truncated compressed body")
    return out


def _zstd_decode(body: bytes, max_len: int) -> bytes:
    try:
        return ZSTD.decompress(body, max_len)
    except ZstdDecodeError as exc:
        raise DecodeError(400, f"corrupt zstd body: {exc}") from None
