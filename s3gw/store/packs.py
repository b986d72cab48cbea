"""Pack files: small chunks appended to shared files, not a file each.

Why
---
A 4 KiB object as its own chunk file costs a file creation, an
``fdatasync``, a rename and a directory fsync (two device flushes) for 4 KiB
of data.  On this machine kind's ext4 (no journal) creating a file right
after many deletes also scans the recently deleted inodes: measured at a
fifth to a quarter of the server's CPU during 4 KiB PUTs.  A chunk shorter
than ``PACK_MAX`` therefore goes into a pack instead: appended to the
store's current pack file, and one ``fdatasync`` of the pack makes every
chunk of a batch durable.  The chunker cuts nothing shorter than its
minimum (256 KiB) except the end of a stream, so only small objects and the
tails of larger ones are packed.

``PACK_MAX`` was 64 KiB until 2026-12-06; it is now that minimum.  Objects of
64-256 KiB had paid a file, its ``fdatasync`` and a directory fsync each:
packed, 128 KiB PUTs from 8 clients went 1,023-1,056 -> 1,233-1,393/s and the
server's CPU 1.05 -> 0.79-0.88 ms per PUT; 64 KiB PUTs one at a time
571-622 -> 634-659/s.  Chunk files of that size written before stay where they
are and are read from there; one written again is packed (a duplicate, never
a loss, as for the files of small chunks from before packs).

Layout
------
``packs/NNNNNNNN.pack``: records, each a 48-byte header -- magic ``S3GP``,
length (4 bytes), XXH3-64 of the data (8), the chunk id (32), big endian --
then the data.  ``packs/index.sqlite`` maps a chunk id to (pack, offset of
its data, length) and records, per pack, the end of the part known synced.

Crash order
-----------
Records are appended, the pack is ``fdatasync``'d, and only then are their
index rows inserted: a chunk is in the index (``has`` true, readable) only
once its bytes are durable, before any manifest can refer to it.  The index
commits without a sync of its own (WAL, ``synchronous=NORMAL``), so a power
cut can lose its last rows; the packs are the truth and opening the store
rescans each pack past its recorded synced end, re-indexing every whole
record (header, XXH3 and BLAKE3 checked) and cutting the pack at the first
torn one.  Nothing past a torn record was ever acknowledged: each batch's
sync covers everything appended before it.

Only one store instance appends to a pack (it holds an ``flock`` on it);
recovery and compaction skip packs another process holds.

Deleting and compaction
-----------------------
``delete`` drops the index row.  ``compact`` (run by GC) rewrites packs that
are more than half dead: their live records are appended to the current
pack, synced, moved in the index (a synced commit: the old pack is unlinked
next) and the old pack removed.  A reader that looked up the old place and
finds the pack gone looks up again.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import struct
import threading
import time
from typing import Iterator, NamedTuple

from . import hashing
from ._durable import fdatasync_path as _fdatasync_path
from ._durable import fsync_dir as _fsync_dir

__all__ = ["PackStore", "PACK_MAX", "PackLocation"]

PACK_MAX = 256 * 1024         # chunks shorter than this are packed (the chunker's minimum)
PACK_ROLL = 64 << 20          # a pack past this size is closed and a new one started
MAGIC = b"S3GP"
_HEAD = struct.Struct(">4sIQ32s")
HEAD_SIZE = _HEAD.size        # 48
_IOV_GROUP = 512              # iovecs per pwritev (IOV_MAX is 1024)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS packs (
    pack INTEGER PRIMARY KEY AUTOINCREMENT,
    synced_end INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS chunks (
    id BLOB PRIMARY KEY,
    pack INTEGER NOT NULL,
    off INTEGER NOT NULL,
    len INTEGER NOT NULL,
    added REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunks_by_pack ON chunks(pack);
"""


class PackLocation(NamedTuple):
    pack: int
    off: int      # of the data (the header is just before it)
    length: int


class Appended(NamedTuple):
    """Records written by one ``append``: sync ``path``, then ``index`` them."""
    path: str
    pack: int
    rows: list    # (id, off, length)
    end: int


