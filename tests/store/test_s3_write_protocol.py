"""The S3 chunk store's write rules against a real S3 server (SeaweedFS): small chunks
are PUT without a HEAD and so heal a damaged stored copy; a HEAD that finds a copy of
another length rewrites it; and an upload whose chunk a running GC deletes fails its
``sync`` instead of committing a missing chunk (docs/object-store.md, "GC")."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from s3gw.store import hashing
from s3gw.store.chunkstore import ChunkCorrupt, ChunkStoreUnavailable
from s3gw.store.manifest import ChunkRef
from s3gw.store.s3chunks import BLIND_PUT_BELOW, S3ChunkStore

from tests.seaweed import ACCESS_KEY, SECRET_KEY


@pytest.fixture
def stores(request, monkeypatch):
    """Two stores on one bucket and prefix (two gateways, or a gateway and `s3gw gc`),
    with the shortest grace a store accepts (10 s: settle 1 s)."""
    weed = request.getfixturevalue("seaweedfs")
    bucket = weed.make_bucket("protocol")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    url = weed.chunks_url(bucket, f"p{uuid.uuid4().hex[:10]}", grace=10)
    a, b = S3ChunkStore(url), S3ChunkStore(url)
    yield a, b, weed.client(), bucket
    a.close()
    b.close()


def ref_of(data: bytes) -> ChunkRef:
    return ChunkRef(hashing.chunk_id(data), hashing.chunk_checksum(data), len(data))


def upload(store: S3ChunkStore, data: bytes) -> ChunkRef:
    ref = ref_of(data)
    batch = store.batch()
    batch.put(ref.id, data)
    batch.sync()
    return ref


def test_small_chunk_upload_heals_a_damaged_copy(stores):
    store, _other, raw, bucket = stores
    data = os.urandom(100_000)
    assert len(data) < BLIND_PUT_BELOW
    ref = upload(store, data)
    raw.put_object(Bucket=bucket, Key=store.key_of(ref.id), Body=bytes(len(data)))  # same size
    upload(store, data)            # no HEAD for a small chunk: the PUT rewrites it
    assert store.read(ref) == data


def test_large_chunk_of_another_length_is_rewritten(stores):
    store, _other, raw, bucket = stores
    data = os.urandom(BLIND_PUT_BELOW + 4096)
    ref = upload(store, data)
    raw.put_object(Bucket=bucket, Key=store.key_of(ref.id), Body=data[:1000])  # truncated
    upload(store, data)            # the HEAD sees the wrong length: PUT again
    assert store.read(ref) == data


def test_large_chunk_damaged_in_place_is_found_by_read_then_healed(stores):
    store, _other, raw, bucket = stores
    data = os.urandom(BLIND_PUT_BELOW + 4096)
    ref = upload(store, data)
    raw.put_object(Bucket=bucket, Key=store.key_of(ref.id), Body=bytes(len(data)))
    upload(store, data)            # a fresh copy of the right length is trusted (no GET)
    with pytest.raises(ChunkCorrupt):
        store.read(ref)            # ... until a read meets it: quarantined
    upload(store, data)
    assert store.read(ref) == data


def test_upload_racing_a_gc_delete_fails_instead_of_committing(stores):
    """The interleaving GC rule G3 cannot exclude by itself: the GC HEADs a stale chunk,
    a writer PUTs the same chunk again, then the GC's DELETE lands.  The writer's
    ``sync`` must fail (the client retries) rather than let a commit reference it.
    A small chunk (PUT without a HEAD) and a large one (HEAD, then PUT)."""
    writer, gc_store, _raw, _bucket = stores
    blobs = [os.urandom(100_000), os.urandom(BLIND_PUT_BELOW + 4096)]
    refs = [upload(writer, data) for data in blobs]
    # stale: older than the grace (10 s) in the store's one-second clock
    time.sleep(writer.grace_s + 1.5)
    for ref, data in zip(refs, blobs):
        with gc_store.gc_sweep() as sweep:
            time.sleep(writer.settle_s)                  # G1': no HEAD before settle
            meta = gc_store._head(ref.id)
            assert meta["last_modified"].timestamp() < sweep.now - sweep.grace_s
            batch = writer.batch()
            batch.put(ref.id, data)                      # the writer stores it again ...
            batch._wait()
            gc_store.delete_many([ref.id])               # ... and the GC's DELETE lands
            with pytest.raises(ChunkStoreUnavailable, match="deleted by a concurrent gc"):
                batch.sync()
        upload(writer, data)                             # the client's retry stores it
        assert writer.read(ref) == data


def test_blind_put_before_a_gc_announcement_is_checked_at_sync(stores):
    """A small chunk PUT without a HEAD while no GC was known, a GC run announced
    before the upload syncs: ``sync`` looks again (once its view of the announcements
    is older than settle / 2) and re-checks the chunk, failing if it is gone."""
    writer, gc_store, _raw, _bucket = stores
    data = os.urandom(50_000)
    ref = ref_of(data)
    assert writer._gc_announced(0) is False               # a fresh view: no GC
    batch = writer.batch()
    batch.put(ref.id, data)
    batch._wait()
    assert batch._blind == [ref.id]                        # PUT without a HEAD
    with gc_store.gc_sweep():
        time.sleep(writer.settle_s / 2 + 0.1)              # the writer's view is now stale
        gc_store.delete_many([ref.id])
        with pytest.raises(ChunkStoreUnavailable):
            batch.sync()
