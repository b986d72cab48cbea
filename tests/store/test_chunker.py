"""Tests for the content-defined chunker: golden cut points, py/c equivalence, bounds.

Both implementations run every test: the ``impl`` fixture yields the pure
twin (``py``) and the compiled module (``c``, skipped only when the
extension is not built).  Cut points are storage format: if a golden test
fails, the algorithm changed and ``CHUNKER_VERSION`` must be bumped.
"""

from __future__ import annotations

import array
import hashlib
import os
import random
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3gw.store import _chunker_py, chunker

try:
    from s3gw._native import chunker as _native_chunker
except ImportError as exc:  # pragma: no cover - depends on the build
    _native_chunker = None
    _NATIVE_MISSING = f"native chunker not built ({exc}); run: python setup.py build_ext --inplace"
else:
    _NATIVE_MISSING = ""

IMPLS = {"py": _chunker_py, "c": _native_chunker}

SMALL = chunker.ChunkerParams(64, 256, 1024)


@pytest.fixture(scope="module", params=[
    "py",
    pytest.param("c", marks=pytest.mark.skipif(_native_chunker is None, reason=_NATIVE_MISSING)),
])
def impl(request):
    """The chunker module under test (module-scoped so hypothesis can use it)."""
    return IMPLS[request.param]


native_only = pytest.mark.skipif(_native_chunker is None, reason=_NATIVE_MISSING)


def cuts_whole(mod, data, params):
    return chunker.cut_points(data, params, scanner_type=mod.Scanner)


def cuts_split(mod, data, params, splits):
    """Cut points (stream offsets) when ``data`` is fed split at ``splits``."""
    scanner = mod.Scanner(*params)
    out = []
    bounds = [0, *sorted(set(splits)), len(data)]
    for lo, hi in zip(bounds, bounds[1:]):
        piece = data[lo:hi]
        start = 0
        while (start := scanner.scan(piece, start)) >= 0:
            out.append(lo + start)
    return out


def lengths(cuts, total):
    edges = [0, *cuts]
    out = [b - a for a, b in zip(edges, edges[1:])]
    if not cuts or cuts[-1] != total:
        out.append(total - edges[-1])  # the final partial chunk
    return out


# --- golden ---------------------------------------------------------------------

GOLDEN_SEED = 0x5EED
GOLDEN_SIZE = 1 << 20
# (params, number of cuts, sha256(",".join(cuts))[:32]) for
# random.Random(GOLDEN_SEED).randbytes(GOLDEN_SIZE).  CHUNKER_VERSION 1.
GOLDEN = [
    ((64, 256, 1024), 3531, "13c76956fa9eb655217e66ccbe5231d8"),
    ((0, 64, 64), 18518, "aca8616b5efe9ae0aa99bea10ef3515b"),
    ((128, 128, 4096), 6540, "3fa75efbffd3a1b6382b2c7d5f996ea5"),
    ((256, 1024, 1024), 1110, "b5644e8317730163a29d92ec66c61cd9"),
    ((1024, 4096, 16384), 221, "39ec0111e859b611ffd117a54927a9d1"),
    ((4096, 8192, 65536), 110, "ca8dcc602a9a0872fe591ccd4c3fee41"),
    ((16384, 65536, 262144), 13, "d35243d82042de73c811c3fca10f8600"),
]
GOLDEN_GEAR = "d0a10bff3bfc7b1be5ebcaefa96777ed"  # sha256 of the table, 8 LE bytes a word


@pytest.fixture(scope="module")
def golden_data():
    return random.Random(GOLDEN_SEED).randbytes(GOLDEN_SIZE)


def test_chunker_version_pinned():
    # The golden values below belong to this version; bump both together.
    assert chunker.CHUNKER_VERSION == 1


@pytest.mark.parametrize("params,count,digest", GOLDEN, ids=lambda v: str(v))
def test_golden_cut_points(impl, golden_data, params, count, digest):
    cuts = cuts_whole(impl, golden_data, params)
    assert len(cuts) == count
    assert hashlib.sha256(",".join(map(str, cuts)).encode()).hexdigest()[:32] == digest


def test_golden_first_cuts(impl, golden_data):
    assert cuts_whole(impl, golden_data[:4000], SMALL) == [
        313, 714, 979, 1194, 1459, 1751, 2114, 2409, 2681, 2983, 3272, 3535, 3610, 3954]


