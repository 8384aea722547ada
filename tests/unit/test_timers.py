"""The timer wheel: lazy re-filing, disarm, remove."""

from dataclasses import dataclass

from mummy.core.timers import TimerWheel


@dataclass(eq=False)
class Item:
    deadline: float = 0.0
    timer_kind: int = 0
    timer_key: int = 0


def test_expiry_and_lazy_extension() -> None:
    wheel: TimerWheel[Item] = TimerWheel()
    a, b = Item(), Item()
    wheel.arm(a, 10.5, 1)
    wheel.arm(b, 12.0, 2)
    assert wheel.expired(10.9) == []
    wheel.arm(a, 20.0, 1)  # extended: stays filed at 11, re-filed when 11 fires
    assert wheel.expired(11.0) == []
    assert a.timer_key == 20
    assert wheel.expired(12.0) == [b]
    assert wheel.expired(20.0) == [a]
    assert len(wheel) == 0


def test_earlier_deadline_is_refiled_at_once() -> None:
    wheel: TimerWheel[Item] = TimerWheel()
    a = Item()
    wheel.arm(a, 30.0, 1)
    wheel.arm(a, 5.0, 2)
    assert wheel.expired(5.0) == [a] and a.timer_kind == 2


def test_disarm_and_remove() -> None:
    wheel: TimerWheel[Item] = TimerWheel()
    a, b = Item(), Item()
    wheel.arm(a, 1.0, 1)
    wheel.arm(b, 1.0, 1)
    wheel.disarm(a)
    wheel.remove(b)
    assert wheel.expired(100.0) == []
    assert len(wheel) == 0
