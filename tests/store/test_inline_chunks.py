"""Inline chunks: a small object's bytes carried in its manifest (store.manifest)."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3gw.store import hashing
from s3gw.store.chunkstore import ChunkCorrupt, LocalChunkStore, verify_inline
from s3gw.store.manifest import INLINE_MAX, RECORD_SIZE, ChunkRef, Manifest


def inline_ref(data: bytes) -> ChunkRef:
    return ChunkRef(hashing.chunk_id(data), hashing.chunk_checksum(data), len(data), data)


def stored_ref(seed: int, length: int) -> ChunkRef:
    return ChunkRef(bytes([seed]) * 32, seed * 7919, length)


def test_a_manifest_without_inline_chunks_keeps_the_plain_layout():
    refs = [stored_ref(i, 1000 + i) for i in range(3)]
    blob = Manifest(refs).pack()
    assert len(blob) == 3 * RECORD_SIZE
    assert blob[:32] == bytes([0]) * 32           # the first record's id, no tag
    assert Manifest.unpack(blob).chunks == tuple(refs)


@pytest.mark.parametrize("n", [1, 42, 43, 44, 45, 87, 88, 4096, INLINE_MAX])
def test_inline_layout_round_trips_at_every_padding(n):
    data = random.Random(n).randbytes(n)
    m = Manifest([inline_ref(data)])
    blob = m.pack()
    assert len(blob) % RECORD_SIZE == 1 and blob[0] == 1
    back = Manifest.unpack(blob)
    assert back.chunks == m.chunks and back.chunks[0].data == data
    assert back.size == n and back.inline_bytes == n


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.binary(min_size=1, max_size=300),
                          st.integers(min_value=1, max_value=1 << 22)), max_size=6))
def test_mixed_manifests_round_trip(items):
    refs = [inline_ref(x) if isinstance(x, bytes) else stored_ref(i, x) for i, x in enumerate(items)]
    m = Manifest(refs)
    back = Manifest.unpack(m.pack())
    assert back.chunks == m.chunks
    assert back.size == sum(r.length for r in refs)
    assert (len(m.pack()) % RECORD_SIZE == 0) == all(isinstance(x, int) for x in items)


def test_concatenating_packed_manifests():
    plain = [Manifest([stored_ref(i, 100)]).pack() for i in range(3)]
    assert Manifest.concat_packed(plain) == b"".join(plain)
    mixed = plain + [Manifest([inline_ref(b"abc")]).pack()]
    assert Manifest.unpack(Manifest.concat_packed(mixed)).chunks == \
        tuple(stored_ref(i, 100) for i in range(3)) + (inline_ref(b"abc"),)


def test_concatenated_manifests_keep_their_inline_chunks():
    a, b = Manifest([stored_ref(1, 5 << 20)]), Manifest([inline_ref(b"tail bytes")])
    both = Manifest.unpack((a + b).pack())
    assert [r.data for r in both.chunks] == [None, b"tail bytes"]
    assert both.plan(5 << 20, (5 << 20) + 4) == [(both.chunks[1], 0, 4)]


@pytest.mark.parametrize("blob", [
    b"\x02" + bytes(44),                                      # an unknown tag
    b"\x01" + b"\x01" + bytes(40) + (100).to_bytes(4, "big") + b"x" * 43,  # data cut short
    b"\x01" + b"\x07" + bytes(44) + bytes(43),               # an unknown kind
    b"\x01" + b"\x00" + bytes(44) + b"\x00" * 42 + b"z",      # a non-zero padding byte
    bytes(45),                                                # neither layout
])
def test_malformed_blobs_are_refused(blob):
    with pytest.raises(ValueError):
        Manifest.unpack(blob)


def test_the_store_serves_an_inline_chunk_after_checking_it(tmp_path):
    store = LocalChunkStore(str(tmp_path / "s"))
    data = bytes(range(256)) * 10
    ref = inline_ref(data)
    assert store.read(ref) == data
    assert store.read(ref, 10, 5) == data[10:15]
    buf = bytearray(len(data) + 1)
    assert bytes(store.read_into(ref, buf, 3, 4)) == data[3:7]
    assert buf[:len(data)] == data                         # in the caller's buffer, as stored
    assert bytes(store.read_cached(ref)) == data
    store.prefetch([ref])                                    # a no-op, no file to open
    assert verify_inline(ref)
    assert list(store.iter_ids()) == []                      # nothing was stored
    bad = ref._replace(data=data[:-1] + b"X")
    for read in (store.read, store.read_cached, lambda r: store.read_into(r, bytearray(4096))):
        with pytest.raises(ChunkCorrupt, match="inline"):
            read(bad)
    assert not verify_inline(bad)
    with pytest.raises(ChunkCorrupt, match="length"):
        store.read(ref._replace(data=data + b"!"))
