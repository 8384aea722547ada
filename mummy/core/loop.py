"""The IO thread: one epoll loop that accepts, reads, writes, keeps the timers and
takes workers' messages back; each connection's protocol is its driver.

It never runs user code and never blocks anywhere but in `epoll.poll`. Each
turn: wait for events; hand the mailbox's messages to their connections'
drivers; accept; read and write for ready sockets; fire expired timers. The
loop never asks which protocol a connection speaks: it moves bytes (its
Transport half, mummy.core.transport: recv, send, TLS records, closing) and
calls `conn.driver` (mummy.core.driver).

Fault isolation: whatever raises while the loop serves one connection (its
driver, parsing, TLS records, its timers) closes that connection, after the
driver's last word, and is logged (rate-limited); everyone else is served on.
Only a failure of the loop itself (epoll, the listener, the mailbox) ends `run`.

Everything here belongs to this loop (its epoll, connections, timers, mailbox,
WebSocket and stream registries, its share of the ring and of max_connections):
a server runs `io_threads` of them over one worker pool (docs/threading-model.md).
"""

import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable

from mummy.core.config import ServerConfig
from mummy.core.connection import LINGER, Connection, Timer
from mummy.core.driver import Driver
from mummy.core.faults import FaultLog
from mummy.core.listener import Acceptor
from mummy.core.messages import WAKE, Message, Task
from mummy.core.poller import ERROR, READ, WRITE, make_poller
from mummy.core.ring import Mailbox, TaskRing
from mummy.core.streams import StreamRegistry
from mummy.core.timers import TimerWheel
from mummy.core.transport import Transport
from mummy.core.wsregistry import WebSocketRegistry

log = logging.getLogger("mummy")

TIMER_CHECK_SECONDS = 0.25

# Makes the driver of a new connection (TLS handshake or HTTP/1.1).
DriverFactory = Callable[["EventLoop", Connection], Driver]


