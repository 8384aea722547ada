"""Stress the IO thread <-> workers hand-off on real threads: nothing lost, nothing
duplicated, order kept per producer, and the ring's bound respected."""

import select
import threading

from mummy.core.ring import Mailbox, TaskRing


def wait_readable(fd: int) -> None:
    poller = select.epoll()
    poller.register(fd, select.EPOLLIN)
    poller.poll(1.0)
    poller.close()


def test_mailbox_many_producers_one_consumer() -> None:
    producers, per_producer = 4, 250_000
    mailbox: Mailbox[tuple[int, int]] = Mailbox()
    poller = select.epoll()
    poller.register(mailbox.fd, select.EPOLLIN)

    def produce(p: int) -> None:
        for i in range(per_producer):
            mailbox.post((p, i))

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in threads:
        t.start()
    next_expected = [0] * producers
    received = 0
    wakeups = 0
    while received < producers * per_producer:
        # Like the IO thread: sleep in epoll until the eventfd says there is mail.
        if not poller.poll(5.0):
            raise AssertionError(f"no wake-up with {received} items received")
        wakeups += 1
        for p, i in mailbox.drain():
            assert i == next_expected[p], "lost, duplicated or reordered item"
            next_expected[p] += 1
            received += 1
    for t in threads:
        t.join()
    assert next_expected == [per_producer] * producers
    assert mailbox.drain() == []
    # Batching: far fewer wake-ups than items.
    assert wakeups < received
    poller.close()
    mailbox.close()


def test_ring_round_trip_like_the_server() -> None:
    """IO thread puts tasks (bounded), workers run them and post results back."""
    items, workers, capacity = 1_000_000, 8, 64
    ring: TaskRing[int] = TaskRing(capacity)
    mailbox: Mailbox[int] = Mailbox()
    ran_by_worker = [0] * workers

    def work(w: int) -> None:
        while (task := ring.get()) is not None:
            ran_by_worker[w] += 1
            mailbox.post(task)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    seen = bytearray(items)
    next_item = 0
    done = 0
    while done < items:
        while next_item < items and ring.put(next_item):
            next_item += 1
        assert ring.in_flight <= capacity
        if ring.full or next_item == items:
            wait_readable(mailbox.fd)
        for task in mailbox.drain():
            assert seen[task] == 0, f"task {task} came back twice"
            seen[task] = 1
            ring.done()
            done += 1
    ring.stop_workers(workers)
    for t in threads:
        t.join()
    assert all(seen) and ring.in_flight == 0
    assert sum(ran_by_worker) == items
    mailbox.close()


def test_take_queued_leaves_the_stop_signal() -> None:
    ring: TaskRing[int] = TaskRing(10)
    for i in range(3):
        assert ring.put(i)
    ring.stop_workers(1)
    assert ring.take_queued() == [0, 1, 2]
    assert ring.get() is None


def test_full_ring_refuses() -> None:
    ring: TaskRing[int] = TaskRing(2)
    assert ring.put(1) and ring.put(2)
    assert ring.full and not ring.put(3)
    ring.done()
    assert ring.put(3)
