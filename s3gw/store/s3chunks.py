"""Chunks in an S3-compatible object store (AWS S3, MinIO, Ceph RGW, SeaweedFS, Garage).

Theory of operation
-------------------
Same interface as ``LocalChunkStore`` (``chunkstore.ChunkStore``), so several
gateways on several machines can share one store.  Layout in the bucket
(``docs/object-store.md`` argues it)::

    <prefix>chunks/<64 hex digits>   one object per chunk, its bytes and nothing else
    <prefix>s3gw/config.json         format version and the GC grace period (written once)
    <prefix>s3gw/gc-running/<run>    present while a ``s3gw gc`` run deletes chunks

No packs: an object store has no cheap append, a pack index shared by several
gateways would need the shared metadata database, and compaction would have to
rewrite objects other gateways are reading.  Small chunks are rare here: objects
up to ``INLINE_MAX`` live in their manifests, and the chunker cuts nothing below
256 KiB but a stream's end.

Writing.  ``S3WriteBatch.write_claimed`` copies the chunk (the caller reuses its
buffer) and hands it to the store's upload threads, at most ``INFLIGHT`` chunks
per batch (memory per upload: ``INFLIGHT`` x 4 MiB, the largest chunk); the
next chunk waits for a slot (back-pressure).  An upload job first HEADs the
chunk: one stored recently enough (see GC below) is deduplicated, anything else
is PUT to its address.  A PUT is atomic in S3: an object at a chunk's address
is always whole, so ``has`` can trust it.  ``sync`` waits for every job of the
batch: an acknowledged PUT is durable.  Chunks become visible at their
address as their PUT completes, not all together at ``sync``: harmless, since
only a metadata commit makes a chunk reachable and a whole, content-addressed
chunk is correct for anyone who deduplicates on it.  ``discard`` waits for
the jobs still running and deletes nothing: another gateway may already have
deduplicated on a chunk this batch wrote, and only GC, with its grace period,
may delete chunks of a shared store.  The orphans of a failed upload are
reclaimed by GC, as DESIGN.md's crash order says.

Reading.  ``read``/``read_into`` GET the whole chunk (its XXH3-64 checksum covers
all of it), check length and checksum against the manifest's reference exactly
as the local store does (``ChunkCorrupt``, ``ChunkMissing`` naming the object's
``s3://`` address), then return the slice asked for.  A range read of an object
touches only the chunks it overlaps (the caller plans it).  ``prefetch`` starts
GETs of the next chunks of a GET into a small bounded cache
(``PREFETCH_BYTES``), so a large GET has several chunk GETs in flight.

Client: ``obstore`` (Rust ``object_store``; measured against botocore on this
machine: 5-10x less CPU per request, see docs/object-store.md).  Its calls
release the GIL; retries with exponential backoff and jitter on 5xx (S3's
``503 SlowDown`` throttling), dropped connections and timeouts are its own.
Credentials come from the environment (``AWS_ACCESS_KEY_ID`` ...), or from a
profile of the shared AWS files (``?profile=``, through boto3's resolver).

All methods are blocking (worker threads), as in the local store.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Iterator

from . import hashing
from .chunkstore import ChunkCorrupt, ChunkError, ChunkMissing, ChunkStoreUnavailable, _inline
from .manifest import ChunkId, ChunkRef
from .s3url import S3Location, parse_s3_url

__all__ = ["S3ChunkStore", "S3WriteBatch", "GcSweep", "DEFAULT_GRACE_S", "StoreConfigMismatch"]

log = logging.getLogger("s3gw.store")

DEFAULT_GRACE_S = 3600.0
FORMAT = 1
INFLIGHT = 4                    # chunk uploads in flight per batch
UPLOAD_THREADS = 16             # the store's upload/prefetch threads (network waits, GIL released)
PREFETCH_BYTES = 32 << 20       # chunks fetched ahead of GETs, all requests together
# A writer's store-clock estimate may be off by this much (LastModified has one-second
# resolution; the offset is measured once): margins below include it.
CLOCK_SLACK_S = 3.0
SETTLE_MAX_S = 10.0             # settle_s = min(this, grace / 10): see GcSweep.delete, _check_resurrected
# Chunks shorter than this are PUT without a HEAD first (while no GC run is known):
# the chunker cuts nothing under 256 KiB but a stream's end, so these are the one
# chunk of a small object or the tail of a large one, where a HEAD costs as much as
# the PUT it might save (docs/object-store.md, "Writes").
BLIND_PUT_BELOW = 256 << 10


class StoreConfigMismatch(ChunkError):
    """The URL's options contradict what the store recorded when it was made."""


