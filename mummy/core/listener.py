"""Listening sockets: TCP (IPv4, IPv6, dual-stack), Unix domain sockets, and
inherited file descriptors (systemd socket activation); and accepting on them."""

import errno
import logging
import os
import select
import socket
import stat
import time
from collections.abc import Iterator

from mummy.core.poller import READ, Poller
from mummy.errors import MummyError

log = logging.getLogger("mummy")

LISTEN_BACKLOG = 1024
EPOLLEXCLUSIVE = getattr(select, "EPOLLEXCLUSIVE", 0)
ACCEPT_BATCH = 1 << 30  # a listener of one loop's own: accept all that wait
ACCEPT_PAUSE_SECONDS = 0.1


def make_listener(
    port: int,
    address: str,
    *,
    uds: str | None = None,
    fd: int | None = None,
    reuse_port: bool = False,
) -> socket.socket:
    """A bound, listening, non-blocking socket. Raises MummyError saying what to fix."""
    if sum(x is not None for x in (uds, fd)) > 1:
        raise MummyError("pass at most one of uds= and fd=")
    if fd is not None:
        sock = _inherited(fd)
    elif uds is not None:
        sock = _unix(uds)
    else:
        sock = _tcp(port, address, reuse_port)
    sock.setblocking(False)
    return sock


def make_listeners(
    count: int,
    port: int,
    address: str,
    *,
    uds: str | None = None,
    fd: int | None = None,
    reuse_port: bool = False,
) -> tuple[list[socket.socket], bool]:
    """`count` listening sockets for `count` IO loops, and whether they share one
    socket (then each loop must wait on it with EPOLLEXCLUSIVE).

    A TCP port of our own: `count` sockets bound to it with SO_REUSEPORT, the
    kernel spreading new connections over them by a hash of the peer's address.
    A Unix socket or an inherited fd: one socket, dup'ed once per loop so that
    each loop closes its own descriptor; shared when there are several loops or
    the fd is inherited (other processes may accept on it too: `--processes`)."""
    if uds is not None or fd is not None:
        sock = make_listener(port, address, uds=uds, fd=fd)
        # An inherited socket may be shared with other processes (--processes).
        return [sock] + [sock.dup() for _ in range(count - 1)], count > 1 or fd is not None
    first = make_listener(port, address, reuse_port=reuse_port or count > 1)
    socks = [first]
    try:
        for _ in range(count - 1):
            bound = first.getsockname()
            sock = _tcp(bound[1], address, True)
            sock.setblocking(False)
            socks.append(sock)
    except MummyError:
        for sock in socks:
            sock.close()
        raise
    return socks, False


def _tcp(port: int, address: str, reuse_port: bool) -> socket.socket:
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise MummyError(f"port must be an int from 0 to 65535, got {port!r}")
    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise MummyError(f"cannot resolve address {address!r}: {exc}") from None
    family, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            # Several processes on one port, the kernel spreading connections.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6 and address in ("::", ""):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # dual-stack
        sock.bind(sockaddr)
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise MummyError(
            f"cannot listen on {address}:{port}: {exc.strerror}; is another server using that port?"
        ) from None
    return sock


def _unix(path: str) -> socket.socket:
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)  # a stale socket from an earlier run
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise MummyError(f"cannot listen on the Unix socket {path!r}: {exc.strerror}") from None
    return sock


def _inherited(fd: int) -> socket.socket:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise MummyError(f"fd {fd} is not a socket this process can use: {exc.strerror}") from None
    try:
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    except OSError:
        listening = 0
    if sock.type != socket.SOCK_STREAM or not listening:
        sock.detach()
        raise MummyError(f"fd {fd} is not a listening stream socket")
    return sock


class Acceptor:
    """The IO loop's side of a listening socket: accepts until the kernel has no
    more, registered with the loop's poller only while accepting. Paused at
    `max_connections` (further clients wait in the kernel's backlog) and, for a
    moment, when accept fails for lack of descriptors. IO thread only."""

    __slots__ = (
        "_batch",
        "_ep",
        "_events",
        "_max",
        "_paused_until",
        "_registered",
        "closed",
        "sock",
    )

    def __init__(
        self, sock: socket.socket, poller: Poller, max_connections: int, *, shared: bool = False
    ) -> None:
        self.sock = sock
        self._ep = poller
        self._max = max_connections
        # A socket other loops or processes wait on too: EPOLLEXCLUSIVE wakes one
        # of them per new connection instead of all (the fallback poller ignores it).
        self._events = READ | (EPOLLEXCLUSIVE if shared else 0)
        # Accepting every waiting connection at once lets one loop (the first idle
        # one the kernel wakes) take a whole burst: wrk's 64 connections went
        # 461:212 ticks of CPU to two children. One per wake spreads them
        # (266:261), as the others are woken for the next ones (docs/deployment.md).
        self._batch = 1 if shared else ACCEPT_BATCH
        self._registered = False
        self._paused_until = 0.0
        self.closed = False

    def start(self) -> None:
        self._ep.register(self.sock.fileno(), self._events)
        self._registered = True

    def accept(self, connections: int) -> Iterator[tuple[socket.socket, str]]:
        """New sockets (non-blocking, TCP_NODELAY) and peer addresses, while there
        are fewer than max_connections counting `connections` already open: all
        that wait, or one from a shared listener."""
        batch = self._batch
        while connections < self._max and batch > 0:
            batch -= 1
            try:
                sock, addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno == errno.ECONNABORTED:
                    continue
                # EMFILE/ENFILE/ENOBUFS: pause accepting briefly instead of spinning.
                log.warning(
                    "accept failed (%s); pausing accepts for %.1fs", exc, ACCEPT_PAUSE_SECONDS
                )
                self.pause()
                self._paused_until = time.monotonic() + ACCEPT_PAUSE_SECONDS
                return
            sock.setblocking(False)
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connections += 1
            yield sock, str(addr[0]) if isinstance(addr, tuple) else ""
        if connections < self._max:  # a batch used up, not the limit reached
            return
        log.warning("max_connections (%d) reached; not accepting", self._max)
        self.pause()

    @property
    def accepting(self) -> bool:
        return self._registered

    def pause(self) -> None:
        if self._registered:
            self._registered = False
            self._ep.unregister(self.sock.fileno())

    def resume(self, connections: int, now: float) -> None:
        """Accept again if there is room and no pause is running."""
        if self._paused_until and now >= self._paused_until:
            self._paused_until = 0.0
        if not (self._registered or self.closed or self._paused_until) and connections < self._max:
            self._registered = True
            self._ep.register(self.sock.fileno(), self._events)

    def close(self) -> None:
        if not self.closed:
            self.pause()
            self.closed = True
            self.sock.close()
