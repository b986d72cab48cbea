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

Known weakness: the mark phase reads all manifests into one set (about
50 bytes per chunk: 10 M chunks, 500 MB); a streaming mark over sorted ids
would bound it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

from ..store.chunkstore import ChunkStore
from ..store.manifest import Manifest
from .interface import MetadataStore

__all__ = ["GcReport", "plan_gc", "collect_garbage", "DEFAULT_GRACE_S"]

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


def collect_garbage(meta: MetadataStore, store: ChunkStore, *,
                    grace_s: float = DEFAULT_GRACE_S, now: float | None = None,
                    dry_run: bool = False) -> GcReport:
    report = GcReport()
    if not dry_run:
        report.objects_removed = meta.delete_unreferenced_objects()
    referenced: set[bytes] = set()
    for blob in meta.referenced_manifests():
        referenced.update(ref.id for ref in Manifest.unpack(blob).chunks if ref.data is None)

    doomed = plan_gc(referenced, ((cid, mtime) for cid, mtime, _n in store.iter_chunks()),
                     time.time() if now is None else now, grace_s)
    report.chunks_kept = len(referenced)
    doomed_set = set(doomed)
    sizes = {cid: n for cid, _mtime, n in store.iter_chunks() if cid in doomed_set} if doomed else {}
    doomed = [cid for cid in doomed if cid in sizes]
    report.chunks_removed = len(doomed)
    report.bytes_removed = sum(sizes[cid] for cid in doomed)
    if not dry_run:
        for i in range(0, len(doomed), 1000):
            store.delete_many(doomed[i:i + 1000])
        report.packs_removed, report.pack_bytes_freed = store.compact(
            min_age_s=grace_s, now=now)
    return report
