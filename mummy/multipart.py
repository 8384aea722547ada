"""Decoding ``multipart/form-data`` request bodies (RFC 7578, RFC 2046 §5.1).

>>> for entry in mummy.multipart.decode_multipart(request):
...     print(entry.name, entry.filename, bytes(entry.data))

What is accepted, and how it is read:

- Content-Type must be ``multipart/form-data`` (any case) with a non-empty
  ``boundary`` parameter, quoted or not; other parameters are ignored.
- The body is ``[preamble CRLF] --boundary`` then, for each part, padding
  (spaces, tabs) and CRLF, the part's header lines, an empty line, its content,
  and ``CRLF --boundary``; after the closing ``--boundary--`` anything (the
  epilogue) is ignored. A delimiter line with anything else after the boundary,
  a part with no empty line after its headers, and a body that ends before the
  closing delimiter are errors: a truncated upload is never taken for a
  complete one.
- Part header lines are read as UTF-8 (Latin-1 if they are not valid UTF-8),
  with folded lines joined; a line without a colon is kept as a header with an
  empty value, as Mummy does.
- Every part needs ``Content-Disposition: form-data`` with a ``name``
  parameter; ``filename`` is optional. Parameter names are case-insensitive,
  and the first of a repeated parameter wins. Values are tokens or quoted
  strings. As browsers send them (HTML's form encoding, also used by curl and
  urllib3), a quoted value ends at the next ``"``, a backslash in it is an
  ordinary character (so ``C:\\dir\\a.txt`` survives), and ``%22``, ``%0D`` and
  ``%0A`` in a name or filename stand for ``"``, CR and LF. An RFC 8187
  ``filename*`` (UTF-8 or ISO-8859-1), when present, takes precedence over
  ``filename``; RFC 2231 continuations (``filename*0``) are not supported.
- ``Content-Transfer-Encoding`` is not applied (RFC 7578 §4.7 deprecates it):
  ``data`` is the part's content as sent.

`decode_multipart` raises `MultipartError` (a `MummyError`) for anything else;
its message is fit to send back with a 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote_to_bytes

from mummy.errors import MummyError
from mummy.headers import Headers

__all__ = ["MultipartEntry", "MultipartError", "decode_multipart"]

# One `; name=value` parameter of a header value; a quoted value ends at the next quote.
# Possessive quantifiers: no backtracking, so matching is linear in the header's length
# (overlapping `[ \t]*` runs made it cubic on long runs of spaces).
_PARAM = re.compile(
    r'[ \t]*+(?P<name>[^=;" \t]*+)[ \t]*+'
    r'(?:=[ \t]*+(?:"(?P<quoted>[^"]*+)"|(?P<token>[^;"]*+)))?'
    r"[ \t]*+(?:;|$)"
)
# RFC 8187 §3.2.1: ext-value = charset "'" [ language ] "'" value-chars
_EXT_VALUE = re.compile(r"(?P<charset>[^']*)'[^']*'(?P<value>(?:%[0-9A-Fa-f]{2}|[^%])*)")
# RFC 2046 §5.1.1: transport padding after a boundary, then CRLF.
_PADDING_CRLF = re.compile(rb"[ \t]*\r\n")
# HTML's form encoding escapes these three in names and filenames.
_HTML_ESCAPES = re.compile("%(22|0D|0A)")
_HTML_UNESCAPE = {"22": '"', "0D": "\r", "0A": "\n"}


class MultipartError(MummyError):
    """The body is not valid multipart/form-data; the message says what is wrong."""


@dataclass(slots=True, frozen=True)
class MultipartEntry:
    """One part of a multipart/form-data body.

    >>> entry.name, entry.filename, entry.headers["Content-Type"]
    ('upload', 'notes.txt', 'text/plain')
    """

    name: str
    filename: str | None
    """None when the part has no filename (an ordinary form field)."""
    headers: Headers
    data: memoryview
    """The part's content: a read-only view into `request.body`, empty for an empty part."""


class HasHeadersAndBody(Protocol):
    """A `mummy.Request`, or anything with its `headers` and `body`."""

    @property
    def headers(self) -> Headers: ...
    @property
    def body(self) -> bytes: ...


