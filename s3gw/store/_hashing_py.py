"""Pure-Python hashing driver: the reference twin of ``_native/hashing.pyx``.

Theory of operation
-------------------
* ``chunk_id(data)``: BLAKE3-256 of a chunk, its address (collision-resistant,
  so no client can craft data that aliases someone else's chunk).
* ``chunk_checksum(data)``: XXH3-64 of a chunk, the cheap integrity check
  verified on every chunk read.
* ``md5(data)``: the MD5 digest of a whole small body (an object's ETag).
* ``chunk_id`` and ``md5`` keep the GIL for inputs of 2 KiB to ``HOLD_MAX``:
  hashlib and blake3 give it up from 2 KiB, and a thread that gave it up
  waits to get it back until the holder (the event loop) reaches a system
  call.  For a small input that wait is far longer than the hashing: the
  committer hashing 4 KiB objects spent 90 us per object waiting, and 4 KiB
  PUT/s rose about 10% once it stopped giving the GIL up.  Such inputs are fed in
  pieces under 2 KiB instead; larger ones are hashed in one call, GIL
  released, in parallel with the event loop.
* ``StreamHasher(algorithms)``: whole-stream digests for any subset of md5,
  sha1, sha256 (``hashlib``), crc32 (``zlib``), crc32c (``crc32c``
  package) and crc64nvme (``awscrt.checksums``, the AWS common runtime's
  SIMD CRC-64/NVME, ~25 GB/s); the CRCs are returned big-endian (4 bytes,
  8 for crc64nvme), as S3's ``x-amz-checksum-*`` headers carry them (base64
  of those bytes).

All the work is done by the libraries, which take any C-contiguous
bytes-like object; this module only routes buffers to them with as few
Python-level calls as it can.  See ``_native/hashing.pyx`` for which
libraries release the GIL (all of them, above a size threshold).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable

import blake3 as _blake3
import crc32c as _crc32c
import xxhash as _xxhash
from awscrt import checksums as _awscrt_checksums

__all__ = ["ALGORITHMS", "API_VERSION", "HOLD_MAX", "StreamHasher", "chunk_checksum", "chunk_id",
           "md5"]

API_VERSION = 3

#: ``chunk_id`` and ``md5`` keep the GIL for inputs up to this many bytes.
HOLD_MAX = 16 * 1024
_PIECE = 2047            # under hashlib's and blake3's 2 KiB GIL-release threshold

#: The stream algorithms StreamHasher accepts.
ALGORITHMS = frozenset({"md5", "sha1", "sha256", "crc32", "crc32c", "crc64nvme"})

_HASHLIB = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256}
_crc64nvme = _awscrt_checksums.crc64nvme


def _held(hasher, data):
    """``hasher`` fed ``data`` in pieces too small to give up the GIL, when ``data``
    is 2 KiB to ``HOLD_MAX`` bytes long; otherwise in one call."""
    view = memoryview(data)
    n = view.nbytes
    if n <= _PIECE or n > HOLD_MAX:
        hasher.update(view)
        return hasher
    view = view.cast("B")
    for i in range(0, n, _PIECE):
        hasher.update(view[i:i + _PIECE])
    return hasher


def chunk_id(data) -> bytes:
    """Return the 32-byte BLAKE3-256 digest of ``data`` (a bytes-like object)."""
    return _held(_blake3.blake3(), data).digest()


def md5(data) -> bytes:
    """Return the 16-byte MD5 digest of ``data`` (a bytes-like object)."""
    return _held(hashlib.md5(), data).digest()


def chunk_checksum(data) -> int:
    """Return the XXH3-64 of ``data`` as an int in ``[0, 2**64)``."""
    return _xxhash.xxh3_64_intdigest(data)


def _algorithms(algorithms: Iterable[str]) -> tuple[str, ...]:
    if isinstance(algorithms, str):
        raise TypeError("algorithms must be an iterable of names, not a str")
    names = []
    for name in algorithms:
        if name not in ALGORITHMS:
            raise ValueError(f"unknown hash algorithm {name!r}; known: {sorted(ALGORITHMS)}")
        if name not in names:
            names.append(name)
    return tuple(names)


class StreamHasher:
    """Digests of a whole stream, fed in pieces.

    Args:
        algorithms: names from ``ALGORITHMS``; duplicates are ignored; may be
            empty.

    Raises:
        ValueError: an unknown algorithm name.
    """

    __slots__ = ("algorithms", "_hashers", "_crc32", "_crc32c", "_crc64", "_want_crc32",
                 "_want_crc32c", "_want_crc64")

    def __init__(self, algorithms: Iterable[str]):
        self.algorithms = _algorithms(algorithms)
        self._hashers = {n: _HASHLIB[n]() for n in self.algorithms if n in _HASHLIB}
        self._want_crc32 = "crc32" in self.algorithms
        self._want_crc32c = "crc32c" in self.algorithms
        self._want_crc64 = "crc64nvme" in self.algorithms
        self._crc32 = 0
        self._crc32c = 0
        self._crc64 = 0

    def update(self, data) -> None:
        """Feed the next piece of the stream (any C-contiguous bytes-like object)."""
        for h in self._hashers.values():
            h.update(data)
        if self._want_crc32:
            self._crc32 = zlib.crc32(data, self._crc32)
        if self._want_crc32c:
            self._crc32c = _crc32c.crc32c(data, self._crc32c)
        if self._want_crc64:
            self._crc64 = _crc64nvme(data, self._crc64)

    def digests(self) -> dict[str, bytes]:
        """Return ``{algorithm: raw digest}`` of everything fed so far.

        The hasher stays usable: more ``update`` calls continue the stream.
        """
        out = {}
        for name in self.algorithms:
            if name == "crc32":
                out[name] = self._crc32.to_bytes(4, "big")
            elif name == "crc32c":
                out[name] = self._crc32c.to_bytes(4, "big")
            elif name == "crc64nvme":
                out[name] = self._crc64.to_bytes(8, "big")
            else:
                out[name] = self._hashers[name].digest()
        return out
