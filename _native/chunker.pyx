# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Native content-defined chunker: the fast twin of ``s3gw/store/_chunker_py.py``.

Theory of operation
-------------------
FastCDC-style chunking with normalized chunking.  Past the first ``min_size``
bytes of a chunk every byte ``b`` is rolled into a 64-bit gear hash::

    h = (h << 1) + GEAR[b]        (uint64, wrapping)

``GEAR`` holds 256 words produced by a splitmix64 generator seeded with
``GEAR_SEED``; it is computed at import, exactly as the pure twin computes
it, so no table is shipped.  Bit ``k`` of ``h`` depends on the last ``k + 1``
bytes, so the cut test looks at the *top* bits (a window of up to 64 bytes).
A chunk ends just after a byte where ``h & mask == 0``; with ``bits =
log2(avg_size)``:

* ``MASK_S`` = top ``bits + 2`` bits for chunk offsets ``[min_size,
  avg_size)``: cut probability ``1 / (4 * avg)`` per byte, so short chunks
  are rare;
* ``MASK_L`` = top ``bits - 2`` bits for offsets ``[avg_size, max_size)``:
  cut probability ``4 / avg`` per byte, so long chunks are rare too;
* the first ``min_size`` bytes of a chunk are skipped unhashed (cut-point
  skipping; the hash restarts from zero at every chunk) and a cut is forced
  at ``max_size``.

Why state carries
-----------------
A cut depends only on the bytes of the current chunk, so the scanner keeps
``(pos, h)`` between ``scan`` calls; feeding a stream split into buffers in
any way gives the same cut points.  Chunk boundaries are storage format: the
golden test pins them for both implementations.

The GIL
-------
``scan`` takes a PyBUF_SIMPLE buffer (bytes, bytearray, memoryview, any
C-contiguous exporter; items are read as unsigned bytes), so the object
cannot be resized while it is scanned, copies the state to locals, and runs
the byte loop ``nogil`` when more than ``NOGIL_MIN`` bytes may be hashed:
below that, dropping and re-taking the GIL costs more than it frees (and a
busy Python thread could delay the re-take by a switch interval).  A
``Scanner`` is not thread-safe: one stream, one scanner, one thread at a
time.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport uint64_t

API_VERSION = 1

#: Seed of the splitmix64 stream that fills the gear table ("S3GW-CDC").
GEAR_SEED = 0x5333_4757_2D43_4443

#: Scans that may hash fewer bytes than this keep the GIL.
NOGIL_MIN = 32 * 1024

cdef uint64_t GEAR[256]


cdef void _fill_gear(uint64_t seed) noexcept nogil:
    cdef uint64_t state = seed
    cdef uint64_t z
    cdef int k
    for k in range(256):
        state = state + <uint64_t>0x9E3779B97F4A7C15ULL
        z = state
        z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
        z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
        GEAR[k] = z ^ (z >> 31)


_fill_gear(GEAR_SEED)


def gear_table():
    """Return the 256 gear words as a tuple of ints (for tests)."""
    return tuple([GEAR[k] for k in range(256)])


cdef inline uint64_t _top_bits(int n) noexcept nogil:
    if n <= 0:
        return 0
    return ((<uint64_t>1 << n) - 1) << (64 - n)


def masks(avg_size):
    """Return ``(MASK_S, MASK_L)`` for ``avg_size`` (a power of two)."""
    cdef int bits = (<object>avg_size).bit_length() - 1
    return _top_bits(bits + 2), _top_bits(bits - 2)


cdef inline Py_ssize_t _roll(const unsigned char *p, Py_ssize_t i, Py_ssize_t end,
                             uint64_t *hp, uint64_t mask) noexcept nogil:
    """Roll p[i:end] into *hp; return the index just past the cut, or -1.

    Two bytes per step, with the same hashes and cuts as one at a time: the
    hash after two bytes, (h << 2) + (G[a] << 1) + G[b], hangs on the previous
    hash by one shift and one add (the gear terms do not depend on it), and the
    hash after the first byte, needed for its own cut test, is computed beside
    that chain instead of in it.  One byte at a time the chain is a shift and
    an add per byte."""
    cdef uint64_t h = hp[0]
    cdef uint64_t a, b, h1
    while i + 1 < end:
        a = GEAR[p[i]]
        b = GEAR[p[i + 1]]
        h1 = (h << 1) + a
        h = (h << 2) + ((a << 1) + b)
        if (h1 & mask) == 0:
            hp[0] = h1
            return i + 1
        i += 2
        if (h & mask) == 0:
            hp[0] = h
            return i
    if i < end:
        h = (h << 1) + GEAR[p[i]]
        i += 1
        if (h & mask) == 0:
            hp[0] = h
            return i
    hp[0] = h
    return -1