def _obstore():
    try:
        import obstore
        from obstore.store import S3Store
    except ImportError as exc:  # pragma: no cover - an optional dependency
        raise ChunkError("s3:// chunk stores need the obstore package "
                         "(pip install 's3gw[objstore]')") from exc
    return obstore, S3Store


def _is_not_found(exc: BaseException) -> bool:
    from obstore.exceptions import NotFoundError
    return isinstance(exc, (NotFoundError, FileNotFoundError))


@contextmanager
def _unavailable(what: str):
    """A store error other than "not found" (after the client's own retries) is
    ``ChunkStoreUnavailable``: the request fails with a 503 its client retries."""
    try:
        yield
    except ChunkError:
        raise
    except Exception as exc:  # noqa: BLE001 - obstore's errors, OSError, timeouts
        if _is_not_found(exc):
            raise
        raise ChunkStoreUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc


class S3WriteBatch:
    """The chunks one upload writes to the object store (see the module's text).

    The contract of ``chunkstore.WriteBatch``: ``claim`` / ``write_claimed`` /
    ``put`` / ``sync`` / ``discard``; ``sync`` returns when every chunk is durable
    in the store, and raises the first upload error; ``discard`` returns when no
    upload of the batch is in flight any more (its chunks are left to GC).
    ``new_chunks``/``new_bytes`` count chunks new to this batch (whether the
    store already had one is known only after its HEAD, in ``stored_chunks``).
    """

    def __init__(self, store: "S3ChunkStore"):
        self._store = store
        self._claimed: set[bytes] = set()
        self._jobs: list[Future] = []
        self._slots = threading.BoundedSemaphore(INFLIGHT)
        self._lock = threading.Lock()
        self._started: float | None = None   # monotonic time of the first claim
        self._resurrected: list[bytes] = []  # stale chunks this batch PUT again
        self._blind: list[bytes] = []        # chunks PUT without a HEAD (may have been stale)
        self._error: BaseException | None = None
        self.new_chunks = 0
        self.new_bytes = 0
        self.total_chunks = 0
        self.total_bytes = 0
        self.stored_chunks = 0               # PUT (not deduplicated on a fresh copy)

    def put(self, chunk_id: bytes, data) -> bool:
        if not self.claim(chunk_id, len(data)):
            return False
        self.write_claimed(chunk_id, data)
        return True

    def claim(self, chunk_id: bytes, length: int, checksum: int | None = None) -> bool:
        """Count a chunk; True if this batch must ``write_claimed`` it.  ``checksum``
        (the chunk's XXH3-64, as the local batch takes it to verify a dedup hit) is not
        needed here: ``_upload`` decides with a HEAD, and a damaged stored copy is found
        and quarantined by the read that meets it (``_checked``)."""
        with self._lock:
            if self._started is None:
                self._started = time.monotonic()
            self.total_chunks += 1
            self.total_bytes += length
            if chunk_id in self._claimed:
                return False
            self._claimed.add(chunk_id)
            self.new_chunks += 1
            self.new_bytes += length
            return True

    def write_claimed(self, chunk_id: bytes, data) -> None:
        """Queue the chunk's upload; blocks while ``INFLIGHT`` are running."""
        copy = bytes(data)
        self._slots.acquire()
        try:
            job = self._store._pool.submit(self._upload, chunk_id, copy)
        except BaseException:
            self._slots.release()
            raise
        with self._lock:
            self._jobs.append(job)

    def _upload(self, chunk_id: bytes, data: bytes) -> None:
        try:
            store = self._store
            if len(data) < BLIND_PUT_BELOW and not store._gc_announced(store.settle_s / 2):
                store._put_chunk(chunk_id, data)     # W1': no HEAD (see GcSweep)
                with self._lock:
                    self.stored_chunks += 1
                    self._blind.append(chunk_id)
                return
            meta = store._head(chunk_id)
            modified = None if meta is None else meta["last_modified"].timestamp()
            if (modified is not None and meta["size"] == len(data)
                    and modified >= store.store_now() - store.reuse_window_s):
                return                   # stored recently: GC keeps it past our commit
            # absent, stale, or a damaged copy of another length: (re)write it whole
            store._put_chunk(chunk_id, data)
            with self._lock:
                self.stored_chunks += 1
                if modified is not None:
                    self._resurrected.append(chunk_id)
        except BaseException as exc:
            with self._lock:
                self._error = self._error or exc
            raise
        finally:
            self._slots.release()

    def _wait(self) -> None:
        with self._lock:
            jobs, self._jobs = self._jobs, []
        for job in jobs:
            try:
                job.result()
            except BaseException:  # noqa: BLE001 - the first one is kept in _error
                pass

    def sync(self) -> None:
        """Wait until every chunk is stored; raise the first upload error.

        Raises:
            ChunkError: the batch took longer than the store's ``upload_deadline_s``
                (a GC could no longer be proven to keep its chunks: the upload
                fails and the client retries), or a resurrected chunk was deleted
                by a GC meanwhile.
        """
        self._wait()
        if self._error is not None:
            raise self._error
        store = self._store
        if self._blind and store._gc_announced(store.settle_s / 2):
            # a GC run began around our blind PUTs: any of them may have been a stale
            # chunk that run HEADed before our PUT landed (W3 below)
            self._resurrected.extend(self._blind)
        self._blind = []
        if self._resurrected:
            store._check_resurrected(self._resurrected)
        self._resurrected = []
        # last: the commit follows at once, within the margin the deadline leaves
        if self._started is not None and time.monotonic() - self._started > store.upload_deadline_s:
            raise ChunkStoreUnavailable(
                f"upload took longer than {store.upload_deadline_s:.1f} s (half the store's GC "
                "grace period, less a margin): not committed, retry (or make the store with a "
                "longer grace)")
        self._claimed.clear()

    def discard(self) -> None:
        """Stop: wait for the uploads in flight (nothing is written after this
        returns); the chunks already stored are left to GC."""
        self._wait()
        self._claimed.clear()
        self._resurrected = []
        self._blind = []


