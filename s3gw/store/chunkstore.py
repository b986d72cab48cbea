"""The content-addressed chunk store.

Theory of operation
-------------------
A chunk is an immutable byte string named by its BLAKE3-256 digest.  The
local-disk store keeps one file per chunk at ``chunks/<h0h1h2>/<hex id>``
(4,096 fan-out directories, created and made durable when the store is first
opened) so no directory grows past a few thousand entries even for ten
million chunks.

Writing (``put``) is: write to ``tmp/<random>``, ``fdatasync``, rename to the
address.  A chunk that already exists is not written again (deduplication
across files, versions, branches and repos).  Renames are made durable in a
batch: the caller collects the directories it touched in a ``WriteBatch`` and
calls ``sync()`` once before committing metadata that refers to them (crash
order: chunks -> manifest -> commit -> branch head).

A chunk that was renamed into place by a writer whose batch is not yet synced
could still be lost in a crash; so ``has()`` reports only chunks this process
knows to be durable (present at start or synced since), and a concurrent
writer of the same content writes it again rather than trust an unsynced
file.  Chunk files left by a failed or aborted upload are garbage for GC.

Reading (``read``) returns a slice of the chunk after checking the whole
chunk's XXH3-64 checksum and length against the manifest's reference: a
corrupted or truncated chunk raises ``ChunkCorrupt`` naming the file, never
returns bad data.

All methods are blocking; callers run them in worker threads
(``trio.to_thread``).  The interface (``ChunkStore``) is what an
S3-compatible backend will implement too.

Known weaknesses: one file per chunk costs an inode per ~1 MiB; packs would
amortise that, but measured chunk files already reach the disk's speed here.
"""

from __future__ import annotations

import errno
import os
import threading
from typing import Iterator, Protocol

from . import hashing
from .ids import ChunkId, ChunkRef

__all__ = [
    "ChunkStore", "LocalChunkStore", "WriteBatch", "ChunkError", "ChunkMissing", "ChunkCorrupt",
]


class ChunkError(Exception):
    """Base of the chunk store's errors."""


class ChunkMissing(ChunkError):
    def __init__(self, chunk_id: bytes, path: str):
        super().__init__(f"chunk {chunk_id.hex()} missing at {path}")
        self.chunk_id = chunk_id
        self.path = path


class ChunkCorrupt(ChunkError):
    def __init__(self, chunk_id: bytes, path: str, detail: str):
        super().__init__(f"chunk {chunk_id.hex()} at {path} is corrupt: {detail}")
        self.chunk_id = chunk_id
        self.path = path
        self.detail = detail


class WriteBatch:
    """The chunks one upload wrote; ``sync()`` makes them durable together."""

    def __init__(self, store: "LocalChunkStore"):
        self._store = store
        self._dirs: set[str] = set()
        self._ids: list[bytes] = []
        self.new_chunks = 0
        self.new_bytes = 0
        self.total_chunks = 0
        self.total_bytes = 0

    def put(self, chunk_id: bytes, data) -> bool:
        """Store one chunk (if new).  Returns True when it was written."""
        self.total_chunks += 1
        self.total_bytes += len(data)
        written_dir = self._store._write(chunk_id, data)
        if written_dir is None:
            return False
        self._dirs.add(written_dir)
        self._ids.append(chunk_id)
        self.new_chunks += 1
        self.new_bytes += len(data)
        return True

    def sync(self) -> None:
        """fsync the directories holding the renamed chunks; then they count as durable."""
        for d in sorted(self._dirs):
            _fsync_dir(d)
        self._store._mark_durable(self._ids)
        self._dirs.clear()
        self._ids.clear()


class ChunkStore(Protocol):
    def batch(self) -> WriteBatch: ...
    def has(self, chunk_id: bytes) -> bool: ...
    def read(self, ref: ChunkRef, offset: int = 0, length: int | None = None) -> bytes: ...
    def delete(self, chunk_id: bytes) -> None: ...
    def iter_ids(self) -> Iterator[ChunkId]: ...


