"""Chunk store: content addressing, dedup, verified reads, corruption reporting."""

import os

import pytest

from s3gw.store import hashing
from s3gw.store.chunkstore import ChunkCorrupt, ChunkMissing, LocalChunkStore
from s3gw.store.manifest import ChunkRef, Manifest
from s3gw.store.packs import PACK_MAX


def put(store, data):
    batch = store.batch()
    cid = hashing.chunk_id(data)
    written = batch.put(cid, data)
    batch.sync()
    return ChunkRef(cid, hashing.chunk_checksum(data), len(data)), written


def test_put_read_roundtrip_and_dedup(tmp_path):
    store = LocalChunkStore(str(tmp_path))
    ref, written = put(store, b"hello world" * 1000)
    assert written
    assert store.has(ref.id)
    assert store.read(ref) == b"hello world" * 1000
    assert store.read(ref, 6, 5) == b"world"
    _, again = put(store, b"hello world" * 1000)
    assert not again
    assert store.usage() == (1, 11000)
    assert os.listdir(store.tmp_root) == []


def test_unsynced_chunk_is_not_trusted_by_has(tmp_path):
    store = LocalChunkStore(str(tmp_path))
    batch = store.batch()
    cid = hashing.chunk_id(b"x" * 10)
    assert batch.put(cid, b"x" * 10)
    assert not store.has(cid)  # renamed but not yet durable
    batch.sync()
    assert store.has(cid)


def damage_chunk(store, ref, damage):
    """Damage a stored chunk in place; returns where it is (its file, or its pack)."""
    loc = store.packs.locate(ref.id)
    if loc is None:   # a chunk file
        path = store.path_of(ref.id)
        with open(path, "rb") as f:
            data = bytearray(f.read())
        if damage == "flip":
            data[100] ^= 1
        elif damage == "truncate":
            data = data[:-1]
        else:
            data += b"!"
        with open(path, "wb") as f:
            f.write(data)
        return path
    path = store.packs.path(loc.pack)
    if damage == "flip":
        with open(path, "r+b") as f:
            f.seek(loc.off + 100)
            byte = f.read(1)
            f.seek(loc.off + 100)
            f.write(bytes([byte[0] ^ 1]))
    elif damage == "truncate":     # the pack ends inside the record
        os.truncate(path, loc.off + loc.length - 1)
    else:                          # the index disagrees with the manifest's length
        db = store.packs._db()
        db.execute("UPDATE chunks SET len = len + 1 WHERE id = ?", (ref.id,))
    return path


