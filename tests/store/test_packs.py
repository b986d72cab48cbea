"""Pack files: small chunks appended to shared packs; crash recovery and compaction."""

import fcntl
import os
import random
import threading

import pytest

from s3gw.pfs.gc import collect_garbage
from s3gw.store import hashing
from s3gw.store.chunkstore import ChunkMissing, LocalChunkStore
from s3gw.store.manifest import ChunkRef
from s3gw.store.packs import HEAD_SIZE, PACK_MAX


def ref_of(data: bytes) -> ChunkRef:
    return ChunkRef(hashing.chunk_id(data), hashing.chunk_checksum(data), len(data))


def put_batches(store, blobs, per_batch=8, together=True):
    """Stage ``blobs`` in batches of ``per_batch``; sync them all together (one
    append) or each on its own."""
    batches = []
    for i in range(0, len(blobs), per_batch):
        batch = store.batch()
        for data in blobs[i:i + per_batch]:
            batch.put(hashing.chunk_id(data), data)
        batches.append(batch)
    if together:
        assert store.sync_many(batches) == [None] * len(batches)
    else:
        for batch in batches:
            batch.sync()
    return [ref_of(b) for b in blobs]


def packs_of(store):
    return sorted(f for f in os.listdir(store.packs.dir) if f.endswith(".pack"))


def blobs(n, seed=1, lo=1, hi=PACK_MAX - 1):
    rnd = random.Random(seed)
    return [rnd.randbytes(rnd.randint(lo, hi)) for _ in range(n)]


def test_small_chunks_share_a_pack_and_read_back(tmp_path):
    store = LocalChunkStore(str(tmp_path))
    data = blobs(200, hi=20_000) + [b"", b"x" * (PACK_MAX - 1)]
    refs = put_batches(store, data)
    assert packs_of(store) == ["00000001.pack"]          # one pack, no chunk files
    assert not [f for _, _, fs in os.walk(store.chunk_root) for f in fs if f != ".fanout"]
    for ref, blob in zip(refs, data):
        assert store.has(ref.id) and store.has(ref.id, ref.length)
        assert store.read(ref) == blob
        assert store.read_cached(ref) == blob
        buf = bytearray(ref.length + 3)
        assert store.read_into(ref, buf) == blob
        if ref.length > 10:
            assert store.read(ref, 3, 5) == blob[3:8]
            assert store.read_into(ref, buf, 4, 6) == blob[4:10]
        assert store.verify(ref.id)
    assert store.usage() == (len(data), sum(map(len, data)))
    # a chunk of PACK_MAX bytes is a file, as before
    big = put_batches(store, [b"y" * PACK_MAX])[0]
    assert os.path.exists(store.path_of(big.id))
    # the same small chunk again is not written again (within a batch or later)
    size = os.path.getsize(os.path.join(store.packs.dir, "00000001.pack"))
    batch = store.batch()
    assert not batch.put(refs[0].id, data[0])
    assert batch.put(hashing.chunk_id(b"new"), b"new") and not batch.put(hashing.chunk_id(b"new"), b"new")
    batch.sync()
    assert os.path.getsize(os.path.join(store.packs.dir, "00000001.pack")) == size + HEAD_SIZE + 3


def test_a_staged_small_chunk_is_invisible_until_synced_and_gone_if_discarded(tmp_path):
    store = LocalChunkStore(str(tmp_path))
    batch = store.batch()
    ref = ref_of(b"pending")
    assert batch.put(ref.id, b"pending")
    assert not store.has(ref.id)
    with pytest.raises(ChunkMissing):
        store.read(ref)
    batch.discard()
    batch.sync()
    assert not store.has(ref.id)
    assert packs_of(store) == []                       # a discarded upload wrote nothing at all


def test_packs_roll_over(tmp_path, monkeypatch):
    from s3gw.store import packs
    monkeypatch.setattr(packs, "PACK_ROLL", 100_000)
    store = LocalChunkStore(str(tmp_path))
    data = blobs(60, seed=2, lo=5_000, hi=10_000)
    refs = put_batches(store, data, per_batch=4, together=False)
    assert len(packs_of(store)) > 3
    assert [store.read(r) for r in refs] == data