class GcSweep:
    """One GC run's view of the store (``S3ChunkStore.gc_sweep``): ``now`` in the
    store's clock, taken when the run announced itself, and ``delete``, which
    re-checks each candidate's age just before deleting it."""

    def __init__(self, store: "S3ChunkStore", now: float, grace_s: float,
                 announced: float | None = None):
        self._store = store
        self.now = now
        self.grace_s = grace_s
        # monotonic time the announcement was stored; no candidate is HEADed before
        # ``settle_s`` after it (G1'), so a writer's cached view of the announcements
        # (``_gc_announced``, at most settle_s / 2 old) cannot miss this run
        self._first_head = (time.monotonic() if announced is None else announced) + store.settle_s

    def delete(self, chunk_ids: list[bytes]) -> tuple[int, int]:
        """Delete the chunks still older than ``now - grace_s``; (count, bytes)."""
        cutoff = self.now - self.grace_s
        removed = size = 0
        for cid in chunk_ids:
            wait = self._first_head - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            checked = time.monotonic()
            meta = self._store._head(cid)
            if meta is None or meta["last_modified"].timestamp() >= cutoff:
                continue             # gone, or written again since the listing
            if time.monotonic() - checked > self._store.settle_s / 2:
                continue             # too late to act on that HEAD (see _check_resurrected)
            self._store.delete_many([cid])
            removed += 1
            size += meta["size"]
        return removed, size


