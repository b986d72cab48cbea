"""Tests for the hashing driver: chunk ids/checksums and stream digests vs references.

The ``impl`` fixture runs each test on the pure twin (``py``) and the compiled
driver (``c``, skipped only when the extension is not built).  References are
hashlib, zlib, crc32c, blake3 and xxhash called directly.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zlib

import blake3
import crc32c
import pytest
import xxhash
from awscrt import checksums as awscrt_checksums
from hypothesis import given, settings
from hypothesis import strategies as st

from s3gw.store import _hashing_py, hashing

try:
    from s3gw._native import hashing as _native_hashing
except ImportError as exc:  # pragma: no cover - depends on the build
    _native_hashing = None
    _NATIVE_MISSING = f"native hashing not built ({exc}); run: python setup.py build_ext --inplace"
else:
    _NATIVE_MISSING = ""

IMPLS = {"py": _hashing_py, "c": _native_hashing}
ALL = ("md5", "sha1", "sha256", "crc32", "crc32c", "crc64nvme")


@pytest.fixture(scope="module", params=[
    "py",
    pytest.param("c", marks=pytest.mark.skipif(_native_hashing is None, reason=_NATIVE_MISSING)),
])
def impl(request):
    """The hashing module under test (module-scoped so hypothesis can use it)."""
    return IMPLS[request.param]


def reference(algorithms, data: bytes) -> dict[str, bytes]:
    out = {}
    for name in algorithms:
        if name == "crc32":
            out[name] = zlib.crc32(data).to_bytes(4, "big")
        elif name == "crc32c":
            out[name] = crc32c.crc32c(data).to_bytes(4, "big")
        elif name == "crc64nvme":
            out[name] = awscrt_checksums.crc64nvme(data).to_bytes(8, "big")
        else:
            out[name] = hashlib.new(name, data).digest()
    return out


def test_api_version(impl):
    assert impl.API_VERSION == 3
    assert impl.HOLD_MAX == 16 * 1024
    assert impl.ALGORITHMS == frozenset(ALL)


def test_self_test():
    assert hashing.self_test() is True
    assert hashing.IMPLEMENTATION in ("cython", "python")


def test_dispatch_picks_native_when_built():
    if _native_hashing is None or os.environ.get("S3GW_PUREPYTHON") == "1":
        pytest.skip("native hashing not selected in this run")
    assert hashing.IMPLEMENTATION == "cython"
    assert hashing.StreamHasher is _native_hashing.StreamHasher


def test_purepython_env_forces_twin():
    code = ("from s3gw.store import hashing as h; "
            "assert h.IMPLEMENTATION == 'python', h.IMPLEMENTATION; "
            "assert h.StreamHasher.__module__ == 's3gw.store._hashing_py'; "
            "assert h.self_test(); print('ok')")
    env = dict(os.environ, S3GW_PUREPYTHON="1")
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


# --- chunk id and checksum ---------------------------------------------------------

def test_chunk_id_known_answer(impl):
    assert impl.chunk_id(b"").hex() == (
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")
    assert impl.chunk_id(b"abc").hex() == (
        "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85")


def test_chunk_checksum_known_answer(impl):
    assert impl.chunk_checksum(b"") == 0x2D06800538D394C2
    assert impl.chunk_checksum(b"abc") == 0x78AF5F94892F3950


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=10000))
def test_chunk_hashes_match_libraries(impl, data):
    cid = impl.chunk_id(data)
    assert isinstance(cid, bytes) and len(cid) == 32
    assert cid == blake3.blake3(data).digest()
    assert impl.chunk_checksum(data) == xxhash.xxh3_64_intdigest(data)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_chunk_hashes_buffer_types(impl, wrap):
    data = os.urandom(3 << 20)   # past every library's GIL-release threshold
    assert impl.chunk_id(wrap(data)) == blake3.blake3(data).digest()
    assert impl.chunk_checksum(wrap(data)) == xxhash.xxh3_64_intdigest(data)


# Sizes on each side of the 2 KiB release threshold and of HOLD_MAX: below 2 KiB and
# above HOLD_MAX one library call, in between pieces of 2047 bytes (the GIL kept).
_EDGES = [0, 1, 2046, 2047, 2048, 4094, 4095, 4096, 5000, 16383, 16384, 16385, 100_000]


@pytest.mark.parametrize("size", _EDGES)
@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_chunk_id_and_md5_at_the_piece_edges(impl, size, wrap):
    data = os.urandom(size)
    assert impl.chunk_id(wrap(data)) == blake3.blake3(data).digest()
    assert impl.md5(wrap(data)) == hashlib.md5(data).digest()


def test_chunk_id_and_md5_of_a_wide_memoryview(impl):
    import array
    data = array.array("I", range(3000))          # 12,000 bytes of 4-byte items
    raw = data.tobytes()
    assert impl.chunk_id(memoryview(data)) == blake3.blake3(raw).digest()
    assert impl.md5(memoryview(data)) == hashlib.md5(raw).digest()


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=20000))
def test_twins_agree_on_chunk_id_and_md5(data):
    if _native_hashing is None:
        pytest.skip(_NATIVE_MISSING)
    assert _native_hashing.chunk_id(data) == _hashing_py.chunk_id(data)
    assert _native_hashing.md5(data) == _hashing_py.md5(data)


def test_chunk_hashes_reject_str(impl):
    with pytest.raises(TypeError):
        impl.chunk_id("text")
    with pytest.raises(TypeError):
        impl.chunk_checksum("text")


# --- stream hasher ------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(pieces=st.lists(st.binary(max_size=3000), max_size=8),
       algorithms=st.lists(st.sampled_from(ALL), max_size=6))
def test_stream_digests_match_references(impl, pieces, algorithms):
    hasher = impl.StreamHasher(algorithms)
    for piece in pieces:
        hasher.update(piece)
    got = hasher.digests()
    assert got == reference(dict.fromkeys(algorithms), b"".join(pieces))
    assert list(got) == list(dict.fromkeys(algorithms))   # order kept, duplicates dropped


def test_stream_large_pieces(impl):
    data = os.urandom(9 << 20)
    hasher = impl.StreamHasher(ALL)
    view = memoryview(data)
    for off in range(0, len(data), 3 << 20):
        hasher.update(view[off:off + (3 << 20)])
    assert hasher.digests() == reference(ALL, data)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_stream_buffer_types(impl, wrap):
    hasher = impl.StreamHasher(ALL)
    hasher.update(wrap(b"hello "))
    hasher.update(wrap(b"world"))
    assert hasher.digests() == reference(ALL, b"hello world")


def test_stream_empty(impl):
    hasher = impl.StreamHasher(ALL)
    digests = hasher.digests()
    assert digests == reference(ALL, b"")
    assert digests["crc32"] == b"\0\0\0\0" and digests["crc32c"] == b"\0\0\0\0"
    assert impl.StreamHasher([]).digests() == {}


def test_stream_digests_then_continue(impl):
    hasher = impl.StreamHasher(["md5", "crc32c"])
    hasher.update(b"abc")
    assert hasher.digests() == reference(["md5", "crc32c"], b"abc")
    hasher.update(b"def")
    assert hasher.digests() == reference(["md5", "crc32c"], b"abcdef")


def test_stream_crc_big_endian(impl):
    hasher = impl.StreamHasher(["crc32", "crc32c", "crc64nvme"])
    hasher.update(b"1234")
    hasher.update(memoryview(b"56789"))   # the CRC catalogue check input
    assert hasher.digests() == {"crc32": bytes.fromhex("cbf43926"),
                                "crc32c": bytes.fromhex("e3069283"),
                                "crc64nvme": bytes.fromhex("ae8b14860a799888")}


def test_stream_algorithms_attribute(impl):
    assert impl.StreamHasher(iter(["sha256", "md5", "sha256"])).algorithms == ("sha256", "md5")


def test_stream_unknown_algorithm(impl):
    with pytest.raises(ValueError, match="sha512"):
        impl.StreamHasher(["md5", "sha512"])


def test_stream_rejects_plain_string(impl):
    with pytest.raises(TypeError):
        impl.StreamHasher("md5")


def test_stream_rejects_str_data(impl):
    hasher = impl.StreamHasher(["md5"])
    with pytest.raises(TypeError):
        hasher.update("text")
