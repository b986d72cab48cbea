"""Chunk and stream hashing for the store: picks the native driver or its pure twin.

Theory of operation
-------------------
* ``chunk_id(data) -> bytes``: BLAKE3-256, a chunk's address (32 bytes).
* ``chunk_checksum(data) -> int``: XXH3-64, checked on every chunk read.
* ``md5(data) -> bytes``: MD5 of a whole small body (an ETag).
* ``chunk_id`` and ``md5`` keep the GIL for inputs up to ``HOLD_MAX`` (16 KiB):
  for such inputs the wait to get it back costs more than the hashing
  (``_hashing_py``).
* ``StreamHasher(algorithms)``: whole-stream md5/sha1/sha256/crc32/crc32c/
  crc64nvme; ``digests()`` returns raw digests, CRCs big-endian (4 bytes; 8
  for crc64nvme).

The work is done by hashlib (OpenSSL), zlib, crc32c, blake3 and xxhash, which
all release the GIL for large buffers (hashlib from 2 KiB, zlib.crc32 above
5 KiB, crc32c from 32 KiB, xxh3 from about 100 KB, blake3 always; measured,
see ``_native/hashing.pyx``): run big pieces in a worker thread and both
cores work.  The compiled ``s3gw._native.hashing`` only trims Python-level
overhead per call; the pure twin ``_hashing_py`` gives the same digests.

Selection as for the chunker: native unless ``S3GW_PUREPYTHON=1``, the
extension is missing, or its ``API_VERSION`` differs (then ``FALLBACK_REASON``
says why and a warning is logged).
"""

from __future__ import annotations


from s3gw._native import select
from s3gw.store import _hashing_py

__all__ = [
    "ALGORITHMS",
    "FALLBACK_REASON",
    "IMPLEMENTATION",
    "StreamHasher",
    "chunk_checksum",
    "chunk_id",
    "md5",
    "self_test",
]

_API_VERSION = 3


_impl, IMPLEMENTATION, FALLBACK_REASON = select("hashing", _hashing_py, _API_VERSION,
                                                "hashing driver")

ALGORITHMS = _hashing_py.ALGORITHMS
chunk_id = _impl.chunk_id
chunk_checksum = _impl.chunk_checksum
md5 = _impl.md5
HOLD_MAX = _impl.HOLD_MAX
StreamHasher = _impl.StreamHasher

# Known answers for b"abc" (BLAKE3 and XXH3-64 from their reference test
# vectors; the rest are the usual published values).
_SELF_TEST = {
    "blake3": "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
    "xxh3": 0x78AF5F94892F3950,
    "md5": "900150983cd24fb0d6963f7d28e17f72",
    "sha1": "a9993e364706816aba3e25717850c26c9cd0d89d",
    "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    "crc32": "352441c2",
    "crc32c": "364b3fb7",
    "crc64nvme": "05e5cabb3fc1faeb",
}


def self_test() -> bool:
    """Check the selected driver against known answers for ``b"abc"``.

    Returns:
        True.

    Raises:
        RuntimeError: a digest differs.
    """
    got = {"blake3": chunk_id(b"abc").hex(), "xxh3": chunk_checksum(b"abc")}
    if md5(b"abc").hex() != _SELF_TEST["md5"]:
        raise RuntimeError(f"{IMPLEMENTATION} hashing self-test failed for md5()")
    hasher = StreamHasher(["md5", "sha1", "sha256", "crc32", "crc32c", "crc64nvme"])
    hasher.update(b"a")
    hasher.update(memoryview(b"bc"))
    got.update((k, v.hex()) for k, v in hasher.digests().items())
    if got != _SELF_TEST:
        bad = sorted(k for k in _SELF_TEST if got.get(k) != _SELF_TEST[k])
        raise RuntimeError(f"{IMPLEMENTATION} hashing self-test failed for {bad}: {got}")
    return True