cdef inline Py_ssize_t _scan(const unsigned char *p, Py_ssize_t i, Py_ssize_t n,
                             Py_ssize_t *posp, uint64_t *hp,
                             Py_ssize_t min_size, Py_ssize_t avg_size, Py_ssize_t max_size,
                             uint64_t mask_s, uint64_t mask_l) noexcept nogil:
    cdef Py_ssize_t pos = posp[0]
    cdef Py_ssize_t end, cut
    if pos < min_size:                      # cut-point skipping
        end = min_size - pos
        if end > n - i:
            end = n - i
        pos += end
        i += end
    if pos < avg_size and i < n:            # strict mask before the average
        end = n if n - i < avg_size - pos else i + (avg_size - pos)
        cut = _roll(p, i, end, hp, mask_s)
        if cut >= 0:
            posp[0] = 0
            hp[0] = 0
            return cut
        pos += end - i
        i = end
    if pos < max_size and i < n:            # loose mask after it
        end = n if n - i < max_size - pos else i + (max_size - pos)
        cut = _roll(p, i, end, hp, mask_l)
        if cut >= 0:
            posp[0] = 0
            hp[0] = 0
            return cut
        pos += end - i
        i = end
    if pos == max_size:                     # forced cut
        posp[0] = 0
        hp[0] = 0
        return i
    posp[0] = pos
    return -1


cdef class Scanner:
    """Push-style content-defined chunk scanner.

    Args:
        min_size: no cut within the first ``min_size`` bytes of a chunk.
        avg_size: target average chunk size, a power of two in [64, 2**30].
        max_size: a cut is forced when a chunk reaches this length
            (``0 <= min_size <= avg_size <= max_size <= 2**31``).

    Raises:
        TypeError, ValueError: invalid parameters.
    """

    cdef readonly Py_ssize_t min_size, avg_size, max_size
    cdef uint64_t _mask_s, _mask_l
    cdef Py_ssize_t _pos
    cdef uint64_t _h

    def __init__(self, min_size, avg_size, max_size):
        for name, value in (("min_size", min_size), ("avg_size", avg_size),
                            ("max_size", max_size)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if avg_size < 64 or avg_size > 1 << 30 or avg_size & (avg_size - 1):
            raise ValueError(f"avg_size must be a power of two in [64, 2**30], got {avg_size}")
        if not 0 <= min_size <= avg_size <= max_size <= 1 << 31:
            raise ValueError(
                "need 0 <= min_size <= avg_size <= max_size <= 2**31, got "
                f"{min_size}, {avg_size}, {max_size}")
        self.min_size = min_size
        self.avg_size = avg_size
        self.max_size = max_size
        self._mask_s, self._mask_l = masks(avg_size)
        self._pos = 0
        self._h = 0

    def __repr__(self):
        return (f"Scanner(min_size={self.min_size}, avg_size={self.avg_size}, "
                f"max_size={self.max_size})")

    def reset(self):
        """Forget the current chunk: the next byte scanned starts a new object."""
        self._pos = 0
        self._h = 0

    def scan(self, buf, Py_ssize_t start=0):
        """Continue the current chunk over ``buf[start:]``.

        Returns:
            The index in ``buf`` just past the next cut (the chunk ends at
            ``buf[ret - 1]``; a new chunk starts), or -1 when ``buf[start:]``
            holds no cut (the state carries into the next call).

        Raises:
            ValueError: ``start`` outside ``[0, len(buf)]``.
            BufferError: ``buf`` is not C-contiguous.
        """
        cdef Py_buffer view
        cdef Py_ssize_t n, ret, work
        cdef Py_ssize_t pos = self._pos
        cdef uint64_t h = self._h
        cdef const unsigned char *p
        PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
        try:
            n = view.len
            if start < 0 or start > n:
                raise ValueError(f"start {start} outside [0, {n}]")
            p = <const unsigned char *>view.buf
            work = n - start
            if work > self.max_size - pos:
                work = self.max_size - pos
            work -= self.min_size - pos if pos < self.min_size else 0
            if work >= NOGIL_MIN:
                with nogil:
                    ret = _scan(p, start, n, &pos, &h, self.min_size, self.avg_size,
                                self.max_size, self._mask_s, self._mask_l)
            else:
                ret = _scan(p, start, n, &pos, &h, self.min_size, self.avg_size,
                            self.max_size, self._mask_s, self._mask_l)
        finally:
            PyBuffer_Release(&view)
        self._pos = pos
        self._h = h
        return ret