class EventLoop(Transport):
    """Owns the listening socket and every connection; `run` is the IO thread's body."""

    def __init__(
        self,
        listener: socket.socket,
        ring: TaskRing[Task],
        config: ServerConfig,
        new_driver: DriverFactory,
        ssl_context: ssl.SSLContext | None = None,
        *,
        index: int = 0,
        shared_listener: bool = False,
    ) -> None:
        super().__init__(make_poller(), TimerWheel(), FaultLog(log))
        self.config = config
        self.ring = ring
        self.ssl_context = ssl_context
        self.mailbox: Mailbox[Message] = Mailbox()
        self.websockets = WebSocketRegistry()
        self.streams = StreamRegistry()
        # Drivers with a complete request waiting for room in the ring.
        self.waiting_for_ring: deque[Driver] = deque()
        # Drivers to call once this drain of the mailbox is done (HTTP/2 writes).
        self.after_drain: set[Driver] = set()
        self.closing = False  # close() began: no new work
        self.index = index  # which of the server's loops (io_threads)
        # Connections opened and ended, by driver protocol (a switch ends one protocol
        # and opens the next): the connections gauge is their difference.
        self.opened: dict[str, int] = {}
        self.ended: dict[str, int] = {}
        # HTTP/1.1 connections idle when close() began: each gets a moment to send
        # one last request (Http1Driver.server_closing).
        # IO thread writes; the closing thread reads it (an int: a benign race).
        self.last_requests_due = 0
        self._new_driver = new_driver
        self._next_timer_check = 0.0
        self._acceptor = Acceptor(
            listener, self._ep, config.per_loop(config.max_connections), shared=shared_listener
        )
        self._conns: dict[int, Connection] = {}
        # Control flags, set by the closing thread, then a Wake is posted.
        self._stop_accepting = False
        self._refusals_done = False
        self._finish_deadline = 0.0
        self.accepting_stopped = threading.Event()

    # --- called from other threads ---------------------------------------------

    def stop_accepting(self, timeout: float) -> None:
        """Stop accepting and starting work; wait until the IO thread has done so."""
        self._stop_accepting = True
        self.mailbox.post(WAKE)
        self.accepting_stopped.wait(timeout)

    def refusals_done(self) -> None:
        """Every task taken back from the ring has been answered (posted before this,
        and the mailbox keeps one thread's posts in order)."""
        self._refusals_done = True
        self.mailbox.post(WAKE)

    def finish(self, deadline: float) -> None:
        """Flush pending output until `deadline` (monotonic), then close everything."""
        self._finish_deadline = deadline
        self.mailbox.post(WAKE)

    @property
    def finishing(self) -> bool:
        """The workers are gone (`finish` was called): flush and close."""
        return bool(self._finish_deadline)

    @property
    def connection_count(self) -> int:
        return len(self._conns)

    # --- the IO thread ---------------------------------------------------------

    def run(self) -> None:
        ep = self._ep
        listen_fd = self._acceptor.sock.fileno()
        wake_fd = self.mailbox.fd
        self._acceptor.start()
        ep.register(wake_fd, READ)
        conns = self._conns
        try:
            while True:
                for fd, mask in ep.poll(TIMER_CHECK_SECONDS):
                    if fd == wake_fd:
                        self._take_messages()
                    elif fd == listen_fd:
                        self._accept()
                    else:
                        conn = conns.get(fd)
                        if conn is None:
                            continue
                        try:
                            if mask & ERROR:
                                self.close(conn)
                                continue
                            if mask & WRITE:
                                self.flush(conn)
                            if mask & ~WRITE and not conn.closed:
                                self.read(conn)
                        except Exception as exc:
                            self._fault(conn, exc)
                now = time.monotonic()
                if now >= self._next_timer_check:
                    self._next_timer_check = now + TIMER_CHECK_SECONDS
                    if self.mailbox.pending:
                        self._take_messages()
                    if self._timers(now):
                        return
        finally:
            self._shutdown()

    def _fault(self, conn: Connection, exc: Exception) -> None:
        """`conn`'s driver (or its TLS, or its parser) raised: close it, after the
        answer its protocol allows; the loop goes on."""
        self._faults.report(conn.remote_address, exc)
        if conn.closed:
            return
        try:
            word = conn.driver.last_word()
            if word:
                self.send(conn, word)
                self.close_after_output(conn, graceful=conn.driver.linger_on_close)
                return
        except Exception:
            pass
        self.close(conn)

    def _take_messages(self) -> None:
        for msg in self.mailbox.drain():
            if msg is WAKE:
                self._control()
                continue
            if msg.ends_task:
                self.ring.done()
            conn = msg.conn
            try:
                conn.driver.message(msg)
            except Exception as exc:
                self._fault(conn, exc)
        after = self.after_drain
        while after:
            self._call(after.pop(), lambda driver: driver.after_messages())
        waiting = self.waiting_for_ring
        while waiting and not self.ring.full:
            self._call(waiting.popleft(), lambda driver: driver.ring_has_room())

    def _call(self, driver: Driver, hook: Callable[[Driver], None]) -> None:
        """`hook` of a driver whose connection is still open, isolated (`_fault`)."""
        if not driver.conn.closed:
            try:
                hook(driver)
            except Exception as exc:
                self._fault(driver.conn, exc)

    def _timers(self, now: float) -> bool:
        """Fire expired timers, resume paused accepts; True when the loop should end."""
        for timer in self.wheel.expired(now):
            conn = timer.conn
            kind, timer.timer_kind = timer.timer_kind, 0
            if conn.closed:
                continue
            try:
                if kind == LINGER:
                    self.close(conn)
                else:
                    conn.driver.timer_fired(kind)
            except Exception as exc:
                self._fault(conn, exc)
        self._acceptor.resume(len(self._conns), now)
        self._faults.flush(now)
        if self._finish_deadline:
            # A file still being sent (os.sendfile) counts as output not yet flushed.
            flushed = not any(c.out or c.file is not None for c in self._conns.values())
            return flushed or now >= self._finish_deadline
        return False

    def _control(self) -> None:
        if self._stop_accepting and not self.closing:
            self.closing = True
            self._acceptor.close()
            self.waiting_for_ring.clear()
            self._each_driver(lambda driver: driver.server_closing())
            self.accepting_stopped.set()
        if self._refusals_done:
            self._refusals_done = False
            self._each_driver(lambda driver: driver.server_refusals_done())

    def _each_driver(self, hook: Callable[[Driver], None]) -> None:
        for conn in list(self._conns.values()):
            self._call(conn.driver, hook)

    def _shutdown(self) -> None:
        for conn in list(self._conns.values()):
            self.close(conn)
        self._acceptor.close()
        self._ep.close()
        self.mailbox.close()
        self.accepting_stopped.set()

    def _accept(self) -> None:
        for sock, address in self._acceptor.accept(len(self._conns)):
            conn = Connection(sock, address, self.mailbox.post, self.websockets, self.streams)
            self._conns[conn.fd] = conn
            conn.events = READ
            self._ep.register(conn.fd, READ)
            conn.driver = Driver(self, conn)  # in case the factory fails
            try:
                conn.driver = self._new_driver(self, conn)
                self._count(self.opened, conn.driver.protocol)
                conn.driver.start()
            except Exception as exc:
                self._fault(conn, exc)

    # --- timers and closing ----------------------------------------------------

    @staticmethod
    def _count(counts: dict[str, int], protocol: str) -> None:
        counts[protocol] = counts.get(protocol, 0) + 1

    def arm(self, timer: Timer, seconds: float, kind: int) -> None:
        self.wheel.arm(timer, time.monotonic() + seconds, kind)

    def switch(self, conn: Connection, driver: Driver) -> None:
        """The connection now speaks another protocol (h2c, WebSocket, after TLS)."""
        self._count(self.ended, conn.driver.protocol)
        self._count(self.opened, driver.protocol)
        conn.driver = driver
        driver.start()

    def close(self, conn: Connection) -> None:
        if conn.closed:
            return
        super().close(conn)
        if self._conns.pop(conn.fd, None) is not None and conn.driver.protocol != "other":
            self._count(self.ended, conn.driver.protocol)
        if not self._acceptor.accepting:  # paused at max_connections: there is room now
            self._acceptor.resume(len(self._conns), time.monotonic())