def test_gear_table(impl):
    table = impl.gear_table()
    assert len(table) == 256 and all(0 <= w < 1 << 64 for w in table)
    assert table[0] == 0x6A4362B9798AB336 and table[255] == 0x613FDFF64C25109A
    packed = b"".join(w.to_bytes(8, "little") for w in table)
    assert hashlib.sha256(packed).hexdigest()[:32] == GOLDEN_GEAR
    assert impl.GEAR_SEED == _chunker_py.GEAR_SEED


def test_masks(impl):
    # avg 1 MiB: 22 top bits before the average, 18 after it.
    mask_s, mask_l = impl.masks(1 << 20)
    assert mask_s == ((1 << 22) - 1) << 42
    assert mask_l == ((1 << 18) - 1) << 46


def test_api_version(impl):
    assert impl.API_VERSION == 1


def test_self_test():
    assert chunker.self_test() is True
    assert chunker.IMPLEMENTATION in ("cython", "python")


def test_dispatch_picks_native_when_built():
    if _native_chunker is None or os.environ.get("S3GW_PUREPYTHON") == "1":
        pytest.skip("native chunker not selected in this run")
    assert chunker.IMPLEMENTATION == "cython"
    assert chunker.Scanner is _native_chunker.Scanner
    assert chunker.FALLBACK_REASON is None


def test_purepython_env_forces_twin():
    code = ("from s3gw.store import chunker as c; "
            "assert c.IMPLEMENTATION == 'python', c.IMPLEMENTATION; "
            "assert c.Scanner.__module__ == 's3gw.store._chunker_py'; "
            "assert c.self_test(); print('ok')")
    env = dict(os.environ, S3GW_PUREPYTHON="1")
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


# --- equivalence -------------------------------------------------------------------

@native_only
@settings(max_examples=150, deadline=None)
@given(data=st.binary(min_size=0, max_size=6000),
       splits=st.lists(st.integers(0, 6000), max_size=12),
       params=st.sampled_from([SMALL, (0, 64, 64), (100, 128, 300), (64, 64, 64), (0, 64, 1 << 12)]))
def test_equivalence_random_splits(data, splits, params):
    splits = [s for s in splits if s <= len(data)]
    want = cuts_whole(_chunker_py, data, params)
    assert cuts_whole(_native_chunker, data, params) == want
    assert cuts_split(_native_chunker, data, params, splits) == want
    assert cuts_split(_chunker_py, data, params, splits) == want


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(0, 20000),
       splits=st.lists(st.integers(0, 20000), max_size=20))
def test_split_invariance(impl, seed, size, splits):
    data = random.Random(seed).randbytes(size)
    splits = [s for s in splits if s <= size]
    assert cuts_split(impl, data, SMALL, splits) == cuts_whole(impl, data, SMALL)


def test_byte_at_a_time(impl, golden_data):
    data = golden_data[:5000]
    assert cuts_split(impl, data, SMALL, range(1, len(data))) == cuts_whole(impl, data, SMALL)


@native_only
def test_equivalence_large_nogil_path(golden_data):
    # Buffers past NOGIL_MIN take the GIL-free branch of the native scan.
    params = (16384, 65536, 262144)
    splits = [100_000, 100_001, 777_777]
    want = cuts_whole(_chunker_py, golden_data, params)
    assert cuts_split(_native_chunker, golden_data, params, splits) == want


# --- bounds, reset, buffers, errors --------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 30000),
       params=st.sampled_from([SMALL, (0, 64, 64), (200, 256, 260), (64, 128, 8192)]))
def test_bounds(impl, seed, size, params):
    data = random.Random(seed).randbytes(size)
    cuts = cuts_whole(impl, data, params)
    lens = lengths(cuts, size)
    assert sum(lens) == size
    min_size, _, max_size = params
    for n in lens[:len(cuts)]:  # every complete chunk
        assert min_size < n <= max_size or n == max_size
    assert all(0 < n <= max_size for n in lens)


def test_forced_cut_on_constant_data(impl):
    # Zero bytes give a constant gear walk: only max_size cuts.
    data = bytes(10_000)
    cuts = cuts_whole(impl, data, SMALL)
    lens = lengths(cuts, len(data))
    assert all(n in (SMALL.max_size, lens[-1]) for n in lens)


