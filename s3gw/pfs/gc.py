"""Garbage collection: reclaim objects and chunks that nothing references.

Plan, then act.  ``plan_gc`` (pure) takes the set of referenced chunk ids
and the chunk files on disk with their ages, and returns the ids to delete:
unreferenced *and* older than a grace period.  The grace period protects
uploads in flight: their chunks are renamed into place just before their
commit, and are young.  ``collect_garbage`` (blocking) first removes object
rows that no file, history entry or multipart upload references (a deleted
repo's contents), then marks every chunk of the remaining objects and
sweeps the rest: chunk files are unlinked, packed chunks dropped from the
pack index, and packs more than half dead (and older than the grace
period) rewritten without them.  Inline chunks (a small object's bytes kept
in its manifest, ``store.manifest``) are not in the store: they go with their
object row.

Every run that is not a dry run is recorded in the metadata store's ``meta``
table (``record_run``: runs, time of the last, chunks and bytes removed in
all), so the server's ``/_s3gw/metrics`` can report GC runs made by
``s3gw gc`` in another process (``gc_totals``).

A store shared by several gateways (``store.s3chunks``, an object store) has
a ``gc_sweep``: the run announces itself in the store, takes ``now`` from the
store's clock *before* the mark, and deletes each candidate only after a
fresh look at its age; why that deletes nothing a writer on another gateway
still needs is argued in docs/object-store.md.  For every store, ``now`` is
taken before the mark: a chunk committed after the mark is younger than it.

Known weakness: the mark phase reads all manifests into one set (about
50 bytes per chunk: 10 M chunks, 500 MB); a streaming mark over sorted ids
would bound it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable

from ..store.chunkstore import ChunkStore
from ..store.manifest import Manifest
from .interface import MetadataStore

__all__ = ["GcReport", "plan_gc", "collect_garbage", "gc_totals", "record_run", "DEFAULT_GRACE_S"]

DEFAULT_GRACE_S = 3600.0


@dataclass
class GcReport:
    objects_removed: int = 0
    chunks_kept: int = 0
    chunks_removed: int = 0
    bytes_removed: int = 0
    packs_removed: int = 0      # packs rewritten without their deleted chunks
    pack_bytes_freed: int = 0


def plan_gc(referenced: set[bytes], on_disk: Iterable[tuple[bytes, float]], now: float,
            grace_s: float) -> list[bytes]:
    """Chunk ids to delete: not referenced and last modified before ``now - grace_s``."""
    cutoff = now - grace_s
    return [cid for cid, mtime in on_disk if cid not in referenced and mtime < cutoff]


def _no_progress(iterable, what, **_kw):
    return iterable


def collect_garbage(meta: MetadataStore, store: ChunkStore, *,
                    grace_s: float | None = None, now: float | None = None,
                    dry_run: bool = False, progress: Callable | None = None) -> GcReport:
    """Reclaim what nothing references (see the module doc).

    ``grace_s``: None is DEFAULT_GRACE_S, or a shared store's own (recorded) grace,
    which is also the least a shared store accepts.  ``progress``: ``(iterable, what,
    *, total=None, unit=...) -> iterable``, wrapped around the long loops (marking
    manifests, scanning chunks, deleting), e.g. ``cli.progress.track``."""
    track = progress or _no_progress
    sweep_of = getattr(store, "gc_sweep", None)
    if sweep_of is None:
        grace_s = DEFAULT_GRACE_S if grace_s is None else grace_s
        report = _collect(meta, store, grace_s, time.time() if now is None else now, dry_run,
                          None, track)
    elif dry_run:
        report = _collect(meta, store, max(grace_s or 0.0, store.grace_s), store.store_now(),
                          True, None, track)
    else:
        with sweep_of(grace_s) as sweep:   # announced; ``sweep.now`` is the store's clock
            report = _collect(meta, store, sweep.grace_s, sweep.now, False, sweep.delete, track)
    if not dry_run:
        record_run(meta, report, time.time_ns())
    return report


def _collect(meta, store, grace_s: float, now: float, dry_run: bool, delete, track) -> GcReport:
    report = GcReport()
    if not dry_run:
        report.objects_removed = meta.delete_unreferenced_objects()
    referenced: set[bytes] = set()
    for blob in track(meta.referenced_manifests(), "gc: marking", unit="manifest"):
        referenced.update(ref.id for ref in Manifest.unpack(blob).chunks if ref.data is None)

    on_disk = track(store.iter_chunks(), "gc: scanning chunks", unit="chunk")
    doomed = plan_gc(referenced, ((cid, mtime) for cid, mtime, _n in on_disk), now, grace_s)
    report.chunks_kept = len(referenced)
    if delete is not None:     # a shared store: each candidate's age looked at again
        report.chunks_removed, report.bytes_removed = delete(doomed)
        return report
    doomed_set = set(doomed)
    sizes = {cid: n for cid, _mtime, n in store.iter_chunks() if cid in doomed_set} if doomed else {}
    doomed = [cid for cid in doomed if cid in sizes]
    report.chunks_removed = len(doomed)
    report.bytes_removed = sum(sizes[cid] for cid in doomed)
    if not dry_run:
        batches = range(0, len(doomed), 1000)
        for i in track(batches, "gc: deleting", unit="batch"):
            store.delete_many(doomed[i:i + 1000])
        report.packs_removed, report.pack_bytes_freed = store.compact(
            min_age_s=grace_s, now=now)
    return report


# meta-table keys of the GC totals (values are decimal integers)
_TOTALS = ("gc_runs", "gc_last_run_ns", "gc_chunks_removed", "gc_bytes_removed",
           "gc_objects_removed")


def record_run(meta: MetadataStore, report: GcReport, now_ns: int) -> None:
    """Add one finished run to the totals kept in the ``meta`` table."""
    add = {"gc_runs": 1, "gc_chunks_removed": report.chunks_removed,
           "gc_bytes_removed": report.bytes_removed + report.pack_bytes_freed,
           "gc_objects_removed": report.objects_removed}

    def tx(cur):
        for key, n in add.items():
            cur.execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE "
                        "SET value = CAST(CAST(meta.value AS INTEGER) + ? AS TEXT)", (key, str(n), n))
        cur.execute("INSERT INTO meta(key, value) VALUES('gc_last_run_ns', ?) ON CONFLICT(key) "
                    "DO UPDATE SET value = excluded.value", (str(now_ns),))

    meta.write(tx)


def gc_totals(meta: MetadataStore) -> dict[str, int]:
    """The GC totals (``_TOTALS`` keys; 0 before the first run)."""
    marks = ",".join("?" * len(_TOTALS))
    rows = dict(meta.reader.execute(f"SELECT key, value FROM meta WHERE key IN ({marks})",
                                    _TOTALS).fetchall())
    return {key: int(rows.get(key, 0)) for key in _TOTALS}
