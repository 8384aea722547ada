"""What a worker does with each task: the worker-side half of every protocol.

Every HTTP task ends with exactly one response posted, whatever fails, so no
connection is ever left hanging; every WebSocket task ends with a
WebSocketDone; every TLS step with a TlsStep. The public objects a handler
sees (mummy.Request, mummy.WebSocket) are made by the factories the server
hands in: nothing here imports them.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from typing import Protocol

from mummy.core.compression import DecodeError, decode_body
from mummy.core.config import ServerConfig
from mummy.core.connection import Connection
from mummy.core.http1 import ParsedRequest
from mummy.core.messages import (
    H2Task,
    HttpTask,
    StreamTask,
    Task,
    TlsStep,
    TlsTask,
    WebSocketDone,
    WebSocketDrop,
    WebSocketEvent,
    WebSocketTask,
)
from mummy.core.metrics import Metrics, WorkerCounts
from mummy.core.response import error_message
from mummy.core.target import TargetError, parse_query, split_target
from mummy.core.wsengine import Event, Message, WebSocketEngine
from mummy.errors import MummyError

log = logging.getLogger("mummy")

_TEXT = {"Content-Type": "text/plain; charset=utf-8"}


class HandledRequest(Protocol):
    """What the runtime needs of the request object a handler receives."""

    method: str
    uri: str
    _counts: WorkerCounts | None  # where its response is counted (metrics_port)

    @property
    def responded(self) -> bool: ...

    def respond(self, status: int, headers: dict[str, str], body: str) -> None: ...


WebSocketDispatch = Callable[[WebSocketEngine, Event, Message | None], None]


class WorkerRuntime[Req: HandledRequest]:
    def __init__(
        self,
        config: ServerConfig,
        handler: Callable[[Req], None],
        # (conn, the parsed request, its decoded path, its query pairs, its decoded body)
        make_request: Callable[[Connection, ParsedRequest, str, list[tuple[str, str]], bytes], Req],
        dispatch_websocket: WebSocketDispatch,
        metrics: Metrics | None = None,
    ) -> None:
        self._config = config
        self._handler = handler
        self._make_request = make_request
        self._dispatch_websocket = dispatch_websocket
        self._metrics = metrics

    def run(self, task: Task) -> None:
        """A worker runs this for each task (an HTTP request inline: the hot path)."""
        self._run(task, None)

    def counting_runner(self) -> Callable[[Task], None]:
        """With metrics: a worker thread's own `run`, counting into the thread's own
        counts, reached through this closure rather than a thread-local or the shared
        Metrics (on 3.13t each touch of a shared object is an atomic reference count
        update that the cores pass around)."""
        assert self._metrics is not None
        counts = self._metrics.mine()
        run = self._run

        def counted(task: Task) -> None:
            counts.started += 1
            try:
                run(task, counts)
            finally:
                counts.finished += 1

        return counted

    def _run(self, task: Task, counts: WorkerCounts | None) -> None:
        if not isinstance(task, HttpTask):
            if isinstance(task, H2Task):
                task.session.feed(task.data)  # posts the H2Output that ends it
            elif isinstance(task, WebSocketTask):
                self._run_websocket(task)
            elif isinstance(task, StreamTask):
                task.stream.resume(task.budget)  # posts the StreamYield that ends it
            else:
                self._run_tls_step(task)
            return
        conn, parsed = task.conn, task.request
        request = None
        try:
            request = self._request(conn, parsed, counts)
            if request is not None:
                self._call_handler(request)
        except BaseException:
            log.exception("failed to serve %s %s", parsed.head.method, parsed.head.target)
            if request is None or not request.responded:
                self._answer(conn, parsed, counts, 500, "the server failed to handle the request")

    @staticmethod
    def _answer(
        conn: Connection, parsed: ParsedRequest, counts: WorkerCounts | None, status: int, why: str
    ) -> None:
        """The server's own answer to a request (no handler answered): counted, then posted."""
        if counts is not None:
            seconds = time.monotonic() - parsed.received_at
            counts.request(parsed.head.method, bool(parsed.stream_id), status, seconds)
        conn.post(error_message(conn, parsed.stream_id, status, why))

    def _request(
        self, conn: Connection, parsed: ParsedRequest, counts: WorkerCounts | None
    ) -> Req | None:
        """The handler's request, or None when it was answered already (shed by
        queue_timeout, a bad target, a body that does not decode)."""
        head, body = parsed.head, parsed.body
        queue_timeout = self._config.queue_timeout
        if queue_timeout is not None and time.monotonic() - parsed.received_at > queue_timeout:
            # Load shedding: answering late is worse than answering "later".
            if counts is not None:
                counts.shed += 1
            self._answer(conn, parsed, counts, 503, "the request waited too long for a worker")
            return None
        try:
            path, raw_query = split_target(head.target)
            query = parse_query(raw_query) if raw_query else []
            if head.content_encoding is not None and body:
                body = decode_body(body, head.content_encoding, self._config.max_body_len)
        except TargetError as exc:
            self._answer(conn, parsed, counts, 400, str(exc))
            return None
        except DecodeError as exc:
            self._answer(conn, parsed, counts, exc.status, str(exc))
            return None
        request = self._make_request(conn, parsed, path, query, body)
        request._counts = counts
        return request

    def _call_handler(self, request: Req) -> None:
        try:
            self._handler(request)
        except BaseException:
            # Any exception, even SystemExit: a handler never takes a worker down.
            log.exception("handler raised on %s %s", request.method, request.uri)
        else:
            if request.responded:
                return
            log.error("handler returned without responding to %s %s", request.method, request.uri)
        if not request.responded:
            try:
                request.respond(500, _TEXT, "Internal Server Error\n")
            except MummyError:
                pass  # responded from another thread in the meantime

    # --- TLS -----------------------------------------------------------------------

    def _run_tls_step(self, task: TlsTask) -> None:
        conn = task.conn
        try:
            out, finished = task.tls.handshake(task.data)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", conn.remote_address, exc)
            conn.post(TlsStep(conn, b"", None))
            return
        except Exception:
            log.exception("TLS handshake with %s failed", conn.remote_address)
            conn.post(TlsStep(conn, b"", None))  # the step still ends
            return
        conn.post(TlsStep(conn, out, finished))

    # --- WebSocket -----------------------------------------------------------------

    def _run_websocket(self, task: WebSocketTask) -> None:
        """One at a time per connection: OPEN first, CLOSE last and exactly once,
        and nothing at all for a WebSocket refused at shutdown."""
        conn, engine, kind = task.conn, task.engine, task.event
        try:
            events: list[tuple[Event, Message | None]]
            if kind is WebSocketEvent.OPEN:
                if conn.websockets.add(engine):
                    engine.opened = True
                    events, drop = [(Event.OPEN, None)], False
                else:
                    # Upgraded as close() began: no OPEN (so no CLOSE either), a
                    # 1001 Close, then the connection is dropped.
                    engine.close(1001, "server shutting down")
                    events, drop = [], True
            elif kind is WebSocketEvent.INPUT:
                try:
                    events, drop = engine.receive(task.data, self._config.max_message_len)
                except Exception:
                    log.exception("WebSocket protocol failure from %s", conn.remote_address)
                    events, drop = [(Event.ERROR, None)], True
            elif kind is WebSocketEvent.END:
                events, drop = [], True
            else:
                events, drop = engine.gone(), True
            if engine.opened:
                for event, message in events:
                    self._dispatch(engine, event, message)
            engine.fail_pending()
            if drop:
                if engine.opened and engine.claim_close():
                    self._dispatch(engine, Event.CLOSE, None)
                    conn.websockets.discard(engine)
                if kind is not WebSocketEvent.GONE:
                    conn.post(WebSocketDrop(conn))
        finally:
            conn.post(WebSocketDone(conn))

    def _dispatch(self, engine: WebSocketEngine, event: Event, message: Message | None) -> None:
        try:
            self._dispatch_websocket(engine, event, message)
        except Exception:
            log.exception("WebSocket handler raised on %s", event.name)
