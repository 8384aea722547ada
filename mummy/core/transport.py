"""Bytes between a connection's socket and its driver: reading (through the TLS
record layer when there is one), writing with write interest (EPOLLOUT)
registered only while output is pending, and closing, at once or gracefully.

Concurrency contract: IO thread only. `EventLoop` is a `Transport`; drivers call
these methods on their loop, never from a worker (workers post messages).
"""

import logging
import os
import socket
import ssl
import time

from mummy.core.connection import CLOSE_GRACEFUL, CLOSE_HARD, LINGER, Connection, Timer
from mummy.core.faults import FaultLog
from mummy.core.files import SENDFILE_CAP
from mummy.core.poller import READ, WRITE, Poller
from mummy.core.timers import TimerWheel

log = logging.getLogger("mummy")

RECV_SIZE = 65536
# RFC 9112 §9.6: after an error or a closing response, shut the write side and
# read (and discard) for a while, so the client sees the response, not a reset.
LINGER_SECONDS = 2.0


class Transport:
    """Reads, writes and closes the connections registered in `poller`."""

    def __init__(self, poller: Poller, wheel: TimerWheel[Timer], faults: FaultLog) -> None:
        self._ep = poller
        self.wheel = wheel
        self._faults = faults
        self.bytes_sent = 0  # to sockets, TLS records included (this IO thread writes it)

    def read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close(conn)
            return
        if not data:
            if conn.lingering:
                self.close(conn)
            else:
                conn.eof = True
                conn.driver.peer_closed()
            return
        if conn.lingering:
            return  # discarded, see LINGER_SECONDS
        tls = conn.tls
        if tls is not None:
            try:
                data = tls.decrypt(data)
            except ssl.SSLError:
                self.close(conn)
                return
            if not data:
                if tls.closed_by_peer:
                    conn.eof = True
                    conn.driver.peer_closed()
                return
        conn.driver.received(data)

    def send(self, conn: Connection, data: bytes) -> None:
        """Queue `data` (plaintext: encrypted here once TLS is up) and write what
        the socket takes now."""
        if conn.closed:
            return
        tls = conn.tls
        if tls is not None:
            data = tls.encrypt(data)
        self.send_raw(conn, data)

    def send_raw(self, conn: Connection, data: bytes) -> None:
        """`send` without the TLS record layer (the handshake's own bytes)."""
        if conn.closed:
            return
        if not conn.out:
            try:
                sent = conn.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self.close(conn)
                return
            self.bytes_sent += sent
            if sent == len(data):
                return
            view = memoryview(data)[sent:]
        else:
            view = memoryview(data)
        conn.out.append(view)
        conn.out_len += len(view)
        self.update_events(conn)

    def flush(self, conn: Connection) -> None:
        out = conn.out
        while out:
            view = out[0]
            try:
                sent = conn.sock.send(view)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.close(conn)
                return
            conn.out_len -= sent
            self.bytes_sent += sent
            if sent < len(view):
                out[0] = view[sent:]
                break
            out.popleft()
        if not out and conn.file is not None and not self._send_file(conn):
            return
        if not out and conn.close_when_flushed:
            self.close_now(conn)
            return
        conn.driver.flushed()
        self.update_events(conn)

    def _send_file(self, conn: Connection) -> bool:
        """One os.sendfile call of at most SENDFILE_CAP bytes of `conn.file` (the
        loop comes back while the socket is writable: connections take turns, and a
        page-cache miss stalls the loop for one call's read, not a whole file's).
        False when the connection was closed."""
        segment = conn.file
        assert segment is not None
        try:
            sent = os.sendfile(conn.fd, segment.fd, segment.offset, min(SENDFILE_CAP, segment.left))
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            self.close(conn)
            return False
        if sent == 0:
            # The file is shorter than when it was opened: the response cannot be completed.
            log.warning("a file sent to %s was truncated meanwhile; closing", conn.remote_address)
            self.close(conn)
            return False
        self.bytes_sent += sent
        segment.offset += sent
        segment.left -= sent
        if not segment.left:
            conn.file = None
            segment.close()
        return True

    def update_events(self, conn: Connection) -> None:
        """Register the events `conn` waits for; its driver says whether to read."""
        self.set_events(conn, conn.driver.wants_input())

    def set_events(self, conn: Connection, wants_input: bool) -> None:
        """`update_events` for a driver that knows its `wants_input()` already."""
        if conn.closed:
            return
        mask = WRITE if conn.out or conn.file is not None else 0
        if conn.lingering or (wants_input and not conn.eof and not conn.close_when_flushed):
            mask |= READ
        if mask != conn.events:
            conn.events = mask
            self._ep.modify(conn.fd, mask)

    def close_after_output(self, conn: Connection, *, graceful: bool) -> None:
        """Close once what is queued is written: at once, or (`graceful`) by shutting
        the write side and discarding input for a while (RFC 9112 §9.6)."""
        if conn.closed:
            return
        conn.close_when_flushed = CLOSE_GRACEFUL if graceful else CLOSE_HARD
        if not conn.out:
            self.close_now(conn)
        else:
            self.update_events(conn)

    def close_now(self, conn: Connection) -> None:
        if conn.close_when_flushed == CLOSE_HARD or conn.eof:
            self.close(conn)
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close(conn)
            return
        conn.lingering = True
        self.wheel.arm(conn.timer, time.monotonic() + LINGER_SECONDS, LINGER)
        self.update_events(conn)

    def close(self, conn: Connection) -> None:
        """Close the socket now (its timers disarmed) and tell its driver."""
        if conn.closed:
            return
        conn.closed = True
        self.wheel.remove(conn.timer)
        if conn.file is not None:
            conn.file.close()
            conn.file = None
        try:
            self._ep.unregister(conn.fd)
        except (OSError, ValueError):
            pass
        conn.sock.close()
        try:
            conn.driver.closed()
        except Exception as exc:
            self._faults.report(conn.remote_address, exc)  # closed already: nothing to undo
