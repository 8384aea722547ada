"""The portable poller and waker (the path used where there is no epoll/eventfd)."""

import socket

import pytest

from mummy.core.poller import READ, WRITE, SelectorPoller, Waker, make_poller


def test_selector_poller_reports_read_write_and_parks_empty_masks() -> None:
    poller = SelectorPoller()
    a, b = socket.socketpair()
    try:
        poller.register(a.fileno(), READ | WRITE)
        assert poller.poll(1.0) == [(a.fileno(), WRITE)]
        poller.modify(a.fileno(), 0)  # parked: nothing reported
        b.send(b"x")
        assert poller.poll(0.05) == []
        poller.modify(a.fileno(), READ)
        assert poller.poll(1.0) == [(a.fileno(), READ)]
        poller.unregister(a.fileno())
        assert poller.poll(0.05) == []
    finally:
        poller.close()
        a.close()
        b.close()


@pytest.mark.parametrize("portable", [False, True])
def test_waker_wakes_and_clears(monkeypatch: pytest.MonkeyPatch, portable: bool) -> None:
    if portable:
        monkeypatch.setenv("MUMMY_POLLER", "poll")
    else:
        monkeypatch.delenv("MUMMY_POLLER", raising=False)
    waker = Waker()
    poller = make_poller()
    assert isinstance(poller, SelectorPoller) is portable
    try:
        poller.register(waker.fd, READ)
        assert poller.poll(0.05) == []
        for _ in range(3):
            waker.wake()
        assert poller.poll(1.0) == [(waker.fd, READ)]
        waker.clear()
        assert poller.poll(0.05) == []
    finally:
        poller.close()
        waker.close()
