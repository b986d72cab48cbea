"""Case-insensitive, order-preserving, read-only HTTP header collection.

Theory of operation
-------------------
h11 hands us header names already lowercased, as bytes.  We decode names and
values once, as latin-1 (the only lossless bytes -> str mapping: every octet
maps to exactly one code point, so ``value.encode("latin-1")`` gives back the
bytes on the wire, which the signature layer above needs).  The pairs are kept
in wire order in a tuple; a dict from lowercase name to the list of its values
makes ``get``/``get_all`` O(1).

Rules
-----
* Names are always lowercase str; lookups lowercase their argument.
* ``get`` returns the *first* occurrence; callers that must see repeats
  (e.g. SigV4 canonicalisation, which joins them with ``,``) use ``get_all``.
* Values are not stripped or unfolded beyond what h11 already did (h11 strips
  surrounding whitespace and rejects obsolete line folding).
* Immutable after construction: the same object may be shared by the request
  and by log lines without copying.
"""

from __future__ import annotations

from typing import Iterable, Iterator, overload

__all__ = ["Headers"]


class Headers:
    """An immutable multi-map of ``(lowercase-name, value)`` str pairs.

    Iteration yields the pairs in wire order.  ``len()`` is the number of
    pairs (repeats counted), ``name in headers`` is case-insensitive.
    """

    __slots__ = ("_items", "_index")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        """Build from ``(name, value)`` str pairs; names are lowercased."""
        pairs = tuple((name.lower(), value) for name, value in items)
        self._items = pairs
        index: dict[str, list[str]] = {}
        for name, value in pairs:
            index.setdefault(name, []).append(value)
        self._index = index

    @classmethod
    def from_raw(cls, raw: Iterable[tuple[bytes, bytes]]) -> "Headers":
        """Build from h11's ``(name, value)`` bytes pairs (names already lowercase).

        Bytes are decoded as latin-1, which cannot fail and round-trips.
        """
        self = cls.__new__(cls)
        pairs = tuple(
            (bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
            for name, value in raw
        )
        self._items = pairs
        index: dict[str, list[str]] = {}
        for name, value in pairs:
            index.setdefault(name, []).append(value)
        self._index = index
        return self

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the first value of header ``name`` (any case), or ``default``."""
        values = self._index.get(name.lower())
        if values is None:
            return default
        return values[0]

    def get_all(self, name: str) -> list[str]:
        """Return every value of header ``name`` in wire order ([] if absent)."""
        return list(self._index.get(name.lower(), ()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def has_any(self, names: frozenset[str]) -> bool:
        """Whether any of ``names`` (lowercase) is present: one set lookup per
        distinct header name of this collection."""
        return not names.isdisjoint(self._index)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._items == other._items
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def items(self) -> list[tuple[str, str]]:
        """The ``(name, value)`` pairs as a new list, in wire order."""
        return list(self._items)

    def names(self) -> list[str]:
        """The distinct lowercase names, in order of first appearance."""
        return list(self._index)

    def __repr__(self) -> str:
        return f"Headers({list(self._items)!r})"
