"""The chunk-store conformance suite: every ``ChunkStore`` implementation passes the
same cases (today ``LocalChunkStore``; an object-store backend joins ``IMPLEMENTATIONS``).
Two handles on one store stand for two gateways sharing it."""

from __future__ import annotations

import pytest

from s3gw.store import hashing
from s3gw.store.chunkstore import ChunkError, ChunkStore, LocalChunkStore
from s3gw.store.manifest import ChunkRef
from s3gw.store.packs import PACK_MAX

SIZES = [10, PACK_MAX - 1, PACK_MAX, 300_000]     # packed and file chunks


def _local(root: str, **kw) -> ChunkStore:
    return LocalChunkStore(root, **kw)


IMPLEMENTATIONS = {"local": _local}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def make_store(request, tmp_path):
    opened = []

    def make(**kw):
        opened.append(IMPLEMENTATIONS[request.param](str(tmp_path / "chunks"), **kw))
        return opened[-1]

    yield make
    for s in opened:
        s.close()


def _data(size: int, seed: int = 0) -> bytes:
    return bytes((i * 7 + seed) % 251 for i in range(size))


def _put(store, data: bytes) -> tuple[ChunkRef, bool]:
    batch = store.batch()
    cid = hashing.chunk_id(data)
    written = batch.put(cid, data)
    batch.sync()
    return ChunkRef(cid, hashing.chunk_checksum(data), len(data)), written


def test_implements_the_protocol(make_store):
    store = make_store()
    missing = [n for n in dir(ChunkStore) if not n.startswith("_") and not hasattr(store, n)]
    assert not missing


@pytest.mark.parametrize("size", SIZES)
def test_write_read_dedup(make_store, size):
    store = make_store()
    data = _data(size)
    ref, written = _put(store, data)
    assert written and store.has(ref.id) and store.has(ref.id, size)
    assert store.read(ref) == data
    assert store.read(ref, 3, 5) == data[3:8]
    buf = bytearray(size)
    assert bytes(store.read_into(ref, buf)) == data
    _, again = _put(store, data)
    assert not again
    assert store.verify(ref.id)
    assert ref.id in set(store.iter_ids())
    assert store.usage()[0] == 1
    assert store.where(ref.id)


def test_unsynced_batch_is_invisible_and_discard_leaves_nothing(make_store):
    store = make_store()
    data = _data(PACK_MAX + 5)
    batch = store.batch()
    cid = hashing.chunk_id(data)
    batch.put(cid, data)
    assert not store.has(cid)
    batch.discard()
    assert not store.has(cid) and list(store.iter_ids()) == []


def test_sync_many_and_delete(make_store):
    store = make_store()
    batches, refs = [], []
    for i, size in enumerate(SIZES):
        b = store.batch()
        data = _data(size, i)
        cid = hashing.chunk_id(data)
        b.put(cid, data)
        batches.append(b)
        refs.append(ChunkRef(cid, hashing.chunk_checksum(data), size))
    assert store.sync_many(batches) == [None] * len(SIZES)
    assert {cid for cid, _mtime, _n in store.iter_chunks()} == {r.id for r in refs}
    store.delete_many([refs[0].id, refs[3].id])
    store.delete(refs[1].id)
    assert [r.id for r in refs if store.has(r.id)] == [refs[2].id]
    with pytest.raises(ChunkError):
        store.read(refs[3])
    store.compact(min_age_s=0.0)
    assert store.read(refs[2]) == _data(SIZES[2], 2)


def test_two_handles_share_one_store(make_store):
    """Two gateways on one shared store: what one writes, the other reads."""
    a, b = make_store(), make_store()
    refs = [_put(a, _data(size, 1))[0] for size in SIZES]
    refs += [_put(b, _data(size, 2))[0] for size in SIZES]
    for ref in refs:
        assert a.read(ref) == b.read(ref)
        assert a.has(ref.id) and b.has(ref.id)
