"""Damaged chunks: the check of a dedup hit, quarantine, and the counters.

Theory of operation
-------------------
Deduplication trusts a stored chunk instead of writing it again; a chunk
damaged on disk (a flipped bit, a truncated or deleted file, a bad pack
record) would then spread to every later copy of the same bytes.  So:

- **A dedup hit is checked** (``check_stored``): the stored copy is read and
  its length and XXH3-64 compared with the bytes being written (their
  checksum is computed anyway for the manifest).  A chunk is at most 4 MiB;
  the read comes from the page cache for recently written data and runs in
  the upload's chunking thread, beside the MD5 thread that bounds a single
  stream.  A packed chunk (< 64 KiB) is checked the same way.  XXH3 is not
  cryptographic, but the stored copy is not chosen by an attacker: a random
  fault passes it with probability 2^-64.
- **A damaged chunk is quarantined** (``quarantine``) when a read, a dedup
  check or fsck finds it, after a full check (its BLAKE3 against its name:
  a chunk another upload has just replaced with a good copy stays).  A chunk
  file is moved to ``<data>/quarantine/<id>``; a packed chunk's index row is
  dropped and a note ``<id>.packed`` written there (its bytes stay in the
  pack as dead space until compaction).  The chunk is then missing: reads
  fail fast with ``ChunkMissing``, and the next upload of the same bytes
  writes it again, which heals every object that shares it.
- **Counters** (``Faults``, ``LocalChunkStore.faults``): what this process
  met.  ``quarantined_count(root)`` counts the quarantine folder (what
  ``s3gw stats`` shows, across processes and restarts).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from . import hashing
from .packs import PACK_MAX

__all__ = ["Faults", "QUARANTINE", "check_stored", "quarantine", "quarantined_count"]

QUARANTINE = "quarantine"


@dataclass
class Faults:
    """Damaged chunks this process met.  Plain integers, updated without a lock
    (a lost increment under a race is acceptable for a counter); read them as
    ``store.faults.corrupt_reads`` etc. or all at once with ``as_dict()``."""

    corrupt_reads: int = 0       # a read found a chunk's bytes or length wrong
    missing_reads: int = 0       # a read found no chunk
    dedup_rejected: int = 0      # a dedup hit's stored copy was damaged: written again
    quarantined: int = 0         # chunks moved to quarantine by this process
    damaged_responses: int = 0   # requests answered DataDamaged (set by the S3 layer)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def check_stored(store, chunk_id: bytes, length: int, checksum: int | None) -> bool:
    """Whether a whole, undamaged copy of the chunk is stored (see the module doc).

    Blocking.  A damaged copy is quarantined and counted (``dedup_rejected``);
    then False, and the caller writes the chunk again."""
    if not store.has(chunk_id, length):
        return False
    if checksum is None:
        return True
    detail = None
    if length < PACK_MAX:
        buf = bytearray(length)
        got = store.packs.pread(chunk_id, buf)
        if got is None:
            return False
        n, indexed, _where = got
        if indexed != length or n != length:
            detail = "short pack record"
        elif hashing.chunk_checksum(memoryview(buf)[:n]) != checksum:
            detail = "xxh3 checksum mismatch"
    else:
        path = store.path_of(chunk_id)
        buf = bytearray(length + 1)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            view = memoryview(buf)
            n = 0
            while n <= length:
                k = os.readv(fd, (view[n:],))
                if not k:
                    break
                n += k
        finally:
            os.close(fd)
        if n != length:
            detail = f"length {n} != {length}"
        elif hashing.chunk_checksum(view[:n]) != checksum:
            detail = "xxh3 checksum mismatch"
    if detail is None:
        return True
    store.faults.dedup_rejected += 1
    quarantine(store, chunk_id, detail)
    # moved, or (a race) replaced by a good copy meanwhile: written again either way
    return False


def quarantine(store, chunk_id: bytes, reason: str) -> bool:
    """Move a chunk that fails its full check out of the store (see the module doc);
    True when moved.  Blocking."""
    hexid = chunk_id.hex()
    os.makedirs(store.quarantine_root, exist_ok=True)
    note = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {reason}\n"
    if store.packs.has(chunk_id):
        if store.packs.verify(chunk_id):
            return False
        where = store.packs.describe(chunk_id)
        store.packs.delete([chunk_id])
        with open(os.path.join(store.quarantine_root, f"{hexid}.packed"), "a") as f:
            f.write(f"{where} {note}")
        store.faults.quarantined += 1
        return True
    path = store.path_of(chunk_id)
    try:
        with open(path, "rb") as f:
            if hashing.chunk_id(f.read()) == chunk_id:
                return False
    except FileNotFoundError:
        return False
    try:
        os.replace(path, os.path.join(store.quarantine_root, hexid))
    except FileNotFoundError:
        return False
    with open(os.path.join(store.quarantine_root, f"{hexid}.why"), "a") as f:
        f.write(f"{path} {note}")
    store.faults.quarantined += 1
    return True


def quarantined_count(root: str) -> int:
    """Chunks in ``<root>/quarantine`` (each counted once)."""
    try:
        names = os.listdir(os.path.join(root, QUARANTINE))
    except FileNotFoundError:
        return 0
    return len({name.split(".", 1)[0] for name in names})
