# cython: language_level=3, boundscheck=False, wraparound=False
"""Native hashing driver: the compiled twin of ``s3gw/store/_hashing_py.py``.

Theory of operation
-------------------
* ``chunk_id(data)``: BLAKE3-256 (``blake3`` package), a chunk's address.
* ``chunk_checksum(data)``: XXH3-64 (``xxhash.xxh3_64_intdigest``), the
  integrity check verified on every chunk read.
* ``md5(data)``: MD5 (``hashlib``) of a whole small body.
* ``chunk_id`` and ``md5`` keep the GIL for inputs of 2 KiB to ``HOLD_MAX``
  (fed in pieces under 2 KiB): giving it up for a few microseconds of
  hashing costs a wait for the event loop to hand it back (the twin's text).
* ``StreamHasher(algorithms)``: whole-stream digests for any subset of md5,
  sha1, sha256 (``hashlib``, i.e. OpenSSL), crc32 (``zlib``) and crc32c
  (``crc32c`` package, hardware CRC32C) and crc64nvme (``awscrt.checksums``,
  SIMD CRC-64/NVME); CRCs come out big-endian (4 bytes, 8 for crc64nvme).

The hashing itself stays in those libraries (STYLE rule 10: MD5/SHA via
hashlib): each is already a tight C/SIMD loop, and the job here is to hand
each buffer to every library with the fewest Python-level calls - bound
``update`` methods are resolved once per StreamHasher, the CRC state lives in
C integers, and buffers are passed through unchanged (no copies, no
slicing).  Any C-contiguous bytes-like object is accepted; pass big pieces
(hundreds of KiB) so the per-call overhead vanishes and the GIL is released.

Which libraries release the GIL (measured on this machine, CPython 3.11,
blake3 1.0.11, xxhash 4.1.0, crc32c 2.9: a pure-Python spinner thread keeps
its full speed while the main thread hashes; 2 threads hashing 4 MiB
buffers get about 2x one thread's throughput):

=========  ==================================  ===============================
library    releases the GIL                    1 thread -> 2 threads (GB/s)
=========  ==================================  ===============================
md5        yes, from 2 KiB (hashlib threshold)  0.76 -> 1.51
sha1       yes, from 2 KiB                      1.93 -> 3.80
sha256     yes, from 2 KiB                      1.81 -> 3.60
crc32      yes, above 5 KiB (not at 4 KiB)      4.25 -> 8.34
crc32c     yes, from 32 KiB (not at 4 KiB)      27   -> 46
blake3     yes, already at 4 KiB                6.4  -> 12.7
xxh3       yes, from about 100 KB (not 64 KiB)  60   -> 93
crc64nvme  no (awscrt 0.38 holds it)            25   -> 25
=========  ==================================  ===============================

crc64nvme holds the GIL, but at 25 GB/s a 1 MiB block costs 40 us.
So a 1 MiB chunk's id and checksum, and every stream digest of a piece of
256 KiB or more, run in parallel with other Python threads.  Small pieces
hold the GIL, but only for microseconds.  A StreamHasher is not thread-safe
(one stream, one thread at a time).
"""

import hashlib
import zlib

import blake3 as _blake3_mod
import crc32c as _crc32c_mod
import xxhash as _xxhash_mod
from awscrt import checksums as _awscrt_checksums

API_VERSION = 3

cdef enum:
    _HOLD_MAX = 16 * 1024
    _PIECE = 2047        # under hashlib's and blake3's 2 KiB GIL-release threshold

#: ``chunk_id`` and ``md5`` keep the GIL for inputs up to this many bytes.
HOLD_MAX = _HOLD_MAX

#: The stream algorithms StreamHasher accepts.
ALGORITHMS = frozenset({"md5", "sha1", "sha256", "crc32", "crc32c", "crc64nvme"})

cdef dict _HASHLIB = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256}
cdef object _blake3 = _blake3_mod.blake3
cdef object _md5 = hashlib.md5
cdef object _xxh3_64_intdigest = _xxhash_mod.xxh3_64_intdigest
cdef object _zlib_crc32 = zlib.crc32
cdef object _crc32c = _crc32c_mod.crc32c
cdef object _crc64nvme = _awscrt_checksums.crc64nvme


cdef object _held(object hasher, object data):
    """``hasher`` fed ``data`` in pieces too small to give up the GIL, when ``data``
    is 2 KiB to ``HOLD_MAX`` bytes long; otherwise in one call."""
    cdef object view = memoryview(data)
    cdef Py_ssize_t n = view.nbytes, i
    if n <= _PIECE or n > _HOLD_MAX:
        hasher.update(view)
        return hasher
    view = view.cast("B")
    update = hasher.update
    for i in range(0, n, _PIECE):
        update(view[i:i + _PIECE])
    return hasher


def chunk_id(data):
    """Return the 32-byte BLAKE3-256 digest of ``data`` (a bytes-like object)."""
    return _held(_blake3(), data).digest()


def md5(data):
    """Return the 16-byte MD5 digest of ``data`` (a bytes-like object)."""
    return _held(_md5(), data).digest()


def chunk_checksum(data):
    """Return the XXH3-64 of ``data`` as an int in ``[0, 2**64)``."""
    return _xxh3_64_intdigest(data)


cdef tuple _algorithms(algorithms):
    if isinstance(algorithms, str):
        raise TypeError("algorithms must be an iterable of names, not a str")
    names = []
    for name in algorithms:
        if name not in ALGORITHMS:
            raise ValueError(f"unknown hash algorithm {name!r}; known: {sorted(ALGORITHMS)}")
        if name not in names:
            names.append(name)
    return tuple(names)


cdef class StreamHasher:
    """Digests of a whole stream, fed in pieces.

    Args:
        algorithms: names from ``ALGORITHMS``; duplicates are ignored; may be
            empty.

    Raises:
        ValueError: an unknown algorithm name.
    """

    cdef readonly tuple algorithms
    cdef dict _hashers
    cdef tuple _updates
    cdef bint _want_crc32, _want_crc32c, _want_crc64
    cdef object _crc32, _crc32c, _crc64

    def __init__(self, algorithms):
        self.algorithms = _algorithms(algorithms)
        self._hashers = {n: _HASHLIB[n]() for n in self.algorithms if n in _HASHLIB}
        self._updates = tuple([h.update for h in self._hashers.values()])
        self._want_crc32 = "crc32" in self.algorithms
        self._want_crc32c = "crc32c" in self.algorithms
        self._want_crc64 = "crc64nvme" in self.algorithms
        self._crc32 = 0
        self._crc32c = 0
        self._crc64 = 0

    def update(self, data):
        """Feed the next piece of the stream (any C-contiguous bytes-like object)."""
        cdef object upd
        for upd in self._updates:
            upd(data)
        if self._want_crc32:
            self._crc32 = _zlib_crc32(data, self._crc32)
        if self._want_crc32c:
            self._crc32c = _crc32c(data, self._crc32c)
        if self._want_crc64:
            self._crc64 = _crc64nvme(data, self._crc64)

    def digests(self):
        """Return ``{algorithm: raw digest}`` of everything fed so far.

        The hasher stays usable: more ``update`` calls continue the stream.
        """
        out = {}
        for name in self.algorithms:
            if name == "crc32":
                out[name] = (<object>self._crc32).to_bytes(4, "big")
            elif name == "crc32c":
                out[name] = (<object>self._crc32c).to_bytes(4, "big")
            elif name == "crc64nvme":
                out[name] = (<object>self._crc64).to_bytes(8, "big")
            else:
                out[name] = self._hashers[name].digest()
        return out
