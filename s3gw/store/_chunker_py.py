"""Pure-Python content-defined chunker: the reference twin of ``_native/chunker.pyx``.

Theory of operation
-------------------
This is a FastCDC-style chunker with *normalized chunking*.  Every byte ``b``
of a chunk past its first ``min_size`` bytes is rolled into a 64-bit gear hash::

    h = (2 * h + GEAR[b]) mod 2**64

``GEAR`` is a 256-entry table of pseudo-random 64-bit words produced by a
splitmix64 generator from the fixed seed ``GEAR_SEED`` (see ``gear_table``);
both implementations compute it the same way, so neither ships a table.
Because each step shifts left by one, bit ``k`` of ``h`` depends on the last
``k + 1`` bytes only: the top bits see a sliding window of up to 64 bytes,
which is why the cut test looks at the *top* bits of ``h``.

A chunk ends just after a byte where ``h & mask == 0``.  With ``bits =
log2(avg_size)`` two masks are used (normalization level 2):

* ``MASK_S`` (``bits + 2`` top bits, cut probability ``1 / (4 * avg)``) for
  chunk offsets ``min_size <= p < avg_size``: a cut before the average is
  unlikely;
* ``MASK_L`` (``bits - 2`` top bits, cut probability ``4 / avg``) for offsets
  ``avg_size <= p < max_size``: past the average a cut comes quickly.

This narrows the chunk size distribution around ``avg_size`` compared with a
single mask.  The first ``min_size`` bytes of a chunk are skipped without
hashing (cut-point skipping: no cut can fall there, and the hash starts from
zero at offset ``min_size``), and a cut is forced when a chunk reaches
``max_size`` bytes.  So every chunk but the stream's last has a length in
``(min_size, max_size]``.

Why state carries
-----------------
A cut depends only on the bytes of the current chunk, so ``Scanner`` keeps
``(pos, h)`` - the bytes consumed in the current chunk and the gear hash -
between ``scan`` calls.  Feeding a stream in any split into buffers therefore
yields exactly the same cut points: chunk boundaries are a storage format (a
golden test pins them; changing them needs a ``CHUNKER_VERSION`` bump).

Rules
-----
* ``avg_size`` is a power of two in ``[64, 2**30]``; ``0 <= min_size <=
  avg_size <= max_size <= 2**31``.
* Buffers are C-contiguous bytes-like objects (bytes, bytearray, memoryview,
  ...); they are read as unsigned bytes whatever their item format.
* A scanner belongs to one stream at a time and is not thread-safe.

This twin is a byte loop in Python (a few MB/s); the compiled module is the
fast path.  Results are identical: tests compare them over random data and
random buffer splits.
"""

from __future__ import annotations

__all__ = ["API_VERSION", "GEAR_SEED", "Scanner", "gear_table", "masks"]

API_VERSION = 1

#: Seed of the splitmix64 stream that fills the gear table ("S3GW-CDC").
GEAR_SEED = 0x5333_4757_2D43_4443

_M64 = (1 << 64) - 1


def gear_table(seed: int = GEAR_SEED) -> tuple[int, ...]:
    """Return the 256 gear words: successive outputs of splitmix64 from ``seed``.

    splitmix64 (Steele, Lea, Flood 2014): add the golden-ratio increment
    0x9E3779B97F4A7C15 to the state, then mix it with two xor-shift-multiply
    rounds and a final xor-shift.  All arithmetic is modulo 2**64.
    """
    state = seed & _M64
    out = []
    for _ in range(256):
        state = (state + 0x9E3779B97F4A7C15) & _M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        out.append(z ^ (z >> 31))
    return tuple(out)


_GEAR = gear_table()


def _top_bits(n: int) -> int:
    return ((1 << n) - 1) << (64 - n)


def masks(avg_size: int) -> tuple[int, int]:
    """Return ``(MASK_S, MASK_L)`` for ``avg_size`` (a power of two)."""
    bits = avg_size.bit_length() - 1
    return _top_bits(bits + 2), _top_bits(bits - 2)


def _check_params(min_size: int, avg_size: int, max_size: int) -> None:
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


def _byte_view(buf) -> memoryview:
    view = buf if isinstance(buf, memoryview) else memoryview(buf)
    if not view.c_contiguous:
        raise BufferError("buffer must be C-contiguous")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


class Scanner:
    """Push-style content-defined chunk scanner (pure-Python reference).

    Args:
        min_size: no cut within the first ``min_size`` bytes of a chunk.
        avg_size: target average chunk size, a power of two.
        max_size: a cut is forced when a chunk reaches this length.

    Raises:
        TypeError, ValueError: invalid parameters (see the module rules).
    """

    __slots__ = ("min_size", "avg_size", "max_size", "_mask_s", "_mask_l", "_pos", "_h")

    def __init__(self, min_size: int, avg_size: int, max_size: int):
        _check_params(min_size, avg_size, max_size)
        self.min_size = min_size
        self.avg_size = avg_size
        self.max_size = max_size
        self._mask_s, self._mask_l = masks(avg_size)
        self._pos = 0
        self._h = 0

    def __repr__(self) -> str:
        return (f"Scanner(min_size={self.min_size}, avg_size={self.avg_size}, "
                f"max_size={self.max_size})")

    def reset(self) -> None:
        """Forget the current chunk: the next byte scanned starts a new object."""
        self._pos = 0
        self._h = 0

    def scan(self, buf, start: int = 0) -> int:
        """Continue the current chunk over ``buf[start:]``.

        Returns:
            The index in ``buf`` just past the next cut (the chunk ends at
            ``buf[ret - 1]``; the scanner then starts a new chunk), or -1 when
            ``buf[start:]`` holds no cut; the state then carries into the next
            call.  The final partial chunk at end of stream is the caller's.

        Raises:
            ValueError: ``start`` outside ``[0, len(buf)]``.
            BufferError: ``buf`` is not C-contiguous.
        """
        view = _byte_view(buf)
        n = view.nbytes
        if start < 0 or start > n:
            raise ValueError(f"start {start} outside [0, {n}]")
        pos = self._pos
        i = start
        # Cut-point skipping: the first min_size bytes of a chunk are not hashed.
        if pos < self.min_size:
            step = min(self.min_size - pos, n - i)
            pos += step
            i += step
        max_size = self.max_size
        if pos < max_size and i < n:
            h = self._h
            # The strict mask up to avg_size, then the loose one up to max_size.
            for mask, limit in ((self._mask_s, self.avg_size), (self._mask_l, max_size)):
                if pos < limit and i < n:
                    end = min(n, i + (limit - pos))
                    cut, h = _roll(view, i, end, h, mask)
                    if cut >= 0:
                        self._pos = 0
                        self._h = 0
                        return cut
                    pos += end - i
                    i = end
            self._h = h
        if pos == max_size:
            self._pos = 0
            self._h = 0
            return i
        self._pos = pos
        return -1


def _roll(view: memoryview, i: int, end: int, h: int, mask: int) -> tuple[int, int]:
    """Roll ``view[i:end]`` into ``h``; return (index past the cut or -1, h).

    Iterates over a bytes copy (a memcpy, cheap next to this loop) because
    a bytes iterator knows how many bytes it has left: the cut position
    comes from that, with no counter in the loop.
    """
    gear = _GEAR
    m64 = _M64
    it = iter(view[i:end].tobytes())
    for b in it:
        h = (h + h + gear[b]) & m64
        if not h & mask:
            return end - it.__length_hint__(), h
    return -1, h
