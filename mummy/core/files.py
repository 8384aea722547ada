"""File responses: validators (RFC 9110 §8.8), conditional requests (§13), one byte
range (§14), and the file itself, sent from its descriptor.

Everything here but `FileSegment`'s sending runs on the worker answering the
request: it opens and stats the file and decides the status and fields. Plaintext
HTTP/1.1 then hands the open descriptor to the IO thread, which sends it with
`os.sendfile` (mummy.core.transport), SENDFILE_CAP bytes a call, one call per
connection per loop turn; TLS and HTTP/2 read bounded chunks on workers instead
(`read_chunks`, through a streamed response).
"""

from __future__ import annotations

import mimetypes
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from email.utils import formatdate, parsedate_to_datetime

from mummy.core.compression import coding_q

# The standard library's built-in table only: /etc/mime.types differs by machine.
_TYPES = mimetypes.MimeTypes()
# What a file compressed as a whole is (a .tar.gz is a gzip file, not a tar with a
# Content-Encoding: that would make browsers unpack it).
_ENCODED_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "br": "application/x-brotli",
    "compress": "application/x-compress",
}
SENDFILE_CAP = 256 * 1024  # bytes per os.sendfile call: a cold file stalls no one long
READ_CHUNK = 64 * 1024  # bytes per read for TLS and HTTP/2


def content_type(name: str) -> str:
    guessed, encoding = _TYPES.guess_type(name, strict=False)
    if encoding is not None:
        return _ENCODED_TYPES.get(encoding, "application/octet-stream")
    return guessed or "application/octet-stream"


def open_regular(path: str | os.PathLike[str]) -> tuple[int, os.stat_result] | None:
    """An fd open for reading on the regular file at `path`, and its stat; None for
    a missing path, a directory, a device or FIFO (opened non-blocking, so a FIFO
    does not hang the worker), or one we may not read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
        os.set_blocking(fd, True)
    except OSError:
        os.close(fd)
        return None
    return fd, st


# Precompressed siblings a file may have, in order of preference at equal q-values.
SIBLINGS = ((".zst", "zstd"), (".gz", "gzip"))


class ChosenFile:
    """The file to send for a path: its fd and stat, its content coding when it is a
    precompressed sibling (None for the file itself), and whether a sibling exists
    (the answer then depends on Accept-Encoding: Vary)."""

    __slots__ = ("coding", "fd", "st", "vary")

    def __init__(self, fd: int, st: os.stat_result, coding: str | None, vary: bool) -> None:
        self.fd = fd
        self.st = st
        self.coding = coding
        self.vary = vary


def choose(
    path: str, accept_encoding: str | None, allowed: Callable[[str], bool] | None = None
) -> ChosenFile | None:
    """The file at `path`, or the precompressed sibling (`path.zst`, `path.gz`) the
    client accepts best; None when `path` is not a regular file. `allowed` vets each
    sibling's real path (StaticFiles: inside its root)."""
    opened = open_regular(path)
    if opened is None:
        return None
    fd, st = opened
    vary, best, best_q = False, None, 0.0
    for suffix, coding in SIBLINGS:
        sibling = path + suffix
        if not os.path.isfile(sibling) or (allowed is not None and not allowed(sibling)):
            continue
        vary = True
        q = coding_q(accept_encoding, coding)
        if q > best_q:
            best, best_q = (sibling, coding), q
    if best is not None:
        chosen = open_regular(best[0])
        if chosen is not None:
            os.close(fd)
            return ChosenFile(chosen[0], chosen[1], best[1], vary)
    return ChosenFile(fd, st, None, vary)


def strong_etag(st: os.stat_result, variant: str = "") -> str:
    """A strong validator (RFC 9110 §8.8.3) from the file's identity, modification
    time and size; `variant` tells precompressed siblings apart."""
    return f'"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}{variant}"'


def http_date_of(seconds: float) -> str:
    return formatdate(int(seconds), usegmt=True)


def _etags(value: str) -> list[str]:
    """The entity-tags of an If-None-Match or If-Match value ('*' as itself)."""
    return [tag.strip() for tag in value.split(",") if tag.strip()]


def _weak_match(a: str, b: str) -> bool:
    return a.removeprefix("W/") == b.removeprefix("W/")


def _date(value: str) -> float | None:
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class FilePlan:
    """What to answer for a file: `status` (200, 206, 304 or 416), the fields to add,
    and which bytes to send (`offset`, `length`; none for 304 and 416)."""

    __slots__ = ("fields", "length", "offset", "status")

    def __init__(self, status: int, fields: list[tuple[str, str]], offset: int, length: int):
        self.status = status
        self.fields = fields
        self.offset = offset
        self.length = length


