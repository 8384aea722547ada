"""The hand-off between the IO thread and the workers, both ways.

Concurrency contract
--------------------
`TaskRing` (IO thread -> workers). One producer: the IO thread calls `put` and
`done`; many consumers: workers call `get`. At shutdown the closing thread also
calls `take_queued` and `requeue`, which leave `in_flight` alone. The ring is
bounded by *in-flight* tasks (queued or running): `put` refuses once `capacity`
tasks are in flight, and the IO thread then stops reading requests
(backpressure) until `done` is called for a finished task. `in_flight` is
touched only by the IO thread, so it needs no atomics. The queue itself is
`queue.SimpleQueue`: `put`/`get` are single C calls guarded by the queue's own
mutex, atomic on the free-threaded build; a worker with nothing to do sleeps
inside `get` on a C-level lock and is woken by the next `put`, one worker per
item.

With several IO threads (`io_threads`), each has its own `TaskRing` over one
shared queue (`sibling`): `in_flight` stays one thread's count, and the workers
do not know which loop a task came from (its messages go to `task.conn`'s
loop's mailbox).

`Mailbox` (workers -> IO thread). Many producers (any thread) call `post`; one
consumer, the IO thread, calls `drain`. Items go into a `SimpleQueue`; the IO
thread sleeps in epoll and is woken through an eventfd (a socketpair where
there is no eventfd). To batch wake-ups,
`_notified` (set under `_lock`, read without it) records that a write to the
eventfd is already pending: only the first post after a drain pays for the
syscall and the lock. `drain` clears
the flag *before* emptying the queue, so an item posted while the flag was set
is always seen by that drain or the next one.

Why SimpleQueue and not a ring of slots: bench/micro/ring.py measures a pure-Python
slot ring (lock + two conditions) against SimpleQueue on both builds;
SimpleQueue wins by a wide margin on both (figures in the README), so the ring
is this thin, bounded layer over it.
"""

from queue import Empty, SimpleQueue
from threading import Lock

from mummy.core.poller import Waker


class TaskRing[T]:
    """Bounded IO thread -> workers queue; see the module's contract."""

    __slots__ = ("_queue", "capacity", "in_flight")

    def __init__(self, capacity: int, queue: "SimpleQueue[T | None] | None" = None) -> None:
        self._queue: SimpleQueue[T | None] = SimpleQueue() if queue is None else queue
        self.capacity = capacity
        self.in_flight = 0

    def sibling(self, capacity: int) -> "TaskRing[T]":
        """Another IO thread's ring over the same queue: the same workers take from
        both, and each IO thread counts (and bounds) its own tasks in flight."""
        return TaskRing(capacity, self._queue)

    @property
    def full(self) -> bool:
        return self.in_flight >= self.capacity

    @property
    def queued(self) -> int:
        """Any thread: tasks no worker has taken yet (a moment's snapshot)."""
        return self._queue.qsize()

    def put(self, item: T, *, force: bool = False) -> bool:
        """IO thread only. False (item not queued) when the ring is full, unless
        `force`: WebSocket events and TLS handshake steps (at most one per
        connection in flight) and HTTP/2 streams (bounded per connection by
        SETTINGS_MAX_CONCURRENT_STREAMS, not by `capacity`)."""
        if self.in_flight >= self.capacity and not force:
            return False
        self.in_flight += 1
        self._queue.put(item)
        return True

    def done(self) -> None:
        """IO thread only: a task put earlier has finished."""
        self.in_flight -= 1

    def get(self, timeout: float | None = None) -> T | None:
        """Workers: block until a task (or None, the stop signal) arrives; raises
        queue.Empty after `timeout` seconds without one (None: wait forever)."""
        return self._queue.get(timeout=timeout)

    def take_queued(self) -> list[T]:
        """The closing thread: remove the tasks no worker has started yet. Each
        one must still end (`done` on the IO thread), answered or requeued."""
        items: list[T] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except Empty:
                return items
            if item is None:
                self._queue.put(None)
                return items
            items.append(item)

    def requeue(self, item: T) -> None:
        """The closing thread: give back a task that `take_queued` removed (in a
        form the worker can finish at shutdown); it was counted in `in_flight`
        already, so the count is untouched."""
        self._queue.put(item)

    def stop_workers(self, count: int) -> None:
        for _ in range(count):
            self._queue.put(None)


class Mailbox[T]:
    """Many producers -> the IO thread, with one eventfd wake-up per batch."""

    __slots__ = ("_closed", "_lock", "_notified", "_queue", "_waker", "fd")

    def __init__(self) -> None:
        self._queue: SimpleQueue[T] = SimpleQueue()
        self._lock = Lock()
        self._notified = False
        self._closed = False
        self._waker = Waker()
        self.fd = self._waker.fd

    def post(self, item: T) -> None:
        """Any thread. After `close`, items are dropped."""
        self._queue.put(item)
        if self._notified:
            # A wake-up is pending: no lock (every worker posts on every request,
            # and a contended lock spins on 3.13t). If `drain` cleared the flag
            # after this read, it empties the queue after clearing it, so it takes
            # this item: put and get lock the queue, whose locked instructions order
            # them around the flag's store and load. Belt and braces: the IO thread
            # also drains on each timer tick, so a wake-up lost anyway would only
            # delay an item, never strand it.
            return
        with self._lock:
            if self._notified or self._closed:
                return
            self._notified = True
            # Written under the lock so that `close` cannot free the fd (and the
            # kernel hand it to another file) between the check and the write.
            self._waker.wake()

    @property
    def pending(self) -> bool:
        """Items are waiting (the IO thread's timer tick checks it)."""
        return not self._queue.empty()

    def drain(self) -> list[T]:
        """IO thread only: everything posted so far, in post order per producer."""
        self._waker.clear()
        with self._lock:
            self._notified = False
        items: list[T] = []
        get = self._queue.get_nowait
        while True:
            try:
                items.append(get())
            except Empty:
                return items

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._waker.close()