class PackStore:
    """The packs of one local chunk store (``root/packs``).  Thread-safe."""

    def __init__(self, root: str, *, fsync: bool = True, recover: bool = True):
        self.dir = os.path.join(root, "packs")
        self.fsync = fsync
        os.makedirs(self.dir, exist_ok=True)
        self._db_path = os.path.join(self.dir, "index.sqlite")
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []   # every thread's, for close()
        # its own lock: a thread's first connection may be opened while it holds
        # ``_lock`` (``append`` -> ``_adopt_last``), which is not reentrant
        self._conns_lock = threading.Lock()
        self._lock = threading.Lock()      # the current pack: appends, roll-over
        self._fd = -1                      # the current pack, flock'd; -1: none yet
        self._pack = 0
        self._end = 0
        self._adopted = False              # the first append tried to go on with the last pack
        db = self._db()
        db.executescript(_SCHEMA)
        if recover:
            self.recover()

    # -- the index ----------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        """This thread's connection to the index (readers never wait for the writer)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self._db_path, timeout=60, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
            with self._conns_lock:
                self._conns.append(db)
        return db

    def _db_nowait(self) -> sqlite3.Connection:
        """This thread's connection that never waits for a lock (the event loop's)."""
        db = getattr(self._local, "db_nowait", None)
        if db is None:
            db = sqlite3.connect(self._db_path, timeout=0, isolation_level=None,
                                 check_same_thread=False)
            self._local.db_nowait = db
            with self._conns_lock:
                self._conns.append(db)
        return db

    def path(self, pack: int) -> str:
        return os.path.join(self.dir, f"{pack:08d}.pack")

    def locate(self, chunk_id: bytes, nowait: bool = False) -> PackLocation | None:
        """Where the chunk is; with ``nowait``, raises ``sqlite3.OperationalError``
        rather than wait for the index's lock (WAL readers rarely have to)."""
        db = self._db_nowait() if nowait else self._db()
        row = db.execute("SELECT pack, off, len FROM chunks WHERE id = ?", (chunk_id,)).fetchone()
        return None if row is None else PackLocation(*row)

    def has(self, chunk_id: bytes) -> bool:
        return self._db().execute("SELECT 1 FROM chunks WHERE id = ?", (chunk_id,)).fetchone() is not None

    def index(self, done: list[Appended]) -> None:
        """Make synced records findable (one transaction)."""
        now = time.time()
        db = self._db()
        with _transaction(db):
            for a in done:
                if db.execute("SELECT 1 FROM packs WHERE pack = ?", (a.pack,)).fetchone() is None:
                    raise OSError(errno.ENOENT, f"pack {a.path} was compacted away before its records "
                                  "were indexed")
                db.executemany("INSERT OR IGNORE INTO chunks (id, pack, off, len, added) "
                               "VALUES (?, ?, ?, ?, ?)",
                               [(cid, a.pack, off, n, now) for cid, off, n in a.rows])
                db.execute("UPDATE packs SET synced_end = MAX(synced_end, ?) WHERE pack = ?",
                           (a.end, a.pack))

    # -- writing ------------------------------------------------------------------------
    def append(self, records: list[tuple[bytes, bytes]]) -> Appended:
        """Append ``(chunk id, data)`` records to the current pack (not yet synced:
        the caller fdatasyncs ``path`` and then calls ``index``)."""
        with self._lock:
            if self._fd < 0 and not self._adopted:
                self._adopted = True
                self._adopt_last()
            if self._fd < 0 or self._end >= PACK_ROLL:
                self._roll()
            iov: list = []
            rows = []
            pos = self._end
            for cid, data in records:
                n = len(data)
                iov.append(_HEAD.pack(MAGIC, n, hashing.chunk_checksum(data), cid))
                iov.append(data)
                rows.append((cid, pos + HEAD_SIZE, n))
                pos += HEAD_SIZE + n
            at = self._end
            try:
                for i in range(0, len(iov), _IOV_GROUP):
                    group = iov[i:i + _IOV_GROUP]
                    want = sum(len(x) for x in group)
                    wrote = os.pwritev(self._fd, group, at)
                    if wrote != want:   # a regular file writes all or fails (ENOSPC)
                        raise OSError(errno.EIO, f"short write to {self.path(self._pack)}")
                    at += wrote
            except BaseException:
                # leave nothing behind: later appends start where this one began
                try:
                    os.ftruncate(self._fd, self._end)
                except OSError:
                    pass
                raise
            self._end = pos
            return Appended(self.path(self._pack), self._pack, rows, pos)

    def _adopt_last(self) -> None:
        """Go on appending to the newest pack if it is whole (every byte of it known
        synced and indexed), not full and nobody holds it: a restart then does not
        start a new pack each time."""
        db = self._db()
        row = db.execute("SELECT pack, synced_end FROM packs ORDER BY pack DESC LIMIT 1").fetchone()
        if row is None:
            return
        pack, synced_end = row
        path = self.path(pack)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            st = os.fstat(fd)
            # still that file (not compacted away and replaced meanwhile), whole, with room
            if (os.stat(path).st_ino != st.st_ino or st.st_size != synced_end
                    or st.st_size >= PACK_ROLL):
                raise BlockingIOError
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            return
        self._fd, self._pack, self._end = fd, pack, st.st_size

    def _roll(self) -> None:
        """Close the current pack and start a new one, made durable in its folder.
        (No sync of the old one here: each batch syncs what it appended.)"""
        if self._fd >= 0:
            os.close(self._fd)      # closing releases the flock
            self._fd = -1
        db = self._db()
        while True:
            with _transaction(db):
                pack = db.execute("INSERT INTO packs DEFAULT VALUES").lastrowid
            try:
                fd = os.open(self.path(pack), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:   # its row was lost (power cut) and not yet recovered
                continue
        fcntl.flock(fd, fcntl.LOCK_EX)
        if self.fsync:
            _fsync_dir(self.dir)
        self._fd, self._pack, self._end = fd, pack, 0

    def close(self) -> None:
        """Close the current pack (a later append starts a new one) and every
        thread's index connection."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for db in conns:
            try:
                db.close()
            except sqlite3.Error:  # pragma: no cover - another thread is using it
                pass
        self._local = threading.local()

    # -- reading ------------------------------------------------------------------------
    def pread(self, chunk_id: bytes, into, flags: int = 0) -> tuple[int, int, str] | None:
        """Read the chunk's data into the start of ``into`` (at most ``len(into)``
        bytes): (bytes read, the indexed length, where -- for error messages), or
        None when the index has no such chunk.  A pack compacted away meanwhile is
        looked up again.  With ``flags`` (``RWF_NOWAIT``: the event loop's read)
        the lookup does not wait for the index either."""
        for _ in range(3):
            loc = self.locate(chunk_id, nowait=bool(flags))
            if loc is None:
                return None
            path = self.path(loc.pack)
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                view = memoryview(into)[:loc.length]
                n = os.preadv(fd, (view,), loc.off, flags)
                return n, loc.length, f"{path}@{loc.off}"
            finally:
                os.close(fd)
        return None

    def verify(self, chunk_id: bytes) -> bool:
        """fsck: the data hashes to its id and matches its header."""
        loc = self.locate(chunk_id)
        if loc is None:
            return False
        try:
            with open(self.path(loc.pack), "rb") as f:
                f.seek(loc.off - HEAD_SIZE)
                head = f.read(HEAD_SIZE)
                data = f.read(loc.length)
        except FileNotFoundError:
            return False
        if len(head) != HEAD_SIZE or len(data) != loc.length:
            return False
        magic, n, checksum, cid = _HEAD.unpack(head)
        return (magic == MAGIC and n == loc.length and cid == chunk_id
                and hashing.chunk_checksum(data) == checksum and hashing.chunk_id(data) == chunk_id)

    def describe(self, chunk_id: bytes) -> str:
        loc = self.locate(chunk_id)
        return "(not indexed)" if loc is None else f"{self.path(loc.pack)}@{loc.off}"

    # -- GC support ---------------------------------------------------------------------
    def iter_chunks(self) -> Iterator[tuple[bytes, float, int]]:
        """(id, time indexed, length) of every packed chunk, by id."""
        last = b""
        db = self._db()
        while True:   # in pages, so no read transaction stays open for long
            rows = db.execute("SELECT id, added, len FROM chunks WHERE id > ? ORDER BY id LIMIT 1000",
                              (last,)).fetchall()
            if not rows:
                return
            yield from rows
            last = rows[-1][0]

    def delete(self, chunk_ids: list[bytes]) -> None:
        db = self._db()
        with _transaction(db):
            db.executemany("DELETE FROM chunks WHERE id = ?", [(c,) for c in chunk_ids])

    def files(self) -> tuple[int, int]:
        """(pack files, their bytes on disk: live records, headers and dead space)."""
        count = size = 0
        for name in os.listdir(self.dir):
            if name.endswith(".pack"):
                try:
                    size += os.stat(os.path.join(self.dir, name)).st_size
                    count += 1
                except FileNotFoundError:
                    continue
        return count, size

    def usage(self) -> tuple[int, int]:
        count, size = self._db().execute("SELECT COUNT(*), COALESCE(SUM(len), 0) FROM chunks").fetchone()
        return count, size

    def compact(self, min_dead: float = 0.5, min_age_s: float = 0.0,
                now: float | None = None) -> tuple[int, int]:
        """Rewrite the closed packs more than ``min_dead`` dead (by bytes) and not
        written to for ``min_age_s`` (GC's grace: no batch can still be between
        appending to them and indexing); returns (packs removed, bytes freed)."""
        now = time.time() if now is None else now
        removed = freed = 0
        db = self._db()
        live = dict(db.execute("SELECT pack, SUM(len + ?) FROM chunks GROUP BY pack", (HEAD_SIZE,)))
        for (pack,) in db.execute("SELECT pack FROM packs ORDER BY pack").fetchall():
            with self._lock:
                if pack == self._pack and self._fd >= 0:
                    continue
            path = self.path(pack)
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                with _transaction(db):
                    if not db.execute("SELECT 1 FROM chunks WHERE pack = ?", (pack,)).fetchone():
                        db.execute("DELETE FROM packs WHERE pack = ?", (pack,))
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue            # another process is appending to it
                st = os.fstat(fd)
                size = st.st_size
                if st.st_mtime > now - min_age_s or (size and live.get(pack, 0) > size * (1 - min_dead)):
                    continue
                try:
                    self._move_live(db, pack, fd)
                except OSError:     # a corrupt record (fsck names it): keep this pack
                    continue
                with _transaction(db):
                    if db.execute("SELECT 1 FROM chunks WHERE pack = ?", (pack,)).fetchone():
                        continue    # rows indexed since: leave it for the next run
                    db.execute("DELETE FROM packs WHERE pack = ?", (pack,))
                os.unlink(path)
            finally:
                os.close(fd)
            removed += 1
            freed += size
        if removed and self.fsync:
            _fsync_dir(self.dir)
        return removed, freed

    def _move_live(self, db: sqlite3.Connection, pack: int, fd: int) -> None:
        rows = db.execute("SELECT id, off, len FROM chunks WHERE pack = ?", (pack,)).fetchall()
        for i in range(0, len(rows), 256):
            group = rows[i:i + 256]
            records = []
            for cid, off, n in group:
                head = os.pread(fd, HEAD_SIZE, off - HEAD_SIZE)
                data = os.pread(fd, n, off)
                if len(head) != HEAD_SIZE:
                    head = bytes(HEAD_SIZE)
                magic, length, checksum, hid = _HEAD.unpack(head)
                if magic != MAGIC or length != n or hid != cid or hashing.chunk_checksum(data) != checksum:
                    raise OSError(errno.EIO, f"pack {self.path(pack)} record at {off - HEAD_SIZE} is corrupt")
                records.append((cid, data))
            done = self.append(records)
            if self.fsync:
                _fdatasync_path(done.path)
            # the move must be durable before the old pack goes: a synced commit
            db.execute("PRAGMA synchronous=FULL")
            try:
                with _transaction(db):
                    db.executemany("UPDATE chunks SET pack = ?, off = ? WHERE id = ? AND pack = ?",
                                   [(done.pack, off, cid, pack) for cid, off, _n in done.rows])
                    db.execute("UPDATE packs SET synced_end = MAX(synced_end, ?) WHERE pack = ?",
                               (done.end, done.pack))
            finally:
                db.execute("PRAGMA synchronous=NORMAL")

    def reindex(self, wanted: set[bytes] | None) -> list[bytes]:
        """fsck --repair: scan every pack for whole records of the ``wanted`` chunks
        (None: every chunk) that the index lacks, and index them; returns their ids.
        Damaged records are skipped, never indexed.  Run with no server using the
        store (fsck --repair holds the data folder's lock)."""
        db = self._db()
        found: list[bytes] = []
        for name in sorted(os.listdir(self.dir)):
            if not name.endswith(".pack"):
                continue
            try:
                pack = int(name[:-5])
            except ValueError:
                continue
            fd = os.open(self.path(pack), os.O_RDONLY)
            try:
                size = os.fstat(fd).st_size
                rows, end = [], 0
                for cid, off, n in _scan_records(fd, size):
                    end = off + n
                    if (wanted is None or cid in wanted) and not self.has(cid):
                        rows.append((cid, off, n))
            finally:
                os.close(fd)
            now = time.time()
            with _transaction(db):
                db.execute("INSERT OR IGNORE INTO packs (pack) VALUES (?)", (pack,))
                db.execute("UPDATE packs SET synced_end = MAX(synced_end, ?) WHERE pack = ?",
                           (end, pack))
                db.executemany("INSERT OR IGNORE INTO chunks (id, pack, off, len, added) "
                               "VALUES (?, ?, ?, ?, ?)", [(c, pack, o, n, now) for c, o, n in rows])
            found.extend(c for c, _o, _n in rows)
            if wanted is not None:
                wanted = wanted - {c for c, _o, _n in rows}
                if not wanted:
                    break
        return found

    # -- recovery -----------------------------------------------------------------------
    def recover(self) -> int:
        """Index the whole records past each pack's synced end and cut any torn tail;
        returns the records indexed.  Packs another process holds are skipped."""
        db = self._db()
        known = dict(db.execute("SELECT pack, synced_end FROM packs"))
        found = 0
        for name in sorted(os.listdir(self.dir)):
            if not name.endswith(".pack"):
                continue
            try:
                pack = int(name[:-5])
            except ValueError:
                continue
            with self._lock:
                if pack == self._pack and self._fd >= 0:
                    continue
            found += self._recover_one(db, pack, known.get(pack))
        return found

    def _recover_one(self, db: sqlite3.Connection, pack: int, synced_end: int | None) -> int:
        path = self.path(pack)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return 0
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0
            size = os.fstat(fd).st_size
            pos = synced_end or 0
            if pos >= size and synced_end is not None:
                return 0
            rows = []
            while pos + HEAD_SIZE <= size:
                magic, n, checksum, cid = _HEAD.unpack(os.pread(fd, HEAD_SIZE, pos))
                if magic != MAGIC or n >= PACK_MAX or pos + HEAD_SIZE + n > size:
                    break
                data = os.pread(fd, n, pos + HEAD_SIZE)
                if hashing.chunk_checksum(data) != checksum or hashing.chunk_id(data) != cid:
                    break
                rows.append((cid, pos + HEAD_SIZE, n))
                pos += HEAD_SIZE + n
            if pos < size:      # a torn tail: never acknowledged
                os.ftruncate(fd, pos)
                if self.fsync:
                    os.fdatasync(fd)
            now = time.time()
            with _transaction(db):
                db.execute("INSERT OR IGNORE INTO packs (pack) VALUES (?)", (pack,))
                db.executemany("INSERT OR IGNORE INTO chunks (id, pack, off, len, added) "
                               "VALUES (?, ?, ?, ?, ?)", [(c, pack, o, n, now) for c, o, n in rows])
                db.execute("UPDATE packs SET synced_end = ? WHERE pack = ?", (pos, pack))
            return len(rows)
        finally:
            os.close(fd)


def _scan_records(fd: int, size: int):
    """(chunk id, offset of data, length) of every whole record of a pack (header,
    XXH3 and BLAKE3 checked), skipping damaged ones: after a bad record the scan
    looks for the next header that checks out.  For ``PackStore.reindex``."""
    pos = 0
    while pos + HEAD_SIZE <= size:
        magic, n, checksum, cid = _HEAD.unpack(os.pread(fd, HEAD_SIZE, pos))
        if magic == MAGIC and n < PACK_MAX and pos + HEAD_SIZE + n <= size:
            data = os.pread(fd, n, pos + HEAD_SIZE)
            if hashing.chunk_checksum(data) == checksum and hashing.chunk_id(data) == cid:
                yield cid, pos + HEAD_SIZE, n
                pos += HEAD_SIZE + n
                continue
        window = os.pread(fd, min(size - pos - 1, 1 << 20), pos + 1)
        found = window.find(MAGIC)
        if found < 0:
            if len(window) < (1 << 20):
                return
            pos += len(window) - len(MAGIC) + 1
        else:
            pos += 1 + found


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK``) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False