@pytest.mark.parametrize("size", [16 * 1024, 80 * 1024], ids=["packed", "file"])
@pytest.mark.parametrize("damage", ["flip", "truncate", "extend"])
def test_corrupt_chunk_is_reported_never_served(tmp_path, damage, size):
    store = LocalChunkStore(str(tmp_path))
    ref, _ = put(store, bytes(range(256)) * (size // 256))
    assert (store.packs.locate(ref.id) is not None) == (size < PACK_MAX)
    path = damage_chunk(store, ref, damage)
    if not (damage == "extend" and size < PACK_MAX):   # fsck checks the record, not the index length
        assert not store.verify(ref.id)
    # read_cached (the event loop's) leaves the verdict to read
    assert store.read_cached(ref) is None
    with pytest.raises(ChunkCorrupt) as info:
        store.read(ref)
    assert path in str(info.value)
    # (a packed chunk whose index row has the wrong length: the row is dropped,
    # fsck --repair finds the whole record and indexes it again)
    # a damaged chunk is quarantined by the read that found it: then it is missing
    assert store.faults.quarantined == 1 and store.faults.corrupt_reads == 1
    assert os.listdir(os.path.join(str(tmp_path), "quarantine"))
    for spare in (0, 1, 100):
        with pytest.raises(ChunkMissing):
            store.read_into(ref, bytearray(ref.length + spare))
    assert not store.has(ref.id, ref.length)
    # the same bytes written again heal it
    put(store, bytes(range(256)) * (size // 256))
    assert store.read(ref) == bytes(range(256)) * (size // 256)


@pytest.mark.parametrize("size", [16 * 1024, 80 * 1024], ids=["packed", "file"])
@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_dedup_hit_on_a_damaged_chunk_writes_it_again(tmp_path, damage, size):
    store = LocalChunkStore(str(tmp_path))
    data = bytes(range(256)) * (size // 256)
    ref, _ = put(store, data)
    damage_chunk(store, ref, damage)
    batch = store.batch()
    assert batch.put(ref.id, data)          # not trusted: written again
    batch.sync()
    assert store.faults.dedup_rejected == 1
    assert store.read(ref) == data
    batch = store.batch()
    assert not batch.put(ref.id, data)      # a good copy is a dedup hit


def test_read_into_slices(tmp_path):
    store = LocalChunkStore(str(tmp_path))
    data = bytes(range(256)) * 64
    ref, _ = put(store, data)
    for spare in (0, 1, 7):
        buf = bytearray(ref.length + spare)
        assert store.read_into(ref, buf) == data
        assert store.read_into(ref, buf, 10, 5) == data[10:15]
        assert store.read_into(ref, buf, 100) == data[100:]


def test_read_cached_never_waits_for_the_disk(tmp_path):
    store = LocalChunkStore(str(tmp_path))
    data = os.urandom(300_000)
    ref, _ = put(store, data)
    assert store.read_cached(ref) == data
    fd = os.open(store.path_of(ref.id), os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # clean pages (synced): dropped
    finally:
        os.close(fd)
    assert store.read_cached(ref) is None   # it would have to read the disk
    assert store.read(ref) == data          # which this does
    assert store.read_cached(ref) == data   # and now the cache holds it
    missing = ChunkRef(b"\0" * 32, 0, 3)
    with pytest.raises(ChunkMissing):
        store.read_cached(missing)


def test_missing_chunk(tmp_path):
    store = LocalChunkStore(str(tmp_path))
    ref, _ = put(store, b"abc" * (PACK_MAX // 3 + 1))     # a chunk file
    os.unlink(store.path_of(ref.id))
    with pytest.raises(ChunkMissing):
        store.read(ref)
    small, _ = put(store, b"abc")
    store.delete(small.id)
    with pytest.raises(ChunkMissing):
        store.read(small)
    with pytest.raises(ChunkMissing):
        store.read_cached(small)


def test_manifest_pack_and_range_plan():
    refs = [ChunkRef(bytes([i]) * 32, i, n) for i, n in enumerate([10, 20, 30])]
    m = Manifest(refs)
    assert Manifest.unpack(m.pack()).chunks == m.chunks
    assert m.size == 60
    assert m.plan(0, 60) == [(refs[0], 0, 10), (refs[1], 0, 20), (refs[2], 0, 30)]
    assert m.plan(15, 16) == [(refs[1], 5, 1)]
    assert m.plan(9, 31) == [(refs[0], 9, 1), (refs[1], 0, 20), (refs[2], 0, 1)]
    assert m.plan(30, 60) == [(refs[2], 0, 30)]
    assert m.plan(5, 5) == []


@pytest.mark.parametrize("size", [PACK_MAX, PACK_MAX + 1, 4096 * 300, 1 << 20, (1 << 20) + 123,
                                  4 << 20])
def test_direct_writes_store_exact_chunks(tmp_path, size):
    """O_DIRECT staging (padded to the block size, then truncated) stores the exact bytes."""
    store = LocalChunkStore(str(tmp_path), direct_writes=True)
    data = os.urandom(size)
    ref, _ = put(store, data)
    assert os.path.getsize(store.path_of(ref.id)) == size
    assert store.read(ref) == data
    assert store.verify(ref.id)
    assert os.listdir(store.tmp_root) == []


def test_sync_many_batches_fail_alone(tmp_path):
    """Each batch has a chunk file and a packed chunk; one batch's file is gone
    before the sync: that batch fails (its packed chunk is not indexed either),
    the others are durable and readable."""
    store = LocalChunkStore(str(tmp_path))
    batches, ids, smalls = [], [], []
    for i in range(4):
        batch = store.batch()
        data = f"chunk {i}".encode() * (PACK_MAX // 7 + 1)       # a chunk file
        small = f"small {i}".encode() * 100
        cid, sid = hashing.chunk_id(data), hashing.chunk_id(small)
        assert batch.put(cid, data)
        assert batch.put(sid, small)
        batches.append(batch)
        ids.append(cid)
        smalls.append(ChunkRef(sid, hashing.chunk_checksum(small), len(small)))
    os.unlink(batches[2].temp_path(ids[2]))                    # this batch's file is gone before the sync
    errors = store.sync_many(batches)
    assert [e is None for e in errors] == [True, True, False, True]
    assert isinstance(errors[2], FileNotFoundError)
    assert [store.has(c) for c in ids] == [True, True, False, True]
    assert [store.has(r.id) for r in smalls] == [True, True, False, True]
    assert [store.read(r) for i, r in enumerate(smalls) if i != 2] == [
        f"small {i}".encode() * 100 for i in (0, 1, 3)]
    batches[2].discard()                     # its owner cleans up; nothing is left behind
    assert os.listdir(store.tmp_root) == []
    assert store.sync_many([]) == []


def test_syncing_many_files_costs_no_memory_per_file():
    """The sync threads take the next file as they go: no job per file (a 10 GiB
    upload syncs ~10,000 chunk files; a future each was ~10 MiB at its end)."""
    import threading
    import tracemalloc

    from s3gw.store import chunkstore

    chunkstore._syncers()          # the pool exists before measuring
    items = [f"file-{i}" for i in range(20_000)]
    seen = []
    lock = threading.Lock()

    def fake_sync(item):
        with lock:
            seen.append(item)
        if item == "file-7":
            raise OSError(5, "EIO")

    tracemalloc.start()
    try:
        results = chunkstore._together(fake_sync, items)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sorted(seen) == sorted(items)
    assert [i for i, r in enumerate(results) if r is not None] == [7]
    assert peak < 1 << 20, f"{peak} bytes traced while syncing 20,000 files"


def test_a_batch_keeps_only_ids_per_chunk(tmp_path):
    """What an upload holds per staged chunk until its sync is the chunk id (a
    10 GiB upload stages ~10,000 chunks): paths are derived, not stored."""
    import tracemalloc

    store = LocalChunkStore(str(tmp_path), fsync=False)
    batch = store.batch()
    ids = [hashing.chunk_id(i.to_bytes(4, "little")) for i in range(3000)]
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i, cid in enumerate(ids):   # claimed as file-sized chunks (the small ones are packed)
            assert batch.claim(cid, PACK_MAX)
            batch.write_claimed(cid, i.to_bytes(4, "little"))
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    per_chunk = (after - before) / len(ids)
    assert per_chunk < 120, f"{per_chunk:.0f} bytes kept per staged chunk"
    batch.sync()
    assert all(store.has(cid) for cid in ids)
    assert os.listdir(store.tmp_root) == []


def test_prefetch_brings_dropped_chunks_back_into_the_page_cache(tmp_path):
    import time

    store = LocalChunkStore(str(tmp_path))
    data = os.urandom(1 << 20)
    ref, _ = put(store, data)
    fd = os.open(store.path_of(ref.id), os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    assert store.read_cached(ref) is None
    store.prefetch([ref, ChunkRef(b"\1" * 32, 0, 1 << 20), ChunkRef(b"\2" * 32, 0, 10)])  # missing: ignored
    deadline = time.monotonic() + 10
    while store.read_cached(ref) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.read_cached(ref) == data


def test_local_store_implements_the_chunkstore_interface():
    import inspect

    from s3gw.store.chunkstore import ChunkStore, LocalChunkStore

    wanted = {n for n, f in vars(ChunkStore).items() if inspect.isfunction(f) and not n.startswith("_")}
    assert wanted >= {"batch", "read", "read_into", "prefetch", "delete_many"}
    for name in wanted:
        proto = inspect.signature(getattr(ChunkStore, name))
        impl = inspect.signature(getattr(LocalChunkStore, name))
        assert list(proto.parameters) == list(impl.parameters), name
