"""Server-Sent Events: `EventStream`, what `Request.respond_sse()` returns.

>>> events = request.respond_sse()
>>> events.send("tick", event="clock", id="1")  # from any thread, any time

The wire format is the WHATWG HTML standard's (§9.2.5, "Parsing an event
stream"): `field: value` lines, one event per block ended by a blank line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mummy.errors import MummyError

if TYPE_CHECKING:
    from mummy.core.sse import SseEngine
    from mummy.request import Request

__all__ = ["EventStream"]


def _lines(text: str) -> list[str]:
    # §9.2.5: a line ends at CRLF, LF or CR; each line of the data is its own field.
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


class EventStream:
    """One open Server-Sent Events stream. `send`, `comment` and `close` are safe
    from any thread (a background thread broadcasting is the normal use); `send`
    returns False once the stream is closed: the client left, read too slowly
    (more than `sse_send_buffer_len` bytes waiting), or the server is closing.
    Hashable by identity, so a set of streams is the natural registry.

    `request` is the request it answered (valid while the stream is open);
    a reconnecting browser's `Last-Event-ID` is in `request.headers`."""

    __slots__ = ("__weakref__", "_engine", "request")

    def __init__(self, request: Request, engine: SseEngine) -> None:
        self.request = request
        self._engine = engine
        engine.handle = self

    @property
    def closed(self) -> bool:
        return self._engine.closed

    def send(
        self,
        data: str,
        *,
        event: str | None = None,
        id: str | None = None,
        retry: int | None = None,
    ) -> bool:
        """Send one event: `event: NAME`, `id: ID`, `retry: MS` (the client's
        reconnection delay, in milliseconds) and a `data:` line per line of
        `data`. CR or LF in `event` or `id` raise MummyError (they would start
        another field). False if the stream is closed."""
        out = []
        for name, value in (("event", event), ("id", id)):
            if value is None:
                continue
            if not isinstance(value, str):
                raise MummyError(f"{name} must be a str, not {type(value).__name__}")
            if "\r" in value or "\n" in value:
                raise MummyError(f"the event's {name} must not contain CR or LF: {value!r}")
            if name == "id" and "\0" in value:
                raise MummyError("the event's id must not contain NUL (browsers ignore it)")
            out.append(f"{name}: {value}\n")
        if retry is not None:
            if not isinstance(retry, int) or isinstance(retry, bool) or retry < 0:
                raise MummyError(f"retry must be an int of milliseconds >= 0, got {retry!r}")
            out.append(f"retry: {retry}\n")
        if not isinstance(data, str):
            raise MummyError(f"data must be a str, not {type(data).__name__}")
        out += [f"data: {line}\n" for line in _lines(data)]
        out.append("\n")
        return self._engine.write("".join(out).encode("utf-8"))

    def comment(self, text: str = "") -> bool:
        """Send a comment (ignored by clients; keeps proxies from timing out): one
        `: text` line per line of `text`. False if the stream is closed."""
        lines = [f": {line}\n" if line else ":\n" for line in _lines(text)]
        return self._engine.write(("".join(lines) + "\n").encode("utf-8"))

    def close(self) -> None:
        """End the stream cleanly; what was sent still goes out. The connection
        then serves its next request (HTTP/1.1 keep-alive)."""
        self._engine.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<EventStream {self.request.remote_address} {self.request.path} {state}>"