def test_reopen_indexes_synced_records_whose_rows_were_lost_and_cuts_a_torn_tail(tmp_path):
    """A power cut can lose the index's last rows (it commits without a sync) and
    leave a torn record at a pack's end; opening the store repairs both."""
    root = str(tmp_path)
    store = LocalChunkStore(root)
    data = blobs(30, seed=3, hi=3000)
    refs = put_batches(store, data)
    pack = os.path.join(store.packs.dir, "00000001.pack")
    whole = os.path.getsize(pack)
    # the index forgets the last 10 rows and how far the pack was synced
    db = store.packs._db()
    for r in refs[20:]:
        db.execute("DELETE FROM chunks WHERE id = ?", (r.id,))
    db.execute("UPDATE packs SET synced_end = 0")
    store.packs.close()
    with open(pack, "ab") as f:                            # and a record was torn mid-write
        f.write(b"S3GP\x00\x00\x10\x00" + b"\x01" * 30)
    store = LocalChunkStore(root)
    assert os.path.getsize(pack) == whole
    assert [store.read(r) for r in refs] == data
    # the repaired pack is whole again: appends go on in it
    more = put_batches(store, [b"after the crash"])
    assert store.read(more[0]) == b"after the crash"
    assert packs_of(store) == ["00000001.pack"]
    assert os.path.getsize(pack) == whole + HEAD_SIZE + len(b"after the crash")


def test_reopen_after_a_crash_between_append_and_index(tmp_path):
    """Records appended (even synced) but never indexed: whole ones are indexed at
    the next open (unreferenced: GC's), nothing else changes."""
    root = str(tmp_path)
    store = LocalChunkStore(root)
    kept = put_batches(store, [b"committed"])[0]
    appended = store.packs.append([(hashing.chunk_id(b"orphan"), b"orphan")])
    assert not store.has(hashing.chunk_id(b"orphan"))
    store.packs.close()
    store = LocalChunkStore(root)
    assert store.read(kept) == b"committed"
    assert store.read(ref_of(b"orphan")) == b"orphan"
    assert appended.end == os.path.getsize(appended.path)


