"""What the IO thread waits on: epoll on Linux; elsewhere `selectors` (kqueue,
poll, select) behind the same small interface; and the fd a worker writes to
wake it (an eventfd on Linux, else a socketpair).

`MUMMY_POLLER=poll` forces the portable path on Linux, so ./ci/test can run the
HTTP suite through it and it cannot rot.
"""

import os
import select
import selectors
import socket
from typing import Protocol

# The epoll bit values; the fallback translates them.
READ = 0x001
WRITE = 0x004
ERROR = 0x008


class Poller(Protocol):
    def register(self, fd: int, eventmask: int = ..., /) -> None: ...
    def modify(self, fd: int, eventmask: int, /) -> None: ...
    def unregister(self, fd: int, /) -> None: ...
    def poll(
        self, timeout: float | None = ..., maxevents: int = ..., /
    ) -> list[tuple[int, int]]: ...
    def close(self) -> None: ...


def forced_portable() -> bool:
    return os.environ.get("MUMMY_POLLER", "") == "poll" or not hasattr(select, "epoll")


def make_poller() -> Poller:
    if not forced_portable():
        return select.epoll()
    return SelectorPoller()


class SelectorPoller:
    """epoll's interface over `selectors`; a mask of 0 parks the fd (selectors
    refuses empty interest sets). Errors and hang-ups show up as readable."""

    def __init__(self) -> None:
        if os.environ.get("MUMMY_POLLER") == "poll" and hasattr(selectors, "PollSelector"):
            self._sel: selectors.BaseSelector = selectors.PollSelector()
        else:
            self._sel = selectors.DefaultSelector()
        self._parked: set[int] = set()

    @staticmethod
    def _events(mask: int) -> int:
        return (selectors.EVENT_READ if mask & READ else 0) | (
            selectors.EVENT_WRITE if mask & WRITE else 0
        )

    def register(self, fd: int, eventmask: int = READ, /) -> None:
        events = self._events(eventmask)
        if events:
            self._sel.register(fd, events)
        else:
            self._parked.add(fd)

    def modify(self, fd: int, eventmask: int, /) -> None:
        events = self._events(eventmask)
        if fd in self._parked:
            if events:
                self._parked.discard(fd)
                self._sel.register(fd, events)
        elif events:
            self._sel.modify(fd, events)
        else:
            self._sel.unregister(fd)
            self._parked.add(fd)

    def unregister(self, fd: int, /) -> None:
        if fd in self._parked:
            self._parked.discard(fd)
        else:
            self._sel.unregister(fd)

    def poll(self, timeout: float | None = None, maxevents: int = -1, /) -> list[tuple[int, int]]:
        if timeout is not None and timeout < 0:
            timeout = None
        ready = []
        for key, events in self._sel.select(timeout):
            mask = (READ if events & selectors.EVENT_READ else 0) | (
                WRITE if events & selectors.EVENT_WRITE else 0
            )
            ready.append((key.fd, mask))
        return ready

    def close(self) -> None:
        self._sel.close()


class Waker:
    """A file descriptor other threads make readable to wake the IO thread."""

    def __init__(self) -> None:
        self._pair: tuple[socket.socket, socket.socket] | None = None
        if hasattr(os, "eventfd") and not forced_portable():
            self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:
            reader, writer = socket.socketpair()
            reader.setblocking(False)
            writer.setblocking(False)
            self._pair = (reader, writer)
            self.fd = reader.fileno()

    def wake(self) -> None:
        if self._pair is None:
            os.eventfd_write(self.fd, 1)
        else:
            try:
                self._pair[1].send(b"\0")
            except BlockingIOError:
                pass  # already full of wake-ups: readable anyway

    def clear(self) -> None:
        try:
            if self._pair is None:
                os.eventfd_read(self.fd)
            else:
                while self._pair[0].recv(4096):
                    pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        if self._pair is None:
            os.close(self.fd)
        else:
            for sock in self._pair:
                sock.close()
