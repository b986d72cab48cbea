"""Content-defined chunking for the store: picks the native scanner or its pure twin.

Theory of operation
-------------------
``Scanner`` is a FastCDC-style gear-hash chunker (normalized chunking, cut-point
skipping, forced cut at ``max_size``); the algorithm is described in
``s3gw/store/_chunker_py.py`` (the reference) and ``_native/chunker.pyx`` (the
fast path, a ``nogil`` byte loop).  Both give identical cut points for every
input and every split of it into buffers.

Selection: the compiled ``s3gw._native.chunker`` is used unless the
environment variable ``S3GW_PUREPYTHON=1`` is set, the extension is not built,
or its ``API_VERSION`` differs from the one this module speaks; then the pure
twin is used (same output, about 170x slower), the reason is kept in
``FALLBACK_REASON`` and logged.  ``IMPLEMENTATION`` says which one runs.

Rules
-----
* Chunk boundaries are storage format.  ``CHUNKER_VERSION`` names the cut-point
  function (gear seed, masks, skipping, forced cut); any change to cut points
  must bump it, and the golden tests (``tests/store/test_chunker.py``) and
  ``self_test`` pin them.
* ``DEFAULT_PARAMS`` = 256 KiB / 1 MiB / 4 MiB.  Measured on this machine:
  the native scanner runs at about 3 GB/s (1.4 GB/s with 256-byte chunks); the mean
  chunk is 1.14 MiB (analytically 1169 KiB: 17 % of chunks cut before 1 MiB,
  about 5e-6 forced at 4 MiB; 128 MiB of random data measured 1163 KiB).
  1 MiB chunks keep the per-chunk costs (a file, an fsync, a manifest
  entry, two hash calls) small against the data, while 256 KiB receives
  and 4 MiB pieces bound the memory per request to a few MiB.
  Smaller averages give finer deduplication at more files per GiB.

Usage::

    scanner = Scanner(*DEFAULT_PARAMS)
    for buf in pieces:               # any split of the stream
        start = 0
        while (cut := scanner.scan(buf, start)) >= 0:
            ...                      # chunk ends at buf[cut - 1]
            start = cut
    # what is left after the last cut is the final chunk
"""

from __future__ import annotations

import random
from typing import NamedTuple

from s3gw._native import select
from s3gw.store import _chunker_py

__all__ = [
    "CHUNKER_VERSION",
    "DEFAULT_PARAMS",
    "FALLBACK_REASON",
    "IMPLEMENTATION",
    "ChunkerParams",
    "Scanner",
    "cut_points",
    "self_test",
]

#: The API_VERSION both implementations must export.
_API_VERSION = 1

#: Bump when cut points change (they are storage format).
CHUNKER_VERSION = 1


class ChunkerParams(NamedTuple):
    """Chunk size parameters, in bytes (``avg_size`` a power of two)."""

    min_size: int
    avg_size: int
    max_size: int


DEFAULT_PARAMS = ChunkerParams(256 * 1024, 1024 * 1024, 4 * 1024 * 1024)


_impl, IMPLEMENTATION, FALLBACK_REASON = select("chunker", _chunker_py, _API_VERSION, "chunker")

Scanner = _impl.Scanner


def cut_points(data, params: ChunkerParams = DEFAULT_PARAMS, *, scanner_type=None) -> list[int]:
    """Return the offsets just past each cut in ``data`` (one whole object).

    The end of ``data`` is not listed unless a cut falls exactly there; the
    bytes after the last offset are the final chunk.

    Args:
        data: the whole object, a C-contiguous bytes-like object.
        params: chunk size parameters.
        scanner_type: a Scanner class to use instead of the selected one.
    """
    scanner = (scanner_type or Scanner)(*params)
    cuts = []
    start = 0
    scan = scanner.scan
    while (start := scan(data, start)) >= 0:
        cuts.append(start)
    return cuts


# Golden self-test: 6000 bytes of random.Random(_SELF_TEST_SEED).randbytes with
# min 64 / avg 256 / max 1024 must cut exactly here.
_SELF_TEST_SEED = 20240601
_SELF_TEST_PARAMS = ChunkerParams(64, 256, 1024)
_SELF_TEST_CUTS = (
    427, 725, 1005, 1302, 1631, 1944, 2261, 2556, 2948, 3365, 3640, 3915,
    4331, 4682, 5029, 5288, 5545, 5805,
)


def self_test() -> bool:
    """Check the selected Scanner against pinned cut points, whole and split.

    Returns:
        True.

    Raises:
        RuntimeError: the cut points differ (a broken build or a changed
            algorithm without a CHUNKER_VERSION bump).
    """
    data = random.Random(_SELF_TEST_SEED).randbytes(6000)
    whole = cut_points(data, _SELF_TEST_PARAMS)
    scanner = Scanner(*_SELF_TEST_PARAMS)
    split = []
    for off in range(0, len(data), 1000):
        piece = data[off:off + 1000]
        start = 0
        while (start := scanner.scan(piece, start)) >= 0:
            split.append(off + start)
    if tuple(whole) != _SELF_TEST_CUTS or split != whole:
        raise RuntimeError(
            f"{IMPLEMENTATION} chunker self-test failed: cut points {whole} "
            f"(split: {split}), expected {list(_SELF_TEST_CUTS)}")
    return True
