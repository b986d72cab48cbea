"""Chunk identity and manifests.

A chunk is named by its BLAKE3-256 digest (identity: collision resistant, so
no client can make its data alias somebody else's).  Integrity is separate:
each reference also carries the chunk's XXH3-64 checksum, checked on every
read, and its length.

A file's content is a *manifest*: the ordered list of its chunk references,
packed as fixed 44-byte records (32-byte id, 8-byte XXH3, 4-byte length, big
endian) so a 1 GiB file at ~1 MiB average chunks costs ~45 KB of metadata and
the chunks overlapping a byte range are found by a prefix-sum walk.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from itertools import accumulate
from typing import Iterable, NamedTuple

__all__ = ["ChunkId", "ChunkRef", "Manifest", "RECORD_SIZE"]

_RECORD = struct.Struct(">32sQI")
RECORD_SIZE = _RECORD.size


class ChunkId(bytes):
    """A 32-byte BLAKE3-256 digest naming an immutable chunk."""

    __slots__ = ()

    def __new__(cls, raw: bytes) -> "ChunkId":
        if len(raw) != 32:
            raise ValueError(f"chunk id must be 32 bytes, got {len(raw)}")
        return super().__new__(cls, raw)

    @property
    def hex_id(self) -> str:
        return self.hex()

    @classmethod
    def from_hex(cls, text: str) -> "ChunkId":
        return cls(bytes.fromhex(text))

    def __repr__(self) -> str:
        return f"ChunkId({self.hex()[:16]}…)"


class ChunkRef(NamedTuple):
    """One chunk of a file: its id, XXH3-64 checksum and length in bytes."""

    id: bytes
    checksum: int
    length: int


class Manifest:
    """The ordered chunk list of one file's content.

    Immutable.  ``pack()`` gives the stored blob; ``plan(start, end)`` the
    chunk slices a byte range touches, without reading any chunk.
    """

    __slots__ = ("chunks", "_ends")

    def __init__(self, chunks: Iterable[ChunkRef]):
        self.chunks: tuple[ChunkRef, ...] = tuple(chunks)
        self._ends: list[int] | None = None

    @classmethod
    def unpack(cls, blob: bytes) -> "Manifest":
        if len(blob) % RECORD_SIZE:
            raise ValueError("manifest blob length is not a multiple of the record size")
        return cls(ChunkRef(*rec) for rec in _RECORD.iter_unpack(blob))

    def pack(self) -> bytes:
        return b"".join(_RECORD.pack(c.id, c.checksum, c.length) for c in self.chunks)

    @property
    def size(self) -> int:
        ends = self.ends
        return ends[-1] if ends else 0

    @property
    def ends(self) -> list[int]:
        """Cumulative end offsets of the chunks."""
        if self._ends is None:
            self._ends = list(accumulate(c.length for c in self.chunks))
        return self._ends

    def plan(self, start: int, end: int) -> list[tuple[ChunkRef, int, int]]:
        """Return ``(chunk, offset_in_chunk, length)`` for the bytes ``[start, end)``.

        Only the chunks the range overlaps are named: a ranged read touches
        nothing else.
        """
        if start >= end:
            return []
        ends = self.ends
        i = bisect_right(ends, start)
        out = []
        pos = start
        while pos < end and i < len(self.chunks):
            chunk = self.chunks[i]
            chunk_start = ends[i] - chunk.length
            off = pos - chunk_start
            n = min(chunk.length - off, end - pos)
            out.append((chunk, off, n))
            pos += n
            i += 1
        return out

    def __len__(self) -> int:
        return len(self.chunks)

    def __add__(self, other: "Manifest") -> "Manifest":
        return Manifest(self.chunks + other.chunks)