def test_cut_exactly_at_buffer_end(impl):
    scanner = impl.Scanner(64, 64, 64)
    data = bytes(128)
    assert scanner.scan(data[:64]) == 64          # forced cut at the very end
    assert scanner.scan(data[64:]) == 64
    assert scanner.scan(b"") == -1
    assert scanner.scan(data, 128) == -1


def test_reset(impl, golden_data):
    fresh = cuts_whole(impl, golden_data[:8000], SMALL)
    scanner = impl.Scanner(*SMALL)
    assert scanner.scan(golden_data[50000:50060]) == -1   # a partial chunk of another object
    scanner.reset()
    got = []
    start = 0
    while (start := scanner.scan(golden_data[:8000], start)) >= 0:
        got.append(start)
    assert got == fresh


def test_state_carries_without_reset(impl, golden_data):
    # Without reset the second buffer continues the first's chunk.
    scanner = impl.Scanner(*SMALL)
    assert scanner.scan(golden_data[:200]) == -1
    first = scanner.scan(golden_data[200:8000])
    assert 200 + first == cuts_whole(impl, golden_data[:8000], SMALL)[0]


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "slice", "array"])
def test_buffer_types(impl, golden_data, kind):
    data = golden_data[:8192]
    want = cuts_whole(impl, data, SMALL)
    buf = {
        "bytes": data,
        "bytearray": bytearray(data),
        "memoryview": memoryview(data),
        "slice": memoryview(b"xx" + data)[2:],
        "array": array.array("I", data),   # read as bytes, whatever the item format
    }[kind]
    assert cuts_whole(impl, buf, SMALL) == want


def test_non_contiguous_rejected(impl):
    with pytest.raises(BufferError):
        impl.Scanner(*SMALL).scan(memoryview(bytes(4096))[::2])


def test_bad_start(impl):
    scanner = impl.Scanner(*SMALL)
    with pytest.raises(ValueError):
        scanner.scan(b"abc", 4)
    with pytest.raises((ValueError, OverflowError)):
        scanner.scan(b"abc", -1)


def test_not_a_buffer(impl):
    with pytest.raises(TypeError):
        impl.Scanner(*SMALL).scan("text")


@pytest.mark.parametrize("params", [
    (64, 100, 1024),        # avg not a power of two
    (64, 32, 1024),         # avg too small
    (300, 256, 1024),       # min > avg
    (64, 256, 128),         # max < avg
    (-1, 256, 1024),
    (64, 256, (1 << 31) + 1),
])
def test_bad_params(impl, params):
    with pytest.raises(ValueError):
        impl.Scanner(*params)


def test_bad_param_types(impl):
    with pytest.raises(TypeError):
        impl.Scanner(64.0, 256, 1024)
    with pytest.raises(TypeError):
        impl.Scanner(64, True, 1024)


def test_params_readable(impl):
    scanner = impl.Scanner(*chunker.DEFAULT_PARAMS)
    assert (scanner.min_size, scanner.avg_size, scanner.max_size) == chunker.DEFAULT_PARAMS
    assert "Scanner(" in repr(scanner)


# --- distribution -------------------------------------------------------------------

def test_distribution_small_params(impl):
    # Normalized chunking, min avg/4 and masks bits +- 2: mean = 1.141 * avg,
    # 17.1 % of chunks cut before avg (analytic, for random data).
    data = random.Random(7).randbytes(2 << 20)
    lens = lengths(cuts_whole(impl, data, SMALL), len(data))[:-1]
    mean = sum(lens) / len(lens)
    assert 0.97 * 292 < mean < 1.03 * 292
    early = sum(n <= 256 for n in lens) / len(lens)
    assert 0.15 < early < 0.19


def _distribution_default(mod):
    data = random.Random(64).randbytes(64 << 20)
    lens = lengths(cuts_whole(mod, data, chunker.DEFAULT_PARAMS), len(data))[:-1]
    mean = sum(lens) / len(lens)
    avg = chunker.DEFAULT_PARAMS.avg_size
    assert 0.95 * avg < mean < 1.35 * avg, mean
    assert min(lens) > chunker.DEFAULT_PARAMS.min_size
    assert max(lens) <= chunker.DEFAULT_PARAMS.max_size


@native_only
def test_distribution_default_params_native():
    _distribution_default(_native_chunker)


@pytest.mark.slow
def test_distribution_default_params_py():
    _distribution_default(_chunker_py)