def test_recovery_and_compaction_skip_a_pack_another_store_appends_to(tmp_path):
    root = str(tmp_path)
    live = LocalChunkStore(root)
    put_batches(live, [b"first"])
    pack = os.path.join(live.packs.dir, "00000001.pack")
    with open(pack, "ab") as f:           # the live store is mid-append (a partial record)
        f.write(b"S3GP")
    other = LocalChunkStore(root)         # e.g. a second process opening the folder
    assert os.path.getsize(pack) == HEAD_SIZE + 5 + 4     # not cut: its owner holds it
    assert other.compact() == (0, 0)
    fd = os.open(pack, os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


def test_compaction_rewrites_mostly_dead_packs_and_keeps_live_chunks(tmp_path, monkeypatch):
    from s3gw.store import packs
    monkeypatch.setattr(packs, "PACK_ROLL", 200_000)
    store = LocalChunkStore(str(tmp_path))
    data = blobs(120, seed=4, lo=2_000, hi=6_000)
    refs = put_batches(store, data, per_batch=10, together=False)
    before = packs_of(store)
    assert len(before) >= 3
    dead = [r for i, r in enumerate(refs) if i % 4]        # three quarters deleted
    store.delete_many([r.id for r in dead])
    live = [(r, d) for i, (r, d) in enumerate(zip(refs, data)) if i % 4 == 0]
    assert store.compact(min_age_s=3600) == (0, 0)         # too young: a batch could still be indexing
    removed, freed = store.compact()
    assert removed >= len(before) - 1 and freed > 0
    assert not set(packs_of(store)) & set(before[:-1])
    for r, d in live:
        assert store.read(r) == d and store.verify(r.id)
    for r in dead:
        assert not store.has(r.id)
    assert store.usage() == (len(live), sum(len(d) for _, d in live))
    # and after a restart everything is where the index says
    store.packs.close()
    again = LocalChunkStore(str(tmp_path))
    assert [again.read(r) for r, _ in live] == [d for _, d in live]


def test_reads_during_compaction_always_get_the_right_bytes(tmp_path, monkeypatch):
    from s3gw.store import packs
    monkeypatch.setattr(packs, "PACK_ROLL", 50_000)
    store = LocalChunkStore(str(tmp_path), fsync=False)
    data = blobs(200, seed=5, lo=500, hi=2_000)
    refs = put_batches(store, data, per_batch=5, together=False)
    store.delete_many([r.id for i, r in enumerate(refs) if i % 3])
    live = [(r, d) for i, (r, d) in enumerate(zip(refs, data)) if i % 3 == 0]
    stop = threading.Event()
    failures = []

    def reader():
        rnd = random.Random(6)
        while not stop.is_set():
            r, d = rnd.choice(live)
            try:
                if store.read(r) != d:
                    failures.append(("wrong bytes", r.id))
            except Exception as exc:  # noqa: BLE001
                failures.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        removed, _ = store.compact()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert removed > 0
    assert failures == []


def test_gc_drops_unreferenced_packed_chunks_and_compacts(tmp_path):
    """Unreferenced packed chunks are dropped and their pack removed (the e2e GC
    test keeps a referenced small object through a GC)."""
    from s3gw.pfs.metadata import SqliteMetadata
    meta = SqliteMetadata(str(tmp_path / "meta.sqlite"))   # no file refers to any chunk
    store = LocalChunkStore(str(tmp_path))
    report = collect_garbage(meta, store, grace_s=0)
    assert report.chunks_removed == 0
    refs = put_batches(store, blobs(40, seed=7, hi=4000))
    report = collect_garbage(meta, store, grace_s=0, dry_run=True)
    assert report.chunks_removed == 40 and store.usage()[0] == 40    # dry run: nothing gone
    store.packs.close()      # the pack being appended to is never compacted: close it
    report = collect_garbage(meta, store, grace_s=0)
    assert report.chunks_removed == 40 and report.bytes_removed == sum(r.length for r in refs)
    assert report.packs_removed == 1 and packs_of(store) == []
    assert store.usage() == (0, 0)


@pytest.mark.parametrize("size", [24, 100_000])
def test_small_chunk_files_of_a_store_from_before_packs_still_read(tmp_path, size):
    """Stores written before packs existed keep small chunks as files, and so do
    stores of the 64 KiB PACK_MAX (chunks of 64-256 KiB): reads find them, fsck and
    GC see them; the same content written again is packed."""
    store = LocalChunkStore(str(tmp_path))
    data = (b"written by an older s3gw" * (size // 24 + 1))[:size]
    ref = ref_of(data)
    with open(store.path_of(ref.id), "wb") as f:       # as the file-per-chunk store left it
        f.write(data)
    assert store.read(ref) == data and store.read_cached(ref) == data
    assert store.read_into(ref, bytearray(size + 100)) == data
    assert store.has(ref.id) and store.verify(ref.id)
    assert [c for c in store.iter_ids()] == [ref.id]
    put_batches(store, [data])
    assert store.packs.has(ref.id) and store.read(ref) == data


def test_compaction_keeps_a_pack_with_a_corrupt_record(tmp_path):
    """A corrupt live record stops that pack's rewrite (fsck reports it); the pack and
    every live chunk in it stay where the index says, and GC goes on with the rest."""
    store = LocalChunkStore(str(tmp_path))
    data = blobs(20, seed=8, lo=1000, hi=3000)
    refs = put_batches(store, data)
    store.packs.close()
    store.delete_many([r.id for r in refs[1:15]])          # mostly dead: due for a rewrite
    bad = store.packs.locate(refs[15].id)
    with open(store.packs.path(bad.pack), "r+b") as f:
        f.seek(bad.off + 5)
        f.write(b"\xff" if data[15][5] != 0xff else b"\x00")
    assert store.compact() == (0, 0)
    assert packs_of(store) == ["00000001.pack"]
    assert not store.verify(refs[15].id)
    for i in [0, 16, 17, 18, 19]:
        assert store.read(refs[i]) == data[i]


def test_a_restart_goes_on_with_the_last_pack_unless_it_is_not_whole(tmp_path):
    root = str(tmp_path)
    store = LocalChunkStore(root)
    first = put_batches(store, [b"one"])
    store.close()
    store = LocalChunkStore(root)
    second = put_batches(store, [b"two"])
    assert packs_of(store) == ["00000001.pack"]                   # no pack per restart
    assert [store.read(r) for r in first + second] == [b"one", b"two"]
    # a pack with bytes past what is known synced (an admin store does not recover it)
    store.packs.append([(hashing.chunk_id(b"unsynced"), b"unsynced")])
    store.close()
    admin = LocalChunkStore(root, owner=False)
    third = put_batches(admin, [b"three"])
    assert packs_of(admin) == ["00000001.pack", "00000002.pack"]
    assert admin.read(third[0]) == b"three"
    # a pack another store holds is never taken over
    other = LocalChunkStore(root)
    put_batches(other, [b"four"])
    assert len(packs_of(other)) == 3
    admin.close()
    other.close()


@pytest.mark.parametrize("existing_pack", [False, True])
def test_the_first_append_of_a_thread_without_an_index_connection(tmp_path, existing_pack):
    """The first append of a process adopts the newest pack, which reads the index
    while holding the pack lock; a thread that never used the index before opens
    its connection right there.  That once took the same (non-reentrant) lock and
    hung the thread and every later append: found when small objects stopped
    going to packs, so a sync thread made the first append."""
    root = str(tmp_path / "s")
    if existing_pack:
        store = LocalChunkStore(root)
        batch = store.batch()
        batch.put(hashing.chunk_id(b"before"), b"before")
        batch.sync()
        store.close()
    store = LocalChunkStore(root)
    data = b"first append from a fresh thread"
    done = []

    def first_append():
        batch = store.batch()
        batch._small[hashing.chunk_id(data)] = data   # claimed and written, as a stage does
        batch.sync()
        done.append(True)

    worker = threading.Thread(target=first_append, daemon=True)
    worker.start()
    worker.join(20)
    assert done == [True], "the first append hung"
    assert store.read(ChunkRef(hashing.chunk_id(data), hashing.chunk_checksum(data), len(data))) \
        == data
    store.close()