class S3ChunkStore:
    """Chunks as objects of one bucket under one prefix."""

    DISCARD_REMOVES = False      # discard leaves written chunks to GC (module's text)

    def __init__(self, location: S3Location | str, *, threads: int = UPLOAD_THREADS):
        if isinstance(location, str):
            location = parse_s3_url(location)
        self.location = location
        self.prefix = location.prefix
        self.root = location.url()
        obstore, S3Store = _obstore()
        self._obs = obstore
        config = {"region": location.region,
                  "virtual_hosted_style_request": location.virtual_hosted}
        if location.endpoint:
            config["endpoint"] = location.endpoint
        if location.unsigned_payload:
            config["unsigned_payload"] = True
        kwargs = {}
        if location.profile:
            import boto3  # the profile's resolver (shared config/credentials files, SSO, roles)
            from obstore.auth.boto3 import Boto3CredentialProvider
            kwargs["credential_provider"] = Boto3CredentialProvider(
                boto3.Session(profile_name=location.profile))
        self._s3 = S3Store(
            location.bucket, config=config,
            client_options={"allow_http": True, "pool_max_idle_per_host": str(threads * 2),
                            "timeout": "120s", "connect_timeout": "10s"},
            retry_config={"max_retries": 8, "retry_timeout": timedelta(seconds=120),
                          "backoff": {"init_backoff": timedelta(milliseconds=100),
                                      "max_backoff": timedelta(seconds=15), "base": 2}},
            **kwargs)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="s3gw-s3")
        self._prefetched: OrderedDict[bytes, Future] = OrderedDict()
        self._prefetched_bytes = 0
        self._prefetch_lock = threading.Lock()
        self._gc_view = (-1e18, True)        # (monotonic time its LIST was sent, running)
        self._gc_view_lock = threading.Lock()
        self.grace_s = self._open_config(location.grace_s)
        self._clock_offset = self._measure_clock()
        self.reuse_window_s = self.grace_s / 2
        self.settle_s = min(SETTLE_MAX_S, self.grace_s / 10)
        # an upload syncs at most this long after its first claim (docs/object-store.md)
        self.upload_deadline_s = self.grace_s / 2 - CLOCK_SLACK_S - self.grace_s / 20
        if self.upload_deadline_s < 1:
            raise StoreConfigMismatch(f"{self.root}: grace {self.grace_s:g} s is too short "
                                      "(at least 10 s; one upload must fit in about half of it)")

    # -- keys ---------------------------------------------------------------------------
    def key_of(self, chunk_id: bytes) -> str:
        return f"{self.prefix}chunks/{chunk_id.hex()}"

    def where(self, chunk_id: bytes) -> str:
        loc = self.location
        return f"s3://{loc.bucket}/{self.key_of(chunk_id)}"

    # -- setup --------------------------------------------------------------------------
    def _open_config(self, grace_s: float | None) -> float:
        """Read the store's recorded config, or record it (first open)."""
        key = f"{self.prefix}s3gw/config.json"
        try:
            recorded = json.loads(bytes(self._obs.get(self._s3, key).bytes()))
        except Exception as exc:  # noqa: BLE001 - only "not found" is expected
            if not _is_not_found(exc):
                raise
            wanted = {"format": FORMAT, "layout": "chunks/<hex id>",
                      "grace_s": grace_s if grace_s is not None else DEFAULT_GRACE_S}
            # two first opens at once write the same document unless their URLs
            # disagree on grace; the one read back below is what everyone uses
            self._obs.put(self._s3, key, json.dumps(wanted).encode())
            recorded = json.loads(bytes(self._obs.get(self._s3, key).bytes()))
        if recorded.get("format") != FORMAT:
            raise StoreConfigMismatch(f"{self.root}: store format {recorded.get('format')}, "
                                      f"this s3gw reads format {FORMAT}")
        if grace_s is not None and float(recorded["grace_s"]) != grace_s:
            raise StoreConfigMismatch(f"{self.root}: made with grace={recorded['grace_s']:g}, "
                                      f"not {grace_s:g}")
        return float(recorded["grace_s"])

    def _measure_clock(self) -> float:
        """The store's clock minus ours (LastModified of an object just written)."""
        key = f"{self.prefix}s3gw/clock/{threading.get_ident():x}-{time.time_ns():x}"
        before = time.time()
        self._obs.put(self._s3, key, b"")
        after = time.time()
        stamp = self._obs.head(self._s3, key)["last_modified"].timestamp()
        self._obs.delete(self._s3, key)
        return stamp - (before + after) / 2

    def store_now(self) -> float:
        """The store's clock (estimated)."""
        return time.time() + self._clock_offset

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- writing ------------------------------------------------------------------------
    def batch(self) -> S3WriteBatch:
        return S3WriteBatch(self)

    def sync_many(self, batches: list[S3WriteBatch]) -> list[BaseException | None]:
        errors: list[BaseException | None] = []
        for batch in batches:
            try:
                batch.sync()
            except Exception as exc:  # noqa: BLE001 - reported per batch
                errors.append(exc)
            else:
                errors.append(None)
        return errors

    def _put_chunk(self, chunk_id: bytes, data) -> None:
        with _unavailable(f"PUT {self.where(chunk_id)}"):
            self._obs.put(self._s3, self.key_of(chunk_id), data)

    def _head(self, chunk_id: bytes):
        try:
            with _unavailable(f"HEAD {self.where(chunk_id)}"):
                return self._obs.head(self._s3, self.key_of(chunk_id))
        except Exception as exc:  # noqa: BLE001 - only "not found" is an answer
            if _is_not_found(exc):
                return None
            raise

    def has(self, chunk_id: bytes, length: int | None = None) -> bool:
        meta = self._head(chunk_id)
        return meta is not None and (length is None or meta["size"] == length)

    def _check_resurrected(self, chunk_ids: list[bytes]) -> None:
        """A batch PUT chunks that were stored before but had grown old (GC
        candidates).  A GC that HEADed one before our PUT may still DELETE it, up to
        ``settle_s / 2`` after: if a GC is running, wait that long and look again."""
        if not self._gc_running():
            return
        time.sleep(self.settle_s)
        for cid in chunk_ids:
            if self._head(cid) is None:
                raise ChunkStoreUnavailable(f"{self.where(cid)} was deleted by a concurrent gc "
                                            "while this upload stored it again: retry")

    # -- reading ------------------------------------------------------------------------
    def _get(self, chunk_id: bytes):
        with self._prefetch_lock:
            fut = self._prefetched.pop(chunk_id, None)
        if fut is not None:
            try:
                data = fut.result()
            finally:
                with self._prefetch_lock:
                    self._prefetched_bytes -= getattr(fut, "s3gw_size", 0)
            if data is not None:
                return data
        return self._fetch(chunk_id)

    def _fetch(self, chunk_id: bytes):
        try:
            with _unavailable(f"GET {self.where(chunk_id)}"):
                return self._obs.get(self._s3, self.key_of(chunk_id)).bytes()
        except Exception as exc:  # noqa: BLE001 - "not found" is ChunkMissing
            if _is_not_found(exc):
                raise ChunkMissing(chunk_id, self.where(chunk_id)) from None
            raise

    def _checked(self, ref: ChunkRef):
        data = memoryview(self._get(ref.id))
        why = None
        if len(data) != ref.length:
            why = f"length {len(data)} != {ref.length}"
        elif hashing.chunk_checksum(data) != ref.checksum:
            why = "xxh3 checksum mismatch"
        if why is not None:
            where = self.where(ref.id)
            self.quarantine(ref.id, why)
            raise ChunkCorrupt(ref.id, where, why)
        return data

    def has_verified(self, chunk_id: bytes, length: int, checksum: int | None) -> bool:
        """``has``, and the stored copy's length and XXH3-64 match (a damaged copy is
        quarantined and reported absent, so the caller writes it again).  Costs a GET:
        the S3 write batch dedups with ``has`` and relies on reads to find damage."""
        try:
            data = self._fetch(chunk_id)
        except ChunkMissing:
            return False
        if len(data) == length and (checksum is None or hashing.chunk_checksum(data) == checksum):
            return True
        self.quarantine(chunk_id, "its stored copy does not match a new upload of it")
        return False

    def quarantine(self, chunk_id: bytes, reason: str) -> bool:
        """Move a damaged chunk object aside (``<prefix>quarantine/<id>``), so the next
        upload of the same bytes writes it again and heals every object that needs it.
        Returns False when it was gone already."""
        key = self.key_of(chunk_id)
        aside = f"{self.prefix}quarantine/{chunk_id.hex()}"
        try:
            with _unavailable(f"quarantine {self.where(chunk_id)}"):
                self._obs.copy(self._s3, key, aside)
                self._obs.delete(self._s3, key)
        except Exception as exc:  # noqa: BLE001 - "not found": someone moved it first
            if _is_not_found(exc):
                return False
            raise
        log.warning("chunk %s quarantined to %s: %s", chunk_id.hex(), aside, reason)
        return True

    def read(self, ref: ChunkRef, offset: int = 0, length: int | None = None) -> bytes:
        end = ref.length if length is None else offset + length
        if ref.data is not None:
            return bytes(_inline(ref)[offset:end])
        return bytes(self._checked(ref)[offset:end])

    def read_into(self, ref: ChunkRef, buf: bytearray, offset: int = 0,
                  length: int | None = None) -> memoryview:
        end = ref.length if length is None else offset + length
        view = memoryview(buf)
        data = _inline(ref) if ref.data is not None else self._checked(ref)
        view[:ref.length] = data
        return view[offset:end]

    def read_cached(self, ref: ChunkRef) -> memoryview | None:
        """Inline chunks only: anything stored needs a request (use ``read``)."""
        if ref.data is not None:
            return _inline(ref)
        return None

    def prefetch(self, refs) -> None:
        """Start GETs of these chunks (a GET reads them next), while the prefetch
        cache has room; a hint: nothing is fetched twice, errors wait for ``read``."""
        for ref in refs:
            if ref.data is not None:
                continue
            with self._prefetch_lock:
                if ref.id in self._prefetched:
                    continue
                if self._prefetched_bytes + ref.length > PREFETCH_BYTES:
                    # forget the oldest hints nobody read (a client went away)
                    while self._prefetched and self._prefetched_bytes + ref.length > PREFETCH_BYTES:
                        _old, fut = self._prefetched.popitem(last=False)
                        self._prefetched_bytes -= fut.s3gw_size
                    if self._prefetched_bytes + ref.length > PREFETCH_BYTES:
                        return
                fut = self._pool.submit(self._prefetch_one, ref.id)
                fut.s3gw_size = ref.length
                self._prefetched[ref.id] = fut
                self._prefetched_bytes += ref.length

    def _prefetch_one(self, chunk_id: bytes):
        try:
            return self._fetch(chunk_id)
        except Exception:  # noqa: BLE001 - the reader fetches again and reports
            return None

    def verify(self, chunk_id: bytes) -> bool:
        """Full check for fsck: the chunk is there and its content hashes to its name."""
        try:
            data = self._fetch(chunk_id)
        except ChunkMissing:
            return False
        return hashing.chunk_id(memoryview(data)) == chunk_id

    # -- GC support ---------------------------------------------------------------------
    def delete(self, chunk_id: bytes) -> None:
        self.delete_many([chunk_id])

    def delete_many(self, chunk_ids: list[bytes]) -> None:
        """Delete chunk objects (missing ones are no error).  Only GC (``gc_sweep``)
        may call this on a shared store with writers running."""
        if chunk_ids:
            with _unavailable(f"DELETE {len(chunk_ids)} chunks of {self.root}"):
                self._obs.delete(self._s3, [self.key_of(c) for c in chunk_ids])

    def compact(self, min_age_s: float = 0.0, now: float | None = None) -> tuple[int, int]:
        return 0, 0          # no packs

    def iter_ids(self) -> Iterator[ChunkId]:
        for cid, _mtime, _size in self.iter_chunks():
            yield cid

    def iter_chunks(self) -> Iterator[tuple[ChunkId, float, int]]:
        """(id, LastModified in the store's clock, size) of every chunk object."""
        base = f"{self.prefix}chunks/"
        for page in self._obs.list(self._s3, prefix=base, chunk_size=1000):
            for meta in page:
                name = meta["path"][len(base):]
                if len(name) != 64:
                    continue
                try:
                    cid = ChunkId.from_hex(name)
                except ValueError:
                    continue
                yield cid, meta["last_modified"].timestamp(), meta["size"]

    def usage(self) -> tuple[int, int]:
        count = size = 0
        for _cid, _mtime, n in self.iter_chunks():
            count += 1
            size += n
        return count, size

    def _gc_announced(self, max_age: float) -> bool:
        """``_gc_running``, from a LIST sent at most ``max_age`` seconds ago (one LIST
        per ``max_age`` for all the store's writers, not one per upload)."""
        with self._gc_view_lock:
            sent, running = self._gc_view
            if time.monotonic() - sent <= max_age:
                return running
            sent = time.monotonic()
            running = self._gc_running()
            self._gc_view = (sent, running)
            return running

    def _gc_running(self) -> bool:
        """Whether any GC run has announced itself (``s3gw/gc-running/<run>``)."""
        for page in self._obs.list(self._s3, prefix=f"{self.prefix}s3gw/gc-running/", chunk_size=1):
            if page:
                return True
        return False

    def gc_sweep(self, grace_s: float | None = None):
        """A context manager for one GC run: announces it (``s3gw/gc-running/<run>``),
        yields a ``GcSweep`` whose ``now`` is the announcement's time in the
        store's clock, and removes the announcement at the end.  ``grace_s`` below
        the store's recorded grace is raised to it (writers rely on that one)."""
        return _Sweep(self, max(grace_s or 0.0, self.grace_s))


class _Sweep:
    def __init__(self, store: S3ChunkStore, grace_s: float):
        self._store = store
        self._grace_s = grace_s

    def __enter__(self) -> GcSweep:
        store = self._store
        self._key = f"{store.prefix}s3gw/gc-running/{time.time_ns():x}-{os.getpid()}"
        body = json.dumps({"started": time.time(), "pid": os.getpid()}).encode()
        store._obs.put(store._s3, self._key, body)
        announced = time.monotonic()
        now = store._obs.head(store._s3, self._key)["last_modified"].timestamp()
        return GcSweep(store, now, self._grace_s, announced)

    def __exit__(self, *exc) -> None:
        store = self._store
        store._obs.delete(store._s3, self._key)