def plan(
    request_headers: Mapping[str, str], method: str, st: os.stat_result, etag: str
) -> FilePlan:
    """Evaluate the preconditions and Range of a GET or HEAD for a file (RFC 9110
    §13.2.2's order: If-None-Match, else If-Modified-Since; then Range)."""
    size = st.st_size
    last_modified = http_date_of(st.st_mtime)
    validators = [("ETag", etag), ("Last-Modified", last_modified)]
    if_none_match = request_headers.get("if-none-match")
    if if_none_match is not None:
        tags = _etags(if_none_match)
        # §13.1.2: weak comparison; "*" matches any current representation.
        if "*" in tags or any(_weak_match(tag, etag) for tag in tags):
            return FilePlan(304, validators, 0, 0)
    else:
        since = request_headers.get("if-modified-since")
        when = _date(since) if since is not None else None
        if when is not None and int(st.st_mtime) <= when:
            return FilePlan(304, validators, 0, 0)
    fields = [*validators, ("Accept-Ranges", "bytes")]
    whole = FilePlan(200, fields, 0, size)
    range_value = request_headers.get("range")
    if range_value is None or method != "GET":
        return whole
    if_range = request_headers.get("if-range")
    if if_range is not None and not _if_range_holds(if_range.strip(), etag, last_modified):
        return whole  # §13.1.5: the representation changed: send all of it
    span = _one_range(range_value, size)
    if span is None:
        return whole  # not a single bytes range we understand: §14.2 lets us ignore it
    first, last = span
    if first < 0:
        return FilePlan(416, [*fields, ("Content-Range", f"bytes */{size}")], 0, 0)
    content_range = ("Content-Range", f"bytes {first}-{last}/{size}")
    return FilePlan(206, [*fields, content_range], first, last - first + 1)


def _if_range_holds(value: str, etag: str, last_modified: str) -> bool:
    """§13.1.5: a strong comparison with the ETag, or the exact Last-Modified date."""
    if value.startswith(("W/", '"')):
        return value == etag and not value.startswith("W/")
    return value == last_modified


UNSATISFIABLE = (-1, -1)
_HUGE = 1 << 63  # any position this long is past the end of every file


def _position(digits: str) -> int:
    # int() refuses more than 4300 digits (and is slow long before): a client's
    # position past 18 digits is past every file's end anyway.
    return int(digits) if len(digits) <= 18 else _HUGE


def _one_range(value: str, size: int) -> tuple[int, int] | None:
    """§14.1.2: (first, last) of one satisfiable bytes range; UNSATISFIABLE if not;
    None when the field is not one valid bytes range (ignored then, as several
    ranges are: the whole file is cheaper than multipart/byteranges)."""
    unit, _, ranges = value.partition("=")
    if unit.strip().lower() != "bytes" or "," in ranges:
        return None
    first_text, dash, last_text = ranges.strip().partition("-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not dash or not (first_text.isdigit() or last_text.isdigit()):
        return None
    if not all(part.isdigit() and part.isascii() for part in (first_text, last_text) if part):
        return None
    if not first_text:  # suffix range: the last N bytes
        suffix = _position(last_text)
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - suffix), size - 1
    first = _position(first_text)
    last = _position(last_text) if last_text else _HUGE
    if last < first:
        return None  # §14.1.1: invalid, so ignored
    if first >= size:
        return UNSATISFIABLE
    return first, min(last, size - 1)


class FileSegment:
    """An open file's bytes still to send from the IO thread (plaintext HTTP/1.1).
    It owns `fd`: closed once sent, or with the connection."""

    __slots__ = ("fd", "keep_alive", "left", "offset")

    def __init__(self, fd: int, offset: int, length: int, *, keep_alive: bool = True) -> None:
        self.fd = fd
        self.offset = offset
        self.left = length
        self.keep_alive = keep_alive  # the connection stays open after the file

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


class FileChunks:
    """A file's bytes as chunks read on workers (TLS, HTTP/2: a streamed response);
    close() closes the fd. A file cut short while read raises (the stream is cut)."""

    __slots__ = ("_segment",)

    def __init__(self, segment: FileSegment) -> None:
        self._segment = segment

    def __iter__(self) -> Iterator[bytes]:
        segment = self._segment
        while segment.left > 0:
            data = os.pread(segment.fd, min(READ_CHUNK, segment.left), segment.offset)
            if not data:
                raise OSError(f"the file ended {segment.left} bytes early (truncated meanwhile)")
            segment.offset += len(data)
            segment.left -= len(data)
            yield data

    def close(self) -> None:
        self._segment.close()
