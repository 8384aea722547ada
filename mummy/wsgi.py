"""Run a PEP 3333 (WSGI) application, such as Flask or Django, on mummy's workers.

>>> from mummy.wsgi import WSGIAdapter
>>> mummy.Server(WSGIAdapter(flask_app)).serve(8080)

`WSGIAdapter(app)` is an ordinary mummy handler: each request runs the application
on a worker thread, with an environ built from the complete, in-memory request.

A `list` or `tuple` body, or any iterable whose Content-Length the application
declared up to 1 MiB (every ordinary Flask or Django response), is sent as before:
in memory, with whole-body compression, through `request.respond()`. Any other
iterable (a generator: Flask's `stream_with_context`, an SSE endpoint, a large file)
is streamed through `request.respond_stream()`: each chunk is written as it is
produced, pulled on workers only while the client keeps up.

`forwarded_allow_ips` names the proxies whose `Forwarded` / `X-Forwarded-For` /
`X-Forwarded-Proto` headers are believed (comma-separated IPs or networks, or "*");
by default nobody's are. docs/wsgi.md has the details.
"""

from __future__ import annotations

import io
import logging
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit
from wsgiref.types import WSGIApplication, WSGIEnvironment

from mummy.core.fields import CONNECTION_FIELDS, NO_BODY_STATUSES, comma_tokens
from mummy.core.files import FileSegment
from mummy.core.forwarded import (  # re-exported: they were defined here first
    TrustedProxies,
    client_from_headers,
    forwarded_client,
    parse_forwarded,
)
from mummy.errors import MummyError
from mummy.request import Request

__all__ = [
    "ErrorStream",
    "FileWrapper",
    "TrustedProxies",
    "WSGIAdapter",
    "client_from_headers",
    "parse_forwarded",
]

type ExcInfo = tuple[type[BaseException], BaseException, TracebackType]
type OptExcInfo = ExcInfo | tuple[None, None, None]

errors_log = logging.getLogger("mummy.wsgi")

_DEFAULT_PORTS = {"http": "80", "https": "443"}
# An iterable body with a Content-Length up to this is collected, not streamed.
COLLECT_UP_TO = 1 << 20


