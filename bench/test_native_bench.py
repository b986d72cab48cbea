"""Benchmarks for the native chunker and hashing driver against their pure twins.

Run: ``python -m pytest bench/test_native_bench.py --benchmark-only -q``.
Every bench checks what it computed (cut points equal between implementations
and buffer splits, digests equal to the libraries called directly), and
records its throughput in ``extra_info["GB/s"]`` (from the best round; see
``--benchmark-json``).  The pure chunker runs on a small buffer: it is a
Python byte loop (tens of MB/s).
"""

from __future__ import annotations

import hashlib
import random
import threading
import zlib

import blake3
import crc32c
import pytest
import xxhash

from s3gw.store import _chunker_py, _hashing_py, chunker

try:
    from s3gw._native import chunker as _native_chunker
    from s3gw._native import hashing as _native_hashing
except ImportError as exc:  # pragma: no cover - depends on the build
    _native_chunker = _native_hashing = None
    _NATIVE_MISSING = f"native extensions not built ({exc})"
else:
    _NATIVE_MISSING = ""

native_only = pytest.mark.skipif(_native_chunker is None, reason=_NATIVE_MISSING)

BIG = 64 << 20          # native benches
SMALL = 2 << 20         # the pure chunker's buffer
PIECE = 1 << 20         # stream pieces fed to StreamHasher
DEFAULT = chunker.DEFAULT_PARAMS


@pytest.fixture(scope="module")
def big_data():
    return random.Random(0xBE4C).randbytes(BIG)


def _best(benchmark) -> float | None:
    """The best round's seconds; None when timing is off (``--benchmark-disable``:
    the benches then run once each, as checks)."""
    return benchmark.stats.stats.min if benchmark.stats is not None else None


def _gbps(benchmark, nbytes):
    best = _best(benchmark)
    if best is None:
        return
    benchmark.extra_info["GB/s"] = round(nbytes / best / 1e9, 3)
    benchmark.extra_info["MB/s"] = round(nbytes / best / 1e6, 1)


def _scan_all(scanner_type, data, params=DEFAULT, piece=None):
    scanner = scanner_type(*params)
    cuts = []
    view = memoryview(data)
    step = piece or len(data)
    for off in range(0, len(data), step):
        buf = view[off:off + step]
        start = 0
        while (start := scanner.scan(buf, start)) >= 0:
            cuts.append(off + start)
    return cuts


# --- chunker -------------------------------------------------------------------------

@native_only
def test_chunker_native(benchmark, big_data):
    cuts = benchmark.pedantic(_scan_all, args=(_native_chunker.Scanner, big_data),
                              rounds=5, iterations=1, warmup_rounds=1)
    _gbps(benchmark, BIG)
    # Same cuts when fed in 256 KiB pieces; same as the twin on a prefix.
    assert _scan_all(_native_chunker.Scanner, big_data, piece=256 << 10) == cuts
    prefix = [c for c in cuts if c <= 6 << 20]
    assert _scan_all(_chunker_py.Scanner, big_data[:6 << 20]) == prefix
    mean = cuts[-1] / len(cuts)
    benchmark.extra_info["chunks"] = len(cuts)
    benchmark.extra_info["mean_chunk_KiB"] = round(mean / 1024, 1)
    assert 0.95 * DEFAULT.avg_size < mean < 1.35 * DEFAULT.avg_size


@native_only
def test_chunker_native_two_threads(benchmark, big_data):
    """Two scanners in two threads: about 2x one thread if the loop is nogil."""
    halves = [big_data[:BIG // 2], big_data[BIG // 2:]]
    results = [None, None]

    def run():
        def work(k):
            results[k] = _scan_all(_native_chunker.Scanner, halves[k])
        threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    _gbps(benchmark, BIG)
    assert results[0] == _scan_all(_native_chunker.Scanner, halves[0])
    assert results[1] == _scan_all(_native_chunker.Scanner, halves[1])


def test_chunker_twin(benchmark, big_data):
    data = big_data[:SMALL]
    cuts = benchmark.pedantic(_scan_all, args=(_chunker_py.Scanner, data),
                              rounds=3, iterations=1)
    _gbps(benchmark, SMALL)
    if _native_chunker is not None:
        assert cuts == _scan_all(_native_chunker.Scanner, data)


@native_only
def test_chunker_native_small_params(benchmark, big_data):
    """Many cuts per buffer (64/256/1024): the per-scan-call overhead."""
    data = big_data[:8 << 20]
    params = (64, 256, 1024)
    cuts = benchmark.pedantic(_scan_all, args=(_native_chunker.Scanner, data, params),
                              rounds=5, iterations=1)
    _gbps(benchmark, len(data))
    benchmark.extra_info["chunks"] = len(cuts)
    assert cuts[:2000] == _scan_all(_chunker_py.Scanner, data[:cuts[1999]], params)


# --- stream hashing ------------------------------------------------------------------

_REFERENCE = {
    "md5": lambda d: hashlib.md5(d).digest(),
    "sha1": lambda d: hashlib.sha1(d).digest(),
    "sha256": lambda d: hashlib.sha256(d).digest(),
    "crc32": lambda d: zlib.crc32(d).to_bytes(4, "big"),
    "crc32c": lambda d: crc32c.crc32c(d).to_bytes(4, "big"),
}
_HASHING = {"py": _hashing_py, "c": _native_hashing}


def _stream(mod, algorithms, data):
    hasher = mod.StreamHasher(algorithms)
    view = memoryview(data)
    update = hasher.update
    for off in range(0, len(data), PIECE):
        update(view[off:off + PIECE])
    return hasher.digests()


@pytest.mark.parametrize("impl", ["py", pytest.param("c", marks=native_only)])
@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256", "crc32", "crc32c", "all"])
def test_stream_hasher(benchmark, big_data, impl, algorithm):
    algorithms = list(_REFERENCE) if algorithm == "all" else [algorithm]
    data = big_data[:BIG // 2] if algorithm in ("md5", "all") else big_data
    digests = benchmark.pedantic(_stream, args=(_HASHING[impl], algorithms, data),
                                 rounds=3, iterations=1, warmup_rounds=1)
    _gbps(benchmark, len(data))
    assert digests == {a: _REFERENCE[a](data) for a in algorithms}


# --- per-chunk id + checksum ---------------------------------------------------------

@pytest.mark.parametrize("impl", ["py", pytest.param("c", marks=native_only)])
@pytest.mark.parametrize("chunk_size", [4 << 10, 1 << 20], ids=["4KiB", "1MiB"])
def test_chunk_id_and_checksum(benchmark, big_data, impl, chunk_size):
    mod = _HASHING[impl]
    count = min(1024, (16 << 20) // chunk_size)
    view = memoryview(big_data)
    chunks = [view[k * chunk_size:(k + 1) * chunk_size] for k in range(count)]
    chunk_id = mod.chunk_id
    chunk_checksum = mod.chunk_checksum

    def run():
        return [(chunk_id(c), chunk_checksum(c)) for c in chunks]

    out = benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    _gbps(benchmark, count * chunk_size)
    if _best(benchmark) is not None:
        benchmark.extra_info["us_per_chunk"] = round(_best(benchmark) / count * 1e6, 2)
    for k in (0, count // 2, count - 1):
        assert out[k] == (blake3.blake3(chunks[k]).digest(),
                          xxhash.xxh3_64_intdigest(chunks[k]))
