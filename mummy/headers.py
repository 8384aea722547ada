"""Ordered, multi-valued mappings: `Headers` (case-insensitive) and `QueryParams`."""

from collections.abc import Iterable, Iterator, Mapping
from typing import Self, Union

HeadersInput = Union["MultiMapping", Mapping[str, str], Iterable[tuple[str, str]], None]


class MultiMapping(Mapping[str, str]):
    """An ordered list of (name, value) pairs read as a Mapping of the first value.

    >>> h = Headers([("Accept", "a"), ("accept", "b")])
    >>> h["ACCEPT"], h.get_all("accept")
    ('a', ['a', 'b'])
    """

    __slots__ = ("_index", "_items")

    _items: list[tuple[str, str]]

    def __init__(self, items: HeadersInput = None) -> None:
        if items is None:
            pairs: list[tuple[str, str]] = []
        elif isinstance(items, MultiMapping):
            pairs = list(items._items)
        elif isinstance(items, Mapping):
            pairs = [(str(k), str(v)) for k, v in items.items()]
        else:
            pairs = []
            for pair in items:
                name, value = pair
                pairs.append((str(name), str(value)))
        self._items = pairs
        self._index: dict[str, list[str]] | None = None

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, str]]) -> Self:
        """Wrap a list of (str, str) pairs as is: no copy, no checks (the server's
        parser made them). The list must not change afterwards."""
        self = cls.__new__(cls)
        self._items = pairs
        self._index = None
        return self

    @staticmethod
    def _key(name: str) -> str:
        return name

    def _lookup(self) -> dict[str, list[str]]:
        # Built lazily, on first lookup; a Headers object belongs to one request
        # and is read by the thread that runs its handler.
        index = self._index
        if index is None:
            index = {}
            key = self._key
            for name, value in self._items:
                index.setdefault(key(name), []).append(value)
            self._index = index
        return index

    def __getitem__(self, name: str) -> str:
        return self._lookup()[self._key(name)][0]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._lookup()

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for name, _ in self._items:
            key = self._key(name)
            if key not in seen:
                seen.add(key)
                yield name

    def __len__(self) -> int:
        return len(self._lookup())

    def get_all(self, name: str) -> list[str]:
        """Every value of `name`, in order; [] if there is none."""
        return list(self._lookup().get(self._key(name), ()))

    def multi_items(self) -> list[tuple[str, str]]:
        """All (name, value) pairs in order, duplicates included."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._items!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MultiMapping):
            return type(self) is type(other) and self._items == other._items
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]


class Headers(MultiMapping):
    """HTTP header fields: ordered, multi-valued, names compared case-insensitively.

    >>> Headers({"Content-Type": "text/plain"})["content-type"]
    'text/plain'
    """

    __slots__ = ()

    @staticmethod
    def _key(name: str) -> str:
        return name.lower()


class QueryParams(MultiMapping):
    """Decoded query parameters: ordered, multi-valued, names case-sensitive.

    >>> QueryParams([("a", "1"), ("a", "2")]).get_all("a")
    ['1', '2']
    """

    __slots__ = ()