class ErrorStream:
    """`wsgi.errors`: text written here is logged to the logger "mummy.wsgi" at ERROR
    level, one record per write that ends a line (or per `flush()`).

    One per request, written by the thread that runs its application.
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: list[str] = []

    def write(self, text: str, /) -> int:
        if not isinstance(text, str):
            raise TypeError(f"wsgi.errors takes str, not {type(text).__name__}")
        self._pending.append(text)
        if text.endswith("\n"):
            self.flush()
        return len(text)

    def writelines(self, lines: Iterable[str], /) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._pending:
            text = "".join(self._pending).rstrip("\n")
            self._pending.clear()
            if text:
                errors_log.error("%s", text)


def split_uri(uri: str) -> tuple[str, str, str | None]:
    """(PATH_INFO, QUERY_STRING, authority) of a request-target.

    PATH_INFO is the percent-decoded path as bytes, decoded as latin-1 (PEP 3333's
    "bytes in a str"): '/caf%C3%A9' -> '/caf\\xc3\\xa9'. QUERY_STRING is raw. The
    authority is that of an absolute-form target ('http://host:port/...'), else None.
    "*" (OPTIONS) and authority-form (CONNECT) targets have an empty PATH_INFO.
    """
    if uri.startswith("/"):
        path, _, query = uri.partition("?")
        authority = None
    elif "://" in uri:
        parts = urlsplit(uri)
        path, query, authority = parts.path or "/", parts.query, parts.netloc or None
    else:
        return "", "", None
    if "%" in path:
        # The request line is read as latin-1, so this round-trips the bytes as sent.
        path = unquote_to_bytes(path.encode("latin-1")).decode("latin-1")
    return path, query, authority


def _split_host(host: str) -> tuple[str, str | None]:
    """('example.com', '8080') from 'example.com:8080'; IPv6 literals keep their brackets."""
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return host, None
        name, rest = host[: end + 1], host[end + 1 :]
        port = rest[1:] if rest.startswith(":") else None
    else:
        name, sep, port_text = host.partition(":")
        port = port_text if sep else None
    if port is not None and not (port.isdigit() and port.isascii()):
        port = None
    return name, port


def _status_code(status: str) -> int:
    if (
        not isinstance(status, str)
        or len(status) < 3
        or not (status[:3].isdigit() and status[:3].isascii())
        or (len(status) > 3 and status[3] != " ")
    ):
        raise MummyError(f"WSGI status must be a str like '200 OK', got {status!r}")
    return int(status[:3])


def _checked_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    if not isinstance(headers, list):
        raise MummyError(
            f"WSGI response headers must be a list of (name, value), got {type(headers).__name__}"
        )
    for pair in headers:
        if not (
            isinstance(pair, tuple)
            and len(pair) == 2
            and isinstance(pair[0], str)
            and isinstance(pair[1], str)
        ):
            raise MummyError(f"WSGI response header {pair!r} is not a (str, str) tuple")
        if not pair[1].isascii():
            try:
                pair[1].encode("latin-1")
            except UnicodeEncodeError:
                raise MummyError(
                    f"WSGI response header {pair[0]!r} is not latin-1; encode the value first"
                ) from None
    return headers


class _Exchange:
    """One application call: what start_response() and write() were given."""

    __slots__ = ("chunks", "headers", "request", "status")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None = None,
        /,
    ) -> Callable[[bytes], object]:
        if exc_info is not None and exc_info[1] is not None:
            # PEP 3333: once the headers are sent, the error goes back to the application.
            # Nothing is sent before respond(), so until then the error response
            # replaces everything produced so far.
            if self.request.responded:
                raise exc_info[1].with_traceback(exc_info[2])
            self.chunks.clear()
        elif self.status is not None:
            raise MummyError(
                "start_response() was called a second time without exc_info; "
                "only an error response (with exc_info) may replace the first"
            )
        code = _status_code(status)
        self.headers = _checked_headers(headers)
        self.status = code
        return self.write

    def write(self, data: bytes) -> None:
        if self.status is None:
            raise MummyError("write() was called before start_response()")
        self.collect(data)

    def collect(self, chunk: bytes) -> None:
        if not isinstance(chunk, bytes):
            raise MummyError(f"a WSGI application must produce bytes, not {type(chunk).__name__}")
        if chunk:
            if self.status is None:
                raise MummyError("the WSGI application produced a body before start_response()")
            self.chunks.append(chunk)

    def response(self) -> tuple[int, list[tuple[str, str]], bytes]:
        """What to pass to respond(): hop-by-hop fields dropped, Content-Length left to
        mummy except where the body cannot show it (HEAD without a body, 304)."""
        status = self.status
        assert status is not None
        body = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        if status in NO_BODY_STATUSES:
            body = b""  # RFC 9110 §6.4.1: never any content
        keep_length = status == 304 or (self.request.method == "HEAD" and not body)
        return status, self._fields(keep_length), body

    def _fields(self, keep_length: bool) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        length_kept = False
        for name, value in self.headers:
            key = name.lower()
            if key == "content-length":
                value = value.strip()
                if keep_length and not length_kept and value.isdigit() and value.isascii():
                    out.append((name, value))
                    length_kept = True
            elif key in CONNECTION_FIELDS:
                # The one wish an application may have about the connection: close it.
                if key == "connection" and "close" in comma_tokens([value]):
                    out.append(("Connection", "close"))
            else:
                out.append((name, value))
        return out

    def short_and_known(self) -> bool:
        """The application declared a Content-Length of at most COLLECT_UP_TO: a body
        that is finite and small (Werkzeug wraps every response, streamed or not, in
        an iterator, and sets Content-Length on those it has whole). Such a body is
        collected, to be sent with compression like a list."""
        for name, value in self.headers:
            if name.lower() == "content-length":
                value = value.strip()
                return value.isdigit() and value.isascii() and int(value) <= COLLECT_UP_TO
        return False

    def send_file(self, wrapper: FileWrapper) -> bool:
        """Send a file_wrapper's file from its descriptor; False (nothing sent) when
        it cannot be: not a regular file, no start_response yet, output already
        written, or a response without a body."""
        request, status = self.request, self.status
        if status is None or self.chunks or request.responded or request.method != "GET":
            return False
        if status in NO_BODY_STATUSES:
            return False
        declared = None
        for name, value in self.headers:
            if name.lower() == "content-length" and value.strip().isdigit():
                declared = int(value.strip())
        segment = wrapper.segment(declared)
        if segment is None:
            return False
        wrapper.close()  # the segment has a descriptor of its own
        fields = [(n, v) for n, v in self._fields(True) if n.lower() != "content-length"]
        request._send_fd(status, [*fields, ("Content-Length", str(segment.left))], segment)
        return True

    def stream(self, result: Iterable[bytes]) -> None:
        """Stream `result` through respond_stream(), after what write() was given. The
        application's Content-Length is kept: it delimits the body (a mismatch closes
        the connection)."""
        iterator = iter(result)
        # PEP 3333: start_response may be called as late as the first iteration.
        while self.status is None:
            try:
                chunk = next(iterator)
            except StopIteration:
                break
            self.collect(chunk)
        status = self.status
        if status is None:
            raise MummyError("the WSGI application returned without calling start_response()")
        first, self.chunks = self.chunks, []
        body = _StreamedBody(first, iterator, result, self)
        self.request.respond_stream(status, self._fields(True), body)


class _StreamedBody:
    """A streamed WSGI body: the chunks already produced, then the application's
    iterable, checked chunk by chunk; `close()` closes the application's iterable
    (PEP 3333), which respond_stream calls however the stream ends."""

    __slots__ = ("_exchange", "_first", "_iterator", "_result")

    def __init__(
        self,
        first: list[bytes],
        iterator: Iterator[bytes],
        result: Iterable[bytes],
        exchange: _Exchange,
    ) -> None:
        self._first = first
        self._iterator = iterator
        self._result = result
        self._exchange = exchange

    def __iter__(self) -> Iterator[bytes]:
        yield from self._first
        for chunk in self._iterator:
            if not isinstance(chunk, bytes):
                raise MummyError(
                    f"a WSGI application must produce bytes, not {type(chunk).__name__}"
                )
            yield chunk

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            close()


class FileWrapper:
    """`environ["wsgi.file_wrapper"]` (PEP 3333's optional platform file handling):
    returned by an application for a file object; the adapter sends a regular
    file from its descriptor (os.sendfile on plaintext HTTP/1.1), from its current
    position, for the application's Content-Length or to its end. Otherwise it is
    an ordinary iterable of `block_size` reads. Range and validators are the
    application's job here (mummy.Request.respond_file does them)."""

    def __init__(self, filelike: Any, block_size: int = 8192) -> None:
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        while True:
            data = read(self.block_size)
            if not data:
                return
            yield data

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()

    def segment(self, declared: int | None) -> FileSegment | None:
        """The file's bytes to send (a descriptor of our own), or None when it is not a
        regular file with a descriptor and a position."""
        try:
            fd = self.filelike.fileno()
            st = os.fstat(fd)
            offset = self.filelike.tell()
        except (AttributeError, OSError, ValueError):
            return None
        if not stat.S_ISREG(st.st_mode) or not isinstance(offset, int):
            return None
        left = max(0, st.st_size - offset)
        length = left if declared is None else min(declared, left)
        return FileSegment(os.dup(fd), offset, length)


def _close(result: Iterable[bytes]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


class WSGIAdapter:
    """A mummy handler that runs a WSGI (PEP 3333) application.

    >>> app = WSGIAdapter(flask_app, forwarded_allow_ips="127.0.0.1")
    >>> mummy.Server(app).serve(8080)

    - `forwarded_allow_ips`: peers trusted to tell the client's address and scheme in
      `Forwarded` or `X-Forwarded-For`/`X-Forwarded-Proto` (see `TrustedProxies`).
    - `server_name`, `server_port`: SERVER_NAME and SERVER_PORT for requests without a
      Host header (HTTP/1.0); default "localhost" and the scheme's port.
    - `script_name`: the prefix the application is mounted under (e.g. "/api"), moved
      from PATH_INFO to SCRIPT_NAME; requests outside it are answered 404.

    One adapter serves every worker at once; it is read-only after `__init__`.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        forwarded_allow_ips: str | list[str] | None = None,
        server_name: str | None = None,
        server_port: int | None = None,
        script_name: str = "",
    ) -> None:
        if not callable(app):
            raise MummyError(f"the WSGI application must be callable, got {app!r}")
        if server_port is not None and (
            not isinstance(server_port, int)
            or isinstance(server_port, bool)
            or not 0 < server_port <= 65535
        ):
            raise MummyError(f"server_port must be an int from 1 to 65535, got {server_port!r}")
        if script_name and (not script_name.startswith("/") or script_name.endswith("/")):
            raise MummyError(
                f"script_name must start with '/' and not end with one (or be ''), "
                f"got {script_name!r}"
            )
        self.app = app
        self.trusted = TrustedProxies(forwarded_allow_ips)
        self.server_name = server_name or "localhost"
        self.server_port = None if server_port is None else str(server_port)
        # PEP 3333: environ strings carry the bytes on the wire (UTF-8 here) as latin-1.
        self.script_name = script_name.encode("utf-8").decode("latin-1")
        self._base: WSGIEnvironment = {
            "SCRIPT_NAME": self.script_name,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            # The body is complete: reading to EOF is safe (a Werkzeug/PEP 3333 extension).
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": FileWrapper,
        }

    def __call__(self, request: Request) -> None:
        environ = self._environ(request)
        if environ is None:
            request.respond(404, {"Content-Type": "text/plain; charset=utf-8"}, "Not Found\n")
            return
        exchange = _Exchange(request)
        errors: ErrorStream = environ["wsgi.errors"]
        try:
            result = self.app(environ, exchange.start_response)
            if isinstance(result, FileWrapper) and exchange.send_file(result):
                return
            if not isinstance(result, (list, tuple)) and not exchange.short_and_known():
                if request.responded:
                    _close(result)  # answered through environ["mummy.request"]
                    return
                try:
                    exchange.stream(result)
                except BaseException:
                    _close(result)
                    raise
                return
            try:
                for chunk in result:
                    exchange.collect(chunk)
            finally:
                _close(result)
        finally:
            errors.flush()
        if request.responded:
            return  # the application answered through environ["mummy.request"]
        if exchange.status is None:
            raise MummyError("the WSGI application returned without calling start_response()")
        request.respond(*exchange.response())

    def environ(self, request: Request) -> WSGIEnvironment:
        """The environ the application gets for `request` (a fresh dict each call).
        Raises MummyError for a request outside `script_name`."""
        environ = self._environ(request)
        if environ is None:
            raise MummyError(f"{request.uri!r} is outside script_name {self.script_name!r}")
        return environ

    def _environ(self, request: Request) -> WSGIEnvironment | None:
        path_info, query, authority = split_uri(request.uri)
        script_name = self.script_name
        if script_name:
            if path_info != script_name and not path_info.startswith(script_name + "/"):
                return None
            path_info = path_info[len(script_name) :]
        body = request.body
        environ = self._base.copy()
        environ["REQUEST_METHOD"] = request.method
        environ["PATH_INFO"] = path_info
        environ["QUERY_STRING"] = query
        environ["REQUEST_URI"] = request.uri
        environ["SERVER_PROTOCOL"] = request.http_version
        environ["REMOTE_ADDR"] = request.remote_address
        environ["wsgi.input"] = io.BytesIO(body)
        environ["wsgi.errors"] = ErrorStream()
        environ["mummy.request"] = request
        framed = bool(body)
        for name, value in request.headers.multi_items():
            if "_" in name:
                # "X_Forwarded_For" would land on the same key as "X-Forwarded-For" and
                # could pass for it; as nginx and gunicorn do, drop such fields.
                continue
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ.setdefault("CONTENT_TYPE", value)
            elif key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
                # The body is whole (and de-chunked): CONTENT_LENGTH below says how long.
                framed = True
            elif key == "CONTENT_ENCODING":
                # mummy decodes request bodies before handlers see them: it no longer applies.
                continue
            else:
                key = "HTTP_" + key
                previous = environ.get(key)
                if previous is None:
                    environ[key] = value
                else:
                    # RFC 9110 §5.3 joins repeated fields with ","; RFC 6265 §5.4 with ";".
                    joiner = "; " if key == "HTTP_COOKIE" else ", "
                    environ[key] = previous + joiner + value
        if framed:
            environ["CONTENT_LENGTH"] = str(len(body))
        # The server's own forwarded_allow_ips (and TLS) are in request.scheme and
        # remote_address already; the adapter's apply on top of them.
        scheme = environ["wsgi.url_scheme"] = request.scheme
        if self.trusted.anyone and self.trusted.trusts(request.remote_address):
            address, told_scheme = forwarded_client(self.trusted, request.headers.get_all)
            if address is not None:
                environ["REMOTE_ADDR"] = address
            if told_scheme is not None:
                scheme = environ["wsgi.url_scheme"] = told_scheme
        # RFC 9112 §3.2.2: an absolute-form target's authority overrides Host.
        host = authority or request.headers.get("host")
        if host:
            name, port = _split_host(host)
            environ["SERVER_NAME"] = name
            environ["SERVER_PORT"] = port or _DEFAULT_PORTS[scheme]
        else:
            environ["SERVER_NAME"] = self.server_name
            environ["SERVER_PORT"] = self.server_port or _DEFAULT_PORTS[scheme]
        return environ