class LocalChunkStore:
    """Chunk files under ``root``."""

    def __init__(self, root: str, *, fsync: bool = True):
        self.root = root
        self.chunk_root = os.path.join(root, "chunks")
        self.tmp_root = os.path.join(root, "tmp")
        self.fsync = fsync
        os.makedirs(self.chunk_root, exist_ok=True)
        os.makedirs(self.tmp_root, exist_ok=True)
        self._lock = threading.Lock()
        self._pending: set[bytes] = set()  # renamed in this process, not yet synced
        self._make_fanout()
        self._clean_tmp()

    # -- paths --------------------------------------------------------------------------
    def path_of(self, chunk_id: bytes) -> str:
        h = chunk_id.hex()
        return os.path.join(self.chunk_root, h[:3], h)

    def _make_fanout(self) -> None:
        marker = os.path.join(self.chunk_root, ".fanout")
        if os.path.exists(marker):
            return
        for i in range(4096):
            os.makedirs(os.path.join(self.chunk_root, f"{i:03x}"), exist_ok=True)
        _fsync_dir(self.chunk_root)
        with open(marker, "w") as f:
            f.write("3\n")
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(self.chunk_root)

    def _clean_tmp(self) -> None:
        for name in os.listdir(self.tmp_root):
            try:
                os.unlink(os.path.join(self.tmp_root, name))
            except FileNotFoundError:
                pass

    # -- writing ------------------------------------------------------------------------
    def batch(self) -> WriteBatch:
        return WriteBatch(self)

    def has(self, chunk_id: bytes) -> bool:
        with self._lock:
            if chunk_id in self._pending:
                return False
        return os.path.exists(self.path_of(chunk_id))

    def _write(self, chunk_id: bytes, data) -> str | None:
        """Write a chunk if absent; return the directory to fsync, or None if it existed."""
        if self.has(chunk_id):
            return None
        final = self.path_of(chunk_id)
        directory = os.path.dirname(final)
        tmp = os.path.join(self.tmp_root, f"{chunk_id.hex()[:16]}.{os.getpid()}."
                           f"{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            if self.fsync:
                os.fdatasync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, final)
        with self._lock:
            self._pending.add(chunk_id)
        return directory if self.fsync else None

    def _mark_durable(self, ids: list[bytes]) -> None:
        with self._lock:
            self._pending.difference_update(ids)

    # -- reading ------------------------------------------------------------------------
    def read(self, ref: ChunkRef, offset: int = 0, length: int | None = None) -> bytes:
        """Read ``length`` bytes at ``offset`` of a chunk, after verifying the whole chunk."""
        path = self.path_of(ref.id)
        try:
            with open(path, "rb", buffering=0) as f:
                data = f.read(ref.length + 1)
        except FileNotFoundError:
            raise ChunkMissing(ref.id, path) from None
        if len(data) != ref.length:
            raise ChunkCorrupt(ref.id, path, f"length {len(data)} != {ref.length}")
        if hashing.chunk_checksum(data) != ref.checksum:
            raise ChunkCorrupt(ref.id, path, "xxh3 checksum mismatch")
        if offset == 0 and (length is None or length == ref.length):
            return data
        end = ref.length if length is None else offset + length
        return data[offset:end]

    def verify(self, chunk_id: bytes) -> bool:
        """Full check for fsck: the content hashes to its name."""
        path = self.path_of(chunk_id)
        with open(path, "rb") as f:
            return hashing.chunk_id(f.read()) == chunk_id

    # -- GC support ---------------------------------------------------------------------
    def delete(self, chunk_id: bytes) -> None:
        try:
            os.unlink(self.path_of(chunk_id))
        except FileNotFoundError:
            pass

    def iter_ids(self) -> Iterator[ChunkId]:
        for top in sorted(os.listdir(self.chunk_root)):
            top_dir = os.path.join(self.chunk_root, top)
            if not os.path.isdir(top_dir):
                continue
            for name in sorted(os.listdir(top_dir)):
                yield ChunkId.from_hex(name)

    def usage(self) -> tuple[int, int]:
        """(chunk count, bytes) on disk."""
        count = size = 0
        for cid in self.iter_ids():
            count += 1
            size += os.stat(self.path_of(cid)).st_size
        return count, size


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:  # pragma: no cover - platform without directory fds
        if exc.errno in (errno.EISDIR, errno.EACCES):
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
