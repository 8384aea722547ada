"""Listening sockets: TCP (IPv4, IPv6, dual-stack), Unix domain sockets, and
inherited file descriptors (systemd socket activation)."""

import os
import socket
import stat

from mummy.errors import MummyError

LISTEN_BACKLOG = 1024


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
