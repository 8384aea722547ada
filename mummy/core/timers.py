"""Deadlines for many connections: a wheel of one-second buckets, for the IO thread.

Arming is O(1); every turn the loop asks for what expired. Entries are filed
lazily: a deadline that moves *later* (a body byte arrived, extending the
body timeout) stays in its old, earlier bucket and is re-filed when that bucket
comes up, so the hot path rarely touches the buckets. A deadline that moves
earlier is re-filed at once. IO thread only; nothing here is shared.
"""

import math
from typing import Protocol


class Timed(Protocol):
    deadline: float
    timer_kind: int  # 0: not armed
    timer_key: int  # the bucket it is filed in; 0: none


class TimerWheel[T: Timed]:
    def __init__(self) -> None:
        self._buckets: dict[int, set[T]] = {}

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def arm(self, item: T, deadline: float, kind: int) -> None:
        item.deadline = deadline
        item.timer_kind = kind
        key = math.ceil(deadline)
        if item.timer_key and item.timer_key <= key:
            return  # filed earlier than the deadline: re-filed when that bucket fires
        self.remove(item)
        self._file(item, key)

    def disarm(self, item: T) -> None:
        item.timer_kind = 0  # stays filed until its bucket fires, then is dropped

    def remove(self, item: T) -> None:
        key = item.timer_key
        if key:
            bucket = self._buckets.get(key)
            if bucket is not None:
                bucket.discard(item)
                if not bucket:
                    del self._buckets[key]
            item.timer_key = 0

    def _file(self, item: T, key: int) -> None:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = set()
        bucket.add(item)
        item.timer_key = key

    def expired(self, now: float) -> list[T]:
        """Items whose deadline has passed, each with its timer_kind still set."""
        due: list[T] = []
        for key in [k for k in self._buckets if k <= now]:
            for item in self._buckets.pop(key):
                item.timer_key = 0
                if not item.timer_kind:
                    continue
                if item.deadline <= now:
                    due.append(item)
                else:
                    self._file(item, math.ceil(item.deadline))
        return due
