"""The plumbing ceiling: mummy's shape with nothing in it. One IO thread on epoll accepts,
reads, and for every complete request head hands a task over a SimpleQueue to N worker
threads, which hand a fixed response back through a second SimpleQueue and an eventfd
(one wake-up per batch, as mummy's Mailbox); the IO thread sends it. With 0 threads the
IO thread answers inline. No parsing, no Request, no handler: the distance between this
and mummy on `/` is what mummy's own Python costs, measured rather than remembered.

Run: .venv-ft/bin/python bench/micro/plumbing.py PORT [THREADS]
(or `./bench/run --only plumbing`, which loads it with wrk like mummy's `/`). Loopback
only; answers `GET /gil` with whether the GIL is on, anything else with Hello, World!
"""

import os
import select
import signal
import socket
import sys
import threading
from queue import Empty, SimpleQueue

HELLO = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"


def answer(head: bytes) -> bytes:
    if not head.startswith(b"GET /gil "):
        return HELLO
    body = str(getattr(sys, "_is_gil_enabled", lambda: True)()).encode()
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


class Connection:
    __slots__ = ("inbox", "outbox", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbox = b""
        self.outbox = b""


class Replies:
    """Workers -> the IO thread: a SimpleQueue and an eventfd written once per batch."""

    def __init__(self) -> None:
        self.queue: SimpleQueue[tuple[Connection, bytes]] = SimpleQueue()
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.lock = threading.Lock()
        self.notified = False

    def post(self, conn: Connection, data: bytes) -> None:
        self.queue.put((conn, data))
        with self.lock:
            if not self.notified:
                self.notified = True
                os.eventfd_write(self.fd, 1)

    def drain(self) -> list[tuple[Connection, bytes]]:
        try:
            os.eventfd_read(self.fd)
        except BlockingIOError:
            pass
        with self.lock:
            self.notified = False
        items = []
        while True:
            try:
                items.append(self.queue.get_nowait())
            except Empty:
                return items


def work(tasks: SimpleQueue, replies: Replies) -> None:
    while (task := tasks.get()) is not None:
        conn, head = task
        replies.post(conn, answer(head))


def serve(port: int, threads: int) -> None:
    listener = socket.create_server(("127.0.0.1", port), backlog=1024)
    listener.setblocking(False)
    poller = select.epoll()
    poller.register(listener.fileno(), select.EPOLLIN)
    replies = Replies()
    poller.register(replies.fd, select.EPOLLIN)
    tasks: SimpleQueue = SimpleQueue()
    for _ in range(threads):
        threading.Thread(target=work, args=(tasks, replies), daemon=True).start()
    conns: dict[int, Connection] = {}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())

    def send(conn: Connection, data: bytes) -> None:
        if conn.sock.fileno() < 0:
            return  # closed while its request was with a worker
        was_empty = not conn.outbox
        conn.outbox += data
        try:
            sent = conn.sock.send(conn.outbox)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            close(conn)
            return
        conn.outbox = conn.outbox[sent:]
        if conn.outbox and was_empty:
            poller.modify(conn.sock.fileno(), select.EPOLLIN | select.EPOLLOUT)
        elif not conn.outbox and not was_empty:
            poller.modify(conn.sock.fileno(), select.EPOLLIN)

    def close(conn: Connection) -> None:
        conns.pop(conn.sock.fileno(), None)
        poller.unregister(conn.sock.fileno())
        conn.sock.close()

    def receive(conn: Connection) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            close(conn)
            return
        conn.inbox += data
        *heads, conn.inbox = conn.inbox.split(b"\r\n\r\n")
        if threads:
            for head in heads:
                tasks.put((conn, head))
        elif heads:
            send(conn, b"".join(answer(head) for head in heads))

    while not stop.is_set():
        for fd, events in poller.poll(0.5):
            if fd == listener.fileno():
                while True:
                    try:
                        sock, _ = listener.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conns[sock.fileno()] = Connection(sock)
                    poller.register(sock.fileno(), select.EPOLLIN)
            elif fd == replies.fd:
                for conn, data in replies.drain():
                    send(conn, data)
            elif conn := conns.get(fd):
                if events & select.EPOLLOUT:
                    send(conn, b"")
                readable = events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR)
                if readable and conn.sock.fileno() >= 0:
                    receive(conn)
    for _ in range(threads):
        tasks.put(None)


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0)
