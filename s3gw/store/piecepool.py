"""Warm buffers for GET pieces, reused across requests, returned to the OS when idle.

A GET reads its pieces (runs of whole chunks, up to 4 MiB) into two buffers.
Allocating them per request costs either way:

- a fresh mapping (glibc maps 4 MiB and more on its own) is page-faulted in
  on first touch: about a quarter of the server's CPU under boto3's
  parallel 8 MiB ranged downloads;
- a heap allocation (anything smaller) stays resident after the GET, since
  the heap keeps up to ``tune_malloc``'s trim threshold of free memory: ten
  parallel ranged GETs left ~85 MiB behind them, which then counted against
  the next big PUT's memory bound.

So the pieces go into anonymous mappings of one fixed size, kept in a pool.
While GETs are running, up to two idle buffers per running GET are kept
(warm, no faults; at most ``keep_busy``); when the last GET ends the pool
shrinks to ``keep_idle``, and the rest are unmapped.  Only the trio thread
touches the pool.
"""

from __future__ import annotations

import mmap

__all__ = ["PiecePool"]


class PiecePool:
    """Fixed-size anonymous mappings for GET pieces.

    Args:
        size: bytes per buffer; a request for more gets a plain bytearray.
        keep_busy: most idle buffers kept while leases are open (two per open lease).
        keep_idle: idle buffers kept once no lease is open.
        min_pooled: requests smaller than this get a plain bytearray (a small
            piece's heap block is reused by the heap itself).
    """

    def __init__(self, size: int, keep_busy: int = 16, keep_idle: int = 2,
                 min_pooled: int = 512 * 1024):
        self.size = size
        self.keep_busy = keep_busy
        self.keep_idle = keep_idle
        self.min_pooled = min_pooled
        self._free: list[mmap.mmap] = []
        self.leases = 0
        self.created = 0

    def take(self, count: int, nbytes: int) -> list:
        """Open a lease: ``count`` writable buffers of at least ``nbytes``."""
        self.leases += 1
        if nbytes > self.size or nbytes < self.min_pooled:
            return [bytearray(nbytes) for _ in range(count)]
        out = []
        for _ in range(count):
            if self._free:
                out.append(self._free.pop())
            else:
                self.created += 1
                out.append(mmap.mmap(-1, self.size))
        return out

    def give_back(self, buffers: list) -> None:
        """Close a lease; ``buffers`` are those of its buffers no thread still writes to."""
        self.leases -= 1
        # enough for the GETs still running to swap buffers without a fault; one
        # slow download must not hold a burst's worth of idle buffers
        keep = max(self.keep_idle, min(self.keep_busy, 2 * self.leases))
        for buf in buffers:
            if isinstance(buf, mmap.mmap) and len(self._free) < keep:
                self._free.append(buf)
        # The mappings dropped here are unmapped when their last view goes.
        del self._free[keep:]

    @property
    def idle(self) -> int:
        """Buffers waiting in the pool."""
        return len(self._free)
