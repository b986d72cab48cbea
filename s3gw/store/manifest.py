"""Chunk identity and manifests.

A chunk is named by its BLAKE3-256 digest (identity: collision resistant, so
no client can make its data alias somebody else's).  Integrity is separate:
each reference also carries the chunk's XXH3-64 checksum, checked on every
read, and its length.

A file's content is a *manifest*: the ordered list of its chunk references,
packed as fixed 44-byte records (32-byte id, 8-byte XXH3, 4-byte length, big
endian) so a 1 GiB file at ~1 MiB average chunks costs ~45 KB of metadata and
the chunks overlapping a byte range are found by a prefix-sum walk.

Inline chunks
-------------
A reference may carry its chunk's bytes (``ChunkRef.data``): a small object
(up to ``INLINE_MAX``) is kept in its manifest, in the metadata row, instead
of in the chunk store.  Its commit's one WAL sync then makes data and commit
durable together: a small PUT waits for one device flush, not two (the
pack's ``fdatasync``, then the commit's), and costs no pack append and no
pack-index row.  The chunk store serves such a reference from the reference
itself, after the same XXH3 and length checks as a stored chunk.

A manifest with an inline chunk is packed in a second layout, told apart by
its length: the plain layout is a multiple of 44 bytes, the inline layout is
one more than a multiple of 44::

    0x01, then per chunk: kind (0 stored, 1 inline), its 44-byte record,
    its bytes when inline; then zero bytes up to the length 44*k + 1

Manifests without inline chunks keep the plain layout, so every manifest
written before inline chunks existed reads as it did.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from itertools import accumulate
from typing import Iterable, NamedTuple

__all__ = ["ChunkId", "ChunkRef", "Manifest", "RECORD_SIZE", "INLINE_MAX"]

_RECORD = struct.Struct(">32sQI")
RECORD_SIZE = _RECORD.size
INLINE_MAX = 8 * 1024          # a whole object up to this size is kept in its manifest
_INLINE_TAG = 1                # first byte of the inline layout
_STORED, _INLINE = 0, 1        # a chunk's kind in the inline layout


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
    """One chunk of a file: its id, XXH3-64 checksum and length in bytes; ``data``:
    the chunk's bytes when the manifest carries them (an inline chunk), else None."""

    id: bytes
    checksum: int
    length: int
    data: bytes | None = None


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
        if len(blob) % RECORD_SIZE == 0:
            return cls(ChunkRef(*rec) for rec in _RECORD.iter_unpack(blob))
        return cls(_unpack_inline(bytes(blob)))

    def pack(self) -> bytes:
        chunks = self.chunks
        if not any(c.data is not None for c in chunks):
            return b"".join(_RECORD.pack(c.id, c.checksum, c.length) for c in chunks)
        out = [bytes((_INLINE_TAG,))]
        for c in chunks:
            if c.data is None:
                out.append(bytes((_STORED,)))
                out.append(_RECORD.pack(c.id, c.checksum, c.length))
            else:
                if len(c.data) != c.length:
                    raise ValueError("an inline chunk's data differs from its length")
                out.append(bytes((_INLINE,)))
                out.append(_RECORD.pack(c.id, c.checksum, c.length))
                out.append(bytes(c.data))
        size = sum(map(len, out))
        out.append(bytes((1 - size) % RECORD_SIZE))   # pad to a length of 44*k + 1
        return b"".join(out)

    @staticmethod
    def concat_packed(blobs: Iterable[bytes]) -> bytes:
        """The packed manifest of packed manifests one after the other (a multipart
        object's parts): the plain layouts are joined as they are."""
        blobs = list(blobs)
        if all(len(b) % RECORD_SIZE == 0 for b in blobs):
            return b"".join(blobs)
        return Manifest(ref for b in blobs for ref in Manifest.unpack(b).chunks).pack()

    @property
    def inline_bytes(self) -> int:
        """Bytes of chunk data carried in the manifest itself."""
        return sum(c.length for c in self.chunks if c.data is not None)

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


def _unpack_inline(blob: bytes) -> list[ChunkRef]:
    if len(blob) % RECORD_SIZE != 1 or blob[0] != _INLINE_TAG:
        raise ValueError("manifest blob is in neither layout")
    refs = []
    pos, end = 1, len(blob)
    while pos + 1 + RECORD_SIZE <= end:
        kind = blob[pos]
        if kind not in (_STORED, _INLINE):
            break                     # the padding (zero bytes) or garbage: checked below
        cid, checksum, length = _RECORD.unpack_from(blob, pos + 1)
        pos += 1 + RECORD_SIZE
        if kind == _STORED:
            refs.append(ChunkRef(cid, checksum, length))
            continue
        if pos + length > end:
            raise ValueError("manifest blob ends inside an inline chunk")
        refs.append(ChunkRef(cid, checksum, length, blob[pos:pos + length]))
        pos += length
    if end - pos >= RECORD_SIZE or any(blob[pos:]):
        raise ValueError("manifest blob has trailing bytes")
    return refs