def decode_multipart(request: HasHeadersAndBody) -> list[MultipartEntry]:
    """The parts of a multipart/form-data request body, in order.

    Raises MultipartError (a MummyError) if the Content-Type or the body is not
    valid multipart/form-data; answer it with 400 and the message.
    """
    boundary = _boundary(request.headers.get("Content-Type"))
    body = request.body
    view = memoryview(body)
    dash = b"--" + boundary
    delimiter = b"\r\n" + dash
    if body.startswith(dash):
        pos = len(dash)
    else:
        found = body.find(delimiter)  # after a preamble
        if found < 0:
            raise MultipartError(
                "invalid multipart body: the boundary from Content-Type is not in it"
            )
        pos = found + len(delimiter)
    entries: list[MultipartEntry] = []
    while True:
        # `pos` is just past a boundary: `--` closes the body, padding and CRLF open a part.
        if body.startswith(b"--", pos):
            return entries
        padding = _PADDING_CRLF.match(body, pos)
        if padding is None:
            raise MultipartError("invalid multipart body: a boundary line must end with CRLF or --")
        start = padding.end()
        end = body.find(delimiter, start)
        if end < 0:
            raise MultipartError(
                "invalid multipart body: it ends before the closing boundary "
                f"(part {len(entries) + 1} is not terminated)"
            )
        entries.append(_entry(body, view, start, end, len(entries) + 1))
        pos = end + len(delimiter)


def _entry(body: bytes, view: memoryview, start: int, end: int, number: int) -> MultipartEntry:
    """The part in body[start:end]: header lines, an empty line, then the content."""
    if body.startswith(b"\r\n", start, end):  # no header lines at all
        head_end, data_start = start, start + 2
    else:
        head_end = body.find(b"\r\n\r\n", start, end)
        if head_end < 0:
            raise MultipartError(
                f"invalid multipart body: part {number} has no empty line after its headers"
            )
        data_start = head_end + 4
    headers = Headers(_header_lines(body[start:head_end]))
    disposition = headers.get("Content-Disposition")
    if disposition is None:
        raise MultipartError(f"invalid multipart body: part {number} has no Content-Disposition")
    kind, params = _split_params(disposition, "Content-Disposition")
    if kind != "form-data":
        raise MultipartError(
            f"invalid Content-Disposition {disposition!r}: multipart/form-data parts "
            "must be form-data"
        )
    if "name" not in params:
        raise MultipartError(f"invalid Content-Disposition {disposition!r}: it has no name")
    filename = params.get("filename")
    extended = params.get("filename*")
    if extended is not None:
        filename = _decode_ext_value(extended)
    elif filename is not None:
        filename = _html_unescape(filename)
    return MultipartEntry(
        name=_html_unescape(params["name"]),
        filename=filename,
        headers=headers,
        data=view[data_start:end],
    )


def _header_lines(block: bytes) -> list[tuple[str, str]]:
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        text = block.decode("latin-1")
    pairs: list[tuple[str, str]] = []
    if not text:
        return pairs
    for line in text.split("\r\n"):
        if line[:1] in (" ", "\t") and pairs:  # RFC 5322 §2.2.3: a folded line
            name, value = pairs[-1]
            pairs[-1] = (name, f"{value} {line.strip(' \t')}")
            continue
        name, _, value = line.partition(":")
        pairs.append((name.strip(" \t"), value.strip(" \t")))
    return pairs


def _boundary(content_type: str | None) -> bytes:
    if content_type is None:
        raise MultipartError("invalid Content-Type for multipart: the header is missing")
    kind, params = _split_params(content_type, "Content-Type")
    if kind != "multipart/form-data":
        raise MultipartError(
            f"invalid Content-Type for multipart: {content_type!r} is not multipart/form-data"
        )
    boundary = params.get("boundary", "")
    if not boundary:
        raise MultipartError(
            f"invalid Content-Type for multipart: {content_type!r} has no boundary"
        )
    try:
        return boundary.encode("latin-1")
    except UnicodeEncodeError:
        raise MultipartError(
            f"invalid Content-Type for multipart: the boundary {boundary!r} is not Latin-1"
        ) from None


def _split_params(value: str, field: str) -> tuple[str, dict[str, str]]:
    """('form-data', {'name': 'a'}) from 'form-data; name="a"': the lower-cased
    first item, then the parameters, names lower-cased, the first of each kept."""
    kind, _, rest = value.partition(";")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if m is None:
            raise MultipartError(f"invalid {field} {value!r}: cannot read its parameters")
        name, quoted, token = m["name"], m["quoted"], m["token"]
        if name and (quoted is not None or token is not None):
            params.setdefault(name.lower(), quoted if quoted is not None else token.strip(" \t"))
        pos = m.end()
    return kind.strip(" \t").lower(), params


def _html_unescape(text: str) -> str:
    if "%" not in text:
        return text
    return _HTML_ESCAPES.sub(lambda m: _HTML_UNESCAPE[m[1]], text)


def _decode_ext_value(text: str) -> str:
    m = _EXT_VALUE.fullmatch(text)
    if m is None:
        raise MultipartError(f"invalid filename* {text!r}: expected charset'language'value")
    charset = m["charset"].lower()
    if charset not in ("utf-8", "iso-8859-1"):
        raise MultipartError(f"invalid filename* {text!r}: use UTF-8 or ISO-8859-1")
    try:
        return unquote_to_bytes(m["value"]).decode(charset)
    except UnicodeDecodeError:
        raise MultipartError(f"invalid filename* {text!r}: not valid {charset}") from None
