"""The metadata store: repos, branches, commits and file trees in SQLite.

Theory of operation
-------------------
* ``commits`` is the history: id (32 hex), repo, branch it was made on,
  parent, depth (parent's + 1), time and message.  Commits are immutable.
* ``objects`` holds contents: size, ETag, the packed chunk manifest and the
  stored headers.  Files point at objects; a copy is a new pointer.
* ``entries`` is the change log of file paths: (repo, path, commit) ->
  object, or NULL for a delete.  It is what history reads walk.
* ``tree`` is the materialised file tree of each branch head: (repo, branch,
  path) -> object, the commit that last changed the path and its time.  Reads
  and listings of a branch use it directly (an index range scan, already in
  UTF-8 byte order because SQLite compares TEXT with memcmp).

A write is one transaction (``BEGIN IMMEDIATE``): read the branch head, add
the commit, its entries and tree rows, move the head.  SQLite serialises
writers, so concurrent writers to one branch each get their own commit, each
the parent of the next: none is lost.  WAL with ``synchronous=FULL`` makes a
commit durable before ``commit()`` returns; chunks were made durable before
(crash order: chunks -> manifest -> commit -> head).

Connections: one writer connection behind a lock; one reader connection per
thread (WAL readers never block the writer).  All methods block: callers run
them in worker threads.

This class implements ``pfs.interface.MetadataStore``; so does
``pfs.postgres.PostgresMetadata`` (the same tables; ``BEGIN IMMEDIATE``
becomes a row lock on the branch).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import sqlite3
import threading
import time
import urllib.parse
from functools import cached_property
from typing import Callable, Iterable, Sequence

from .. import settings
from . import history as _history
from .reads import HistoryReads
from . import sqlbatch as _sqlbatch
from . import versioning as _versioning
from . import uploads as _uploads
from .uploads import UploadStaging
from .keys import prefix_upper_bound
from .model import (
    BranchExists, BranchInfo, CommitInfo, Delete, FileInfo, MetadataBusy, NoSuchBranch,
    NoSuchCommit, NoSuchFile, ObjectInfo, Put, RepoExists, RepoInfo,
)

__all__ = ["SqliteMetadata", "SCHEMA_VERSION", "prefix_upper_bound"]  # prefix_upper_bound: re-exported from .keys

SCHEMA_VERSION = 1

# SQLite's page cache per connection (one writer, a reader per thread).  Small
# objects' bytes live in this database (inline chunks), so a big cache would
# fill with object data: 64 MiB each made a server that had PUT and read 4000
# 4 KiB objects hold 40 MB more.  Pages it misses come from the OS page cache.
# (S3GW_SQLITE_CACHE_KIB: settings.sqlite_cache_kib, read when a store is opened)
# The per-thread readers' (worker threads: up to the limiter's 8, and more
# over a server's life as trio's thread cache replaces idle threads).  Ten
# threads reading through 4 MiB caches took a process from 28 to 72 MiB
# (39 with 1 MiB); a point lookup measured no slower with the smaller one
# (21-24 vs 32 us per `stat`): the B-tree's inner pages fit, and leaves come
# from the OS page cache.  A benchmark server whose 4 KiB GETs had fallen back
# to worker threads went into its 10 GiB PUT and GET 11 MiB higher (98 MiB peak).
# (S3GW_SQLITE_READER_CACHE_KIB: settings.sqlite_reader_cache_kib)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS repos(name TEXT PRIMARY KEY, created_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS branches(
    repo TEXT NOT NULL, name TEXT NOT NULL, head TEXT, created_ns INTEGER NOT NULL,
    PRIMARY KEY(repo, name));
CREATE TABLE IF NOT EXISTS commits(
    id TEXT PRIMARY KEY, repo TEXT NOT NULL, branch TEXT NOT NULL, parent TEXT,
    depth INTEGER NOT NULL, time_ns INTEGER NOT NULL, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS commits_repo ON commits(repo, depth);
CREATE TABLE IF NOT EXISTS objects(
    id INTEGER PRIMARY KEY, size INTEGER NOT NULL, etag TEXT NOT NULL, manifest BLOB NOT NULL,
    headers TEXT NOT NULL, checksums TEXT NOT NULL, parts TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries(
    repo TEXT NOT NULL, path TEXT NOT NULL, depth INTEGER NOT NULL, commit_id TEXT NOT NULL,
    object INTEGER, PRIMARY KEY(repo, path, depth, commit_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_commit ON entries(commit_id);
CREATE TABLE IF NOT EXISTS tree(
    repo TEXT NOT NULL, branch TEXT NOT NULL, path TEXT NOT NULL, object INTEGER NOT NULL,
    commit_id TEXT NOT NULL, time_ns INTEGER NOT NULL,
    PRIMARY KEY(repo, branch, path)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS provenance(
    commit_id TEXT PRIMARY KEY, job TEXT, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS provenance_job ON provenance(job);
"""

Condition = Callable[[FileInfo | None], bool]


class SqliteMetadata(HistoryReads):
    """Embedded metadata store (one SQLite file, WAL)."""

    def __init__(self, path: str, *, durable: bool = True):
        self.path = path
        self.durable = durable
        tuning = settings.current()
        self._cache_kib = tuning.sqlite_cache_kib
        self._reader_cache_kib = tuning.sqlite_reader_cache_kib
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_CommitRequest] = []
        # (parent, skip) of committed commits, for the skip-pointer walks of new
        # commits (commits are immutable; the writer's lock guards it)
        self._steps: dict[str, tuple[str | None, str | None]] = {}
        self._plain_db = None        # _batch_db(), opened on first use
        self._writer = self._connect()
        with self._write_lock:
            self._writer.executescript(_SCHEMA)
            self._writer.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', ?)",
                (str(SCHEMA_VERSION),))
            _history.ensure_schema(self._writer)
            self._writer.executescript(_versioning.SCHEMA)
        self._write(_history.backfill)  # skip pointers of commits older than the table

    def _connect(self, timeout: float = 30.0, *, create: bool = True) -> sqlite3.Connection:
        # create=False (the per-thread readers): a file that has gone from its path is an
        # error, not a new empty database that this thread would then read from
        target = self.path if create else f"file:{urllib.parse.quote(self.path)}?mode=rw"
        conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False,
                               timeout=timeout, uri=not create)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'OFF'}")
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute(f"PRAGMA cache_size=-{self._cache_kib}")
        return conn

    @property
    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(create=False)
            conn.execute("PRAGMA query_only=ON")
            conn.execute(f"PRAGMA cache_size=-{self._reader_cache_kib}")
            self._local.conn = conn
        return conn

    @property
    def reader(self) -> sqlite3.Connection:
        """This thread's read-only connection (for ``pfs.history`` and ``pfs.uploads``)."""
        return self._reader

    def write(self, fn):
        """Run ``fn(cursor)`` in one ``BEGIN IMMEDIATE`` transaction; its result."""
        return self._write(fn)

    def apply_schema(self, script: str) -> None:
        """Run a ``CREATE ... IF NOT EXISTS`` script on the writer connection."""
        with self._write_lock:
            self._writer.executescript(script)

    def close(self) -> None:
        with self._write_lock:
            if self._plain_db is not None:
                self._plain_db.close()
                self._plain_db = None
        self._writer.close()

    # -- transactions -------------------------------------------------------------------
    def _write(self, fn):
        with self._write_lock:
            cur = self._writer.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                result = fn(cur)
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
            return result

    # -- repos and branches -------------------------------------------------------------
    def list_repos(self) -> list[RepoInfo]:
        rows = self._reader.execute("SELECT name, created_ns FROM repos ORDER BY name")
        return [RepoInfo(*r) for r in rows]

    def list_branches(self, repo: str | None = None) -> list[BranchInfo]:
        if repo is None:
            rows = self._reader.execute(
                "SELECT repo, name, head, created_ns FROM branches ORDER BY repo, name")
        else:
            rows = self._reader.execute(
                "SELECT repo, name, head, created_ns FROM branches WHERE repo=? ORDER BY name",
                (repo,))
        return [BranchInfo(*r) for r in rows]

    def get_branch(self, repo: str, branch: str) -> BranchInfo:
        row = self._reader.execute(
            "SELECT repo, name, head, created_ns FROM branches WHERE repo=? AND name=?",
            (repo, branch)).fetchone()
        if row is None:
            raise NoSuchBranch(f"{branch}.{repo}")
        return BranchInfo(*row)

    def create_branch(self, repo: str, branch: str, now_ns: int,
                      from_commit: str | None = None, new_repo: bool = False,
                      progress=None) -> BranchInfo:
        """Create the repo if missing, then the branch (empty, or at ``from_commit``).
        ``new_repo``: only if the repo has no branch yet (else ``RepoExists``), decided
        in the same transaction -- so of two callers creating the same new repo at
        once, exactly one gets it.  ``progress``: ``(iterable, what, total=..., unit=...)
        -> iterable`` around the walk of the repo's history (``cli.progress.track``)."""

        def tx(cur):
            if new_repo and cur.execute("SELECT 1 FROM branches WHERE repo=? LIMIT 1",
                                        (repo,)).fetchone():
                raise RepoExists(repo)
            cur.execute("INSERT OR IGNORE INTO repos(name, created_ns) VALUES(?, ?)",
                        (repo, now_ns))
            if cur.execute("SELECT 1 FROM branches WHERE repo=? AND name=?",
                           (repo, branch)).fetchone():
                raise BranchExists(f"{branch}.{repo}")
            head = None
            if from_commit is not None:
                c = self._commit_row(cur, from_commit)
                if c is None or c.repo != repo:
                    raise NoSuchCommit(from_commit)
                head = c.id
                self._materialise_tree(cur, repo, branch, c, progress)
            cur.execute("INSERT INTO branches(repo, name, head, created_ns) VALUES(?,?,?,?)",
                        (repo, branch, head, now_ns))
            return BranchInfo(repo, branch, head, now_ns)

        return self._write(tx)

    def delete_branch(self, repo: str, branch: str) -> None:
        """Delete a branch, even if not empty; the repo goes with its last branch."""

        def tx(cur):
            if cur.execute("DELETE FROM branches WHERE repo=? AND name=?",
                           (repo, branch)).rowcount == 0:
                raise NoSuchBranch(f"{branch}.{repo}")
            cur.execute("DELETE FROM tree WHERE repo=? AND branch=?", (repo, branch))
            _versioning.forget_branch(cur, repo, branch)
            if cur.execute("SELECT 1 FROM branches WHERE repo=? LIMIT 1", (repo,)).fetchone():
                return
            cur.execute("DELETE FROM repos WHERE name=?", (repo,))
            _versioning.forget_repo(cur, repo)
            cur.execute("DELETE FROM entries WHERE repo=?", (repo,))
            cur.execute("DELETE FROM commit_skip WHERE id IN (SELECT id FROM commits "
                        "WHERE repo=?)", (repo,))
            cur.execute("DELETE FROM provenance WHERE commit_id IN (SELECT id FROM commits "
                        "WHERE repo=?)", (repo,))
            cur.execute("DELETE FROM commits WHERE repo=?", (repo,))
            self._steps.clear()

        self._write(tx)

    # -- commits ------------------------------------------------------------------------
    def commit(self, repo: str, branch: str, changes: Sequence[Put | Delete], message: str,
               now_ns: int, condition: Callable[[str, FileInfo | None], None] | None = None,
               also: Callable[[sqlite3.Cursor], None] | None = None,
               provenance: dict | None = None, allow_empty: bool = False,
               ) -> CommitInfo | None:
        """Apply ``changes`` as one commit on the branch head, atomically and durably.

        ``condition(path, current)`` runs inside the transaction for each
        change and may raise ``ConditionFailed``.  ``also(cursor)`` runs in the
        same transaction (the commit's savepoint) before the commit is written,
        e.g. removing a completed multipart upload's staging rows; if it
        raises, nothing of this commit is applied.  A batch that changes nothing
        (deleting absent paths) makes no commit and returns None.

        Group commit: concurrent callers queue their requests; whichever gets
        the write lock applies every queued request, each in its own savepoint
        (its own commit on the chain, failing alone), and makes them durable
        with one transaction (one WAL fsync).  Each caller still returns only
        once its own commit is durable.

        ``provenance`` (a JSON-able dict; its ``"job"`` key, if any, is indexed)
        is recorded for the new commit in the same transaction: where a
        pipeline's output commit came from (``provenance_of``,
        ``commit_of_job``).  ``allow_empty`` makes a commit even when
        ``changes`` change nothing (a job whose output equals the previous one
        still records its provenance).
        """
        req = _CommitRequest(repo, branch, changes, message, now_ns, condition, also,
                             provenance, allow_empty)
        self._enqueue_and_apply([req])
        if req.error is not None:
            raise req.error
        return req.result

    def commit_many(self, requests: Sequence[tuple]) -> list[tuple[CommitInfo | None,
                                                                   BaseException | None]]:
        """Several ``commit`` calls' arguments ``(repo, branch, changes, message, now_ns,
        condition)`` at once, from one thread: each is its own commit and fails alone,
        all are made durable by one transaction.  Returns ``(result, error)`` per request."""
        reqs = [_CommitRequest(*r) for r in requests]
        try:
            self._enqueue_and_apply(reqs)
        except Exception:  # noqa: BLE001 - recorded on each request
            pass
        return [(r.result, r.error) for r in reqs]

    def _enqueue_and_apply(self, reqs: list["_CommitRequest"]) -> None:
        with self._queue_lock:
            self._queue.extend(reqs)
        with self._write_lock:
            # A writer that held the lock took every queued request (ours too) and
            # finished them; otherwise ours are still queued and we apply the queue.
            if not reqs[-1].done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._apply_batch(batch)

    def _apply_batch(self, batch: list["_CommitRequest"]) -> None:
        try:
            if all(r.plain for r in batch):
                self._apply_plain(batch)
            else:
                self._apply(batch, fast=True)
        except _RetryCarefully:
            self._apply(batch, fast=False)

    def _batch_db(self):
        """The connection of all-plain batches (``sqlbatch.BatchDb``), opened on
        first use: the compiled one writes a batch with one GIL hand-over."""
        db = self._plain_db
        if db is None:
            db = self._plain_db = _sqlbatch.BatchDb(self.path, timeout_ms=30000, pragmas=(
                f"PRAGMA synchronous={'FULL' if self.durable else 'OFF'}",
                "PRAGMA foreign_keys=OFF", f"PRAGMA cache_size=-{self._cache_kib}"))
        return db

    def _apply_plain(self, batch: list["_CommitRequest"]) -> None:
        """Apply a batch of plain requests only (``_commit_plain``) through
        ``_batch_db``: ``BEGIN``, the reads (branch heads, skip steps not in
        memory) with the GIL held, then every write and the ``COMMIT`` in one
        ``run``.  A failed write rolls back and raises ``_RetryCarefully``."""
        db = self._batch_db()
        heads = _BatchHeads(db.query, self._steps)
        with _settled(batch, lambda: db.in_transaction and db.run([("ROLLBACK", ())])):
            db.begin()
            ops = self._commit_plain(heads, batch)
            ops += heads.flush()
            ops.append(("COMMIT", ()))
            try:
                db.run(ops)
            except Exception as exc:  # noqa: BLE001 - applied again, carefully
                raise _RetryCarefully from exc
        heads.committed()

    def _apply(self, batch: list["_CommitRequest"], fast: bool) -> None:
        """Apply a batch in one transaction.

        Plain requests (only Puts, no condition, no ``also``) take the fast path
        (``_commit_plain``): a run of them is written with one multi-row INSERT
        per table, no savepoints, the branch heads and the skip-pointer walk's
        steps from memory, each moved head written once (``_BatchHeads``).  Such
        a request can fail alone only before anything is written (a missing
        branch); any other error rolls the whole batch back, and it is applied
        again with a savepoint per request (``fast=False``), so each request
        still fails alone.

        Why: the committer shares the GIL with the event loop, and every
        statement gives it up and takes it back (``sqlite3_step`` runs without
        it).  Taking it back waits for the event loop to reach a system call:
        with about six statements per PUT, a batch of four commits took 2.5 ms
        under load, against 0.85 ms alone.
        """
        cur = self._writer.cursor()
        heads = _BatchHeads(_cursor_query(cur), self._steps) if fast else None
        run: list[_CommitRequest] = []
        with _settled(batch, lambda: self._writer.in_transaction and cur.execute("ROLLBACK")):
            cur.execute("BEGIN IMMEDIATE")
            for r in batch:
                if heads is not None and r.plain:
                    run.append(r)
                    continue
                if heads is not None:
                    _run_plain(cur, self._commit_plain(heads, run))
                    run = []
                    _run(cur, heads.flush())          # the careful path reads the heads
                cur.execute("SAVEPOINT one_commit")
                try:
                    r.result = self._commit_tx(cur, r)
                except Exception as exc:  # noqa: BLE001 - this request fails alone
                    cur.execute("ROLLBACK TO one_commit")
                    r.error = exc
                cur.execute("RELEASE one_commit")
            if heads is not None:
                _run_plain(cur, self._commit_plain(heads, run))
                _run(cur, heads.flush())
            cur.execute("COMMIT")
        if heads is not None:
            heads.committed()

    def _commit_plain(self, heads: "_BatchHeads", run: list["_CommitRequest"]) -> list[tuple]:
        """The statements that commit a run of plain requests, one after the other
        on their branches, with one multi-row INSERT per table.  When one of them
        fails, nothing tells which request made it fail: the batch is applied
        again carefully (``_RetryCarefully``)."""
        objects, entries, tree, commits, skips = [], [], [], [], []
        next_object = None
        for r in run:
            repo, branch, now_ns = r.repo, r.branch, r.now_ns
            try:
                parent, depth = heads.get(repo, branch)
            except NoSuchBranch as exc:               # found before anything was written
                r.error = exc
                continue
            commit_id = new_commit_id()
            for change in r.changes:
                obj = change.object
                obj_id = obj.id
                if obj_id is None:
                    if next_object is None:
                        next_object = heads.query(
                            "SELECT coalesce(max(id), 0) + 1 FROM objects", ())[0][0]
                    obj_id, next_object = next_object, next_object + 1
                    objects.append((obj_id, *_object_row(obj)))
                entries.append((repo, change.path, depth, commit_id, obj_id))
                tree.append((repo, branch, change.path, obj_id, commit_id, now_ns))
            commits.append((commit_id, repo, branch, parent, depth, now_ns, r.message))
            skip = None
            if parent is not None:
                skip = _history.skip_of(heads.step, parent, depth)
                skips.append((commit_id, skip))
            heads.moved(repo, branch, commit_id, depth, parent, skip)
            r.result = CommitInfo(commit_id, repo, branch, parent, depth, now_ns, r.message)
        return (_insert_rows("INSERT INTO objects(id, size, etag, manifest, headers, checksums, "
                             "parts) VALUES", objects)
                + _insert_rows("INSERT INTO entries VALUES", entries)
                + _insert_rows("INSERT OR REPLACE INTO tree VALUES", tree)
                + _insert_rows("INSERT INTO commits VALUES", commits)
                + _insert_rows("INSERT OR REPLACE INTO commit_skip(id, skip) VALUES", skips))

    def _commit_tx(self, cur, r: "_CommitRequest") -> CommitInfo | None:
        repo, branch, now_ns = r.repo, r.branch, r.now_ns
        row = cur.execute("SELECT head FROM branches WHERE repo=? AND name=?",
                          (repo, branch)).fetchone()
        if row is None:
            raise NoSuchBranch(f"{branch}.{repo}")
        parent = row[0]
        depth = 0
        if parent is not None:
            depth = cur.execute("SELECT depth FROM commits WHERE id=?",
                                (parent,)).fetchone()[0] + 1
        commit_id = new_commit_id()
        if r.also is not None:
            r.also(cur)
        changed = False
        for change in r.changes:
            if r.condition is not None:
                r.condition(change.path, self._stat(cur, repo, branch, change.path))
            if isinstance(change, Put):
                obj_id = change.object.id
                if obj_id is None:
                    obj_id = self._insert_object(cur, change.object)
                cur.execute("INSERT INTO entries VALUES(?,?,?,?,?)",
                            (repo, change.path, depth, commit_id, obj_id))
                cur.execute("INSERT OR REPLACE INTO tree VALUES(?,?,?,?,?,?)",
                            (repo, branch, change.path, obj_id, commit_id, now_ns))
                changed = True
            else:
                if cur.execute("DELETE FROM tree WHERE repo=? AND branch=? AND path=?",
                               (repo, branch, change.path)).rowcount:
                    cur.execute("INSERT INTO entries VALUES(?,?,?,?,NULL)",
                                (repo, change.path, depth, commit_id))
                    changed = True
        if not changed and not r.allow_empty:
            return None
        cur.execute("INSERT INTO commits VALUES(?,?,?,?,?,?,?)",
                    (commit_id, repo, branch, parent, depth, now_ns, r.message))
        if r.provenance is not None:
            cur.execute("INSERT INTO provenance VALUES(?,?,?)",
                        (commit_id, r.provenance.get("job"),
                         json.dumps(r.provenance, sort_keys=True)))
        _history.record_commit(cur, commit_id, parent, depth)
        cur.execute("UPDATE branches SET head=? WHERE repo=? AND name=?",
                    (commit_id, repo, branch))
        return CommitInfo(commit_id, repo, branch, parent, depth, now_ns, r.message)

    def get_commit(self, commit_id: str) -> CommitInfo:
        c = self._commit_row(self._reader, commit_id)
        if c is None:
            raise NoSuchCommit(commit_id)
        return c

    def provenance_of(self, commit_id: str) -> dict | None:
        """The provenance recorded with a commit (see ``commit``), or None."""
        row = self._reader.execute("SELECT doc FROM provenance WHERE commit_id=?",
                                   (commit_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def commit_of_job(self, job_id: str) -> str | None:
        """The commit whose provenance names pipeline job ``job_id``, if it was made."""
        row = self._reader.execute("SELECT commit_id FROM provenance WHERE job=?",
                                   (job_id,)).fetchone()
        return row[0] if row else None

    def log(self, repo: str, branch: str, limit: int = 100) -> list[CommitInfo]:
        head = self.get_branch(repo, branch).head
        out = []
        while head is not None and len(out) < limit:
            c = self.get_commit(head)
            out.append(c)
            head = c.parent
        return out

    @staticmethod
    def _commit_row(cur, commit_id: str) -> CommitInfo | None:
        row = cur.execute(
            "SELECT id, repo, branch, parent, depth, time_ns, message FROM commits WHERE id=?",
            (commit_id,)).fetchone()
        return CommitInfo(*row) if row else None

    def _materialise_tree(self, cur, repo: str, branch: str, commit: CommitInfo,
                          progress=None) -> None:
        """Fill ``tree`` for a branch created at ``commit`` from the commit's history."""
        ancestors = {}
        c: CommitInfo | None = commit
        while c is not None:
            ancestors[c.id] = c
            c = self._commit_row(cur, c.parent) if c.parent else None
        rows = cur.execute(
            "SELECT e.path, e.depth, e.commit_id, e.object, a.version FROM entries e "
            "LEFT JOIN version_alias a ON a.repo = e.repo AND a.path = e.path "
            "AND a.commit_id = e.commit_id WHERE e.repo=? "
            "ORDER BY e.path, e.depth DESC", (repo,)).fetchall()
        seen = set()
        if progress is not None:
            rows = progress(rows, "branch create: history rows", unit="row")
        for path, _depth, cid, obj, alias in rows:
            if path in seen or cid not in ancestors:
                continue
            seen.add(path)
            if obj is not None:     # a restore entry names the version it restored
                shown = alias or cid
                cur.execute("INSERT INTO tree VALUES(?,?,?,?,?,?)",
                            (repo, branch, path, obj, shown, ancestors[shown].time_ns))

    # -- objects ------------------------------------------------------------------------
    @staticmethod
    def _insert_object(cur, obj: ObjectInfo) -> int:
        cur.execute(
            "INSERT INTO objects(size, etag, manifest, headers, checksums, parts) "
            "VALUES(?,?,?,?,?,?)", _object_row(obj))
        return cur.lastrowid

    _FILE_COLS = ("t.path, t.commit_id, t.time_ns, o.id, o.size, o.etag, o.manifest, o.headers, "
                  "o.checksums, o.parts")

    @staticmethod
    def _file(row) -> FileInfo:
        path, commit_id, time_ns, oid, size, etag, manifest, headers, checksums, parts = row
        obj = ObjectInfo(size=size, etag=etag, manifest=manifest, headers=json.loads(headers),
                         checksums=json.loads(checksums), parts=tuple(json.loads(parts)), id=oid)
        return FileInfo(path, obj, commit_id, time_ns)

    def _stat(self, cur, repo: str, branch: str, path: str) -> FileInfo | None:
        row = cur.execute(
            f"SELECT {self._FILE_COLS} FROM tree t JOIN objects o ON o.id = t.object "
            "WHERE t.repo=? AND t.branch=? AND t.path=?", (repo, branch, path)).fetchone()
        return self._file(row) if row else None

    # -- reading files ------------------------------------------------------------------
    def stat(self, repo: str, branch: str, path: str) -> FileInfo:
        info = self._stat(self._reader, repo, branch, path)
        if info is None:
            self.get_branch(repo, branch)  # NoSuchBranch first
            raise NoSuchFile(path)
        return info

    def stat_nowait(self, repo: str, branch: str, path: str) -> FileInfo:
        """``stat`` for an event loop: never waits for a lock (WAL readers rarely meet
        one: crash recovery at start); raises ``MetadataBusy`` instead."""
        try:
            conn = getattr(self._local, "nowait", None)
            if conn is None:
                conn = self._connect(timeout=0.0)
                conn.execute("PRAGMA query_only=ON")
                self._local.nowait = conn
            info = self._stat(conn, repo, branch, path)
            if info is None and conn.execute("SELECT 1 FROM branches WHERE repo=? AND name=?",
                                             (repo, branch)).fetchone() is None:
                raise NoSuchBranch(f"{branch}.{repo}")
        except sqlite3.OperationalError as exc:
            raise MetadataBusy(str(exc)) from None
        if info is None:
            raise NoSuchFile(path)
        return info

    def list_files(self, repo: str, branch: str, prefix: str = "", after: str | None = None,
                   limit: int = 1000, *, inclusive: bool = False) -> list[FileInfo]:
        """Files of a branch head in UTF-8 byte order that start with ``prefix``.

        Only paths ``> after`` (``>= after`` with ``inclusive``) are returned.
        """
        if after is None or after < prefix:
            lo, op = prefix, ">="
        else:
            lo, op = after, ">=" if inclusive else ">"
        sql = (f"SELECT {self._FILE_COLS} FROM tree t JOIN objects o ON o.id = t.object "
               f"WHERE t.repo=? AND t.branch=? AND t.path {op} ?")
        args: list = [repo, branch, lo]
        if prefix:
            upper = prefix_upper_bound(prefix)
            if upper is not None:
                sql += " AND t.path < ?"
                args.append(upper)
        sql += " ORDER BY t.path LIMIT ?"
        args.append(limit)
        return [self._file(r) for r in self._reader.execute(sql, args)]

    # -- statistics ---------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        r = self._reader
        return {
            "repos": r.execute("SELECT count(*) FROM repos").fetchone()[0],
            "branches": r.execute("SELECT count(*) FROM branches").fetchone()[0],
            "commits": r.execute("SELECT count(*) FROM commits").fetchone()[0],
            "objects": r.execute("SELECT count(*) FROM objects").fetchone()[0],
            "files": r.execute("SELECT count(*) FROM tree").fetchone()[0],
            "logical_bytes": r.execute(
                "SELECT coalesce(sum(o.size), 0) FROM tree t JOIN objects o ON o.id=t.object"
            ).fetchone()[0],
            "object_bytes": r.execute("SELECT coalesce(sum(size), 0) FROM objects").fetchone()[0],
        }

    def referenced_manifests(self) -> Iterable[bytes]:
        """Every manifest of a stored object or staged upload part (for GC marking)."""
        for (blob,) in self._reader.execute("SELECT manifest FROM objects"):
            yield blob
        yield from self.uploads.referenced_manifests()

    def delete_unreferenced_objects(self) -> int:
        """Remove object rows no tree row or history entry points at; returns how many."""

        def tx(cur):
            return cur.execute(
                "DELETE FROM objects WHERE id NOT IN (SELECT object FROM entries "
                "WHERE object IS NOT NULL) AND id NOT IN (SELECT object FROM tree)").rowcount

        return self._write(tx)

    @cached_property
    def uploads(self):
        """Multipart upload staging in this database (``pfs.uploads.UploadStaging``); its
        tables are created on first use (PostgreSQL has them from its migrations)."""
        self.apply_schema(_uploads.SCHEMA)
        return UploadStaging(self)

    # -- S3 versioning (pfs.versioning, docs/versioning.md) ------------------------------
    def set_versioning(self, repo: str, branch: str, status: str, now_ns: int) -> bool:
        """Set the bucket's versioning status (``Enabled`` or ``Suspended``).

        Contract: one write transaction that reads the branch head and appends a
        ``versioning_changes`` row ``(repo, branch, seq+1, status, head, head depth,
        now_ns)`` unless the status is already that (returns False, nothing
        written).  Commits made on the branch after it (deeper than that head) are
        *null* while the last change says ``Suspended``.  Raises ``NoSuchBranch``,
        ``InvalidVersionStatus``.
        """
        return self._write(lambda cur: _versioning.set_status(cur, repo, branch, status,
                                                              now_ns))

    def expunge_version(self, repo: str, branch: str, path: str, version: str, now_ns: int,
                        principal: str | None = None) -> "_versioning.ExpungeResult":
        """Delete one version of a key for good (S3 DeleteObject ``?versionId=``).

        ``version`` is a commit id or ``null``, as the branch's version list shows
        it.  Contract, in ONE write transaction (``BEGIN IMMEDIATE``, the writer
        lock, so it serialises with commits): find the entries that are that
        version (the entry of its commit, restore entries showing it; for ``null``
        every null entry on the branch's lineage), record each in ``expunged``
        (with ``now_ns``, ``principal``, the branch) and set its ``object`` to
        NULL; drop every branch's ``tree`` row that names the version; if it was
        the branch's current version and an older object version remains, add a
        restore commit on the head (entry + ``version_alias`` + tree row + skip
        pointer, head moved).  Commit rows are never changed.  Object rows are
        left for ``delete_unreferenced_objects`` (GC).  A version not in the
        branch's view is a no-op (``removed`` empty).  Raises ``NoSuchBranch``.
        """
        return self._write(lambda cur: _versioning.expunge(
            cur, repo, branch, path, version, now_ns, principal, new_commit_id))

def _object_row(obj: ObjectInfo) -> tuple:
    # json.dumps of an empty dict or list is "{}" or "[]": skipped for the usual object
    return (obj.size, obj.etag, obj.manifest,
            json.dumps(obj.headers, sort_keys=True) if obj.headers else "{}",
            json.dumps(obj.checksums, sort_keys=True) if obj.checksums else "{}",
            json.dumps(list(obj.parts)) if obj.parts else "[]")


_ROWS_SQL: dict[tuple[str, int, int], str] = {}


@contextlib.contextmanager
def _settled(batch: list["_CommitRequest"], rollback):
    """Around a batch's transaction: on an error, ``rollback()`` and give every
    request that error (its own, if it failed alone before); on ``_RetryCarefully``
    leave their results unset, the batch is applied again.  Otherwise they are done."""
    retry = False
    try:
        yield
    except BaseException as exc:
        retry = isinstance(exc, _RetryCarefully)
        rollback()
        for r in batch:
            r.result, r.error = (None, None) if retry else (None, r.error or exc)
        raise
    finally:
        if not retry:
            for r in batch:
                r.done = True


def _cursor_query(cur):
    """``query(sql, params) -> rows`` over a ``sqlite3`` cursor."""
    return lambda sql, params: cur.execute(sql, params).fetchall()


def _run(cur, ops: list[tuple]) -> None:
    for sql, params in ops:
        cur.execute(sql, params)


def _run_plain(cur, ops: list[tuple]) -> None:
    try:
        _run(cur, ops)
    except Exception as exc:  # noqa: BLE001 - applied again, carefully
        raise _RetryCarefully from exc


def _insert_rows(head: str, rows: list[tuple]) -> list[tuple]:
    """``head`` + ``(?,..),(?,..)...``: the rows as a few ``(sql, params)``, in
    groups of 64, 32, ..., 1 rows (a handful of distinct statements, each prepared
    once and kept in the connection's statement cache)."""
    ops = []
    i, n = 0, len(rows)
    while i < n:
        k = 64
        while k > n - i:
            k >>= 1
        group = rows[i:i + k]
        width = len(group[0])
        sql = _ROWS_SQL.get((head, k, width))
        if sql is None:
            one = "(" + ",".join("?" * width) + ")"
            sql = _ROWS_SQL[(head, k, width)] = head + ",".join([one] * k)
        ops.append((sql, [v for row in group for v in row]))
        i += k
    return ops


def new_commit_id() -> str:
    """32 hex digits: the time in nanoseconds, then 64 random bits (not secret: a
    version id names a commit, it grants nothing).  Ids made one
    after the other sort together, so a batch's new rows in the tables and indexes
    keyed by commit id land in the same last B-tree page (with random ids each
    commit dirtied pages of its own in three of them: more WAL bytes to write and
    sync per commit, and more to checkpoint)."""
    return f"{time.time_ns() & (1 << 64) - 1:016x}{_ids.getrandbits(64):016x}"


# seeded from the OS once: ``os.urandom`` per id gives up the GIL (a system call),
# which the committer then waits to take back from the event loop
_ids = random.Random(os.urandom(32))


class _CommitRequest:
    __slots__ = ("repo", "branch", "changes", "message", "now_ns", "condition", "also", "done",
                 "result", "error", "plain", "provenance", "allow_empty")

    def __init__(self, repo, branch, changes, message, now_ns, condition, also=None,
                 provenance=None, allow_empty=False):
        self.repo, self.branch, self.changes = repo, branch, changes
        self.message, self.now_ns, self.condition = message, now_ns, condition
        self.also = also
        self.provenance, self.allow_empty = provenance, allow_empty
        self.done = False
        self.result: CommitInfo | None = None
        self.error: BaseException | None = None
        # only Puts, nothing to check or add: the fast path (SqliteMetadata._apply)
        self.plain = (condition is None and also is None and provenance is None
                      and not allow_empty and bool(changes)
                      and all(type(c) is Put for c in changes))


class _RetryCarefully(Exception):
    """A fast-path commit failed after writing: apply the batch again with savepoints."""


class _BatchHeads:
    """The branch heads and skip-walk steps of one batch's transaction, in memory.

    ``get`` reads a branch head (and its depth) once per batch; ``moved`` records
    each new commit.  ``flush`` writes the moved heads (once per branch, before
    the transaction commits or a careful-path request reads them).  ``step``
    serves the skip-pointer walk (``history._walk``) from the commits of this
    transaction, then from the cache of committed ones, then from the database;
    ``committed`` moves what this transaction learnt into that cache.
    """

    CACHE_MAX = 8192

    def __init__(self, query, cache: dict):
        self.query = query                  # (sql, params) -> rows, in the transaction
        self.cache = cache
        self.heads: dict[tuple[str, str], list] = {}
        self.fresh: dict[str, tuple[str | None, str | None]] = {}
        self._db_step = _history.query_step(query)

    def get(self, repo: str, branch: str) -> tuple[str | None, int]:
        """(head, depth of a new commit on it).  Raises NoSuchBranch."""
        h = self.heads.get((repo, branch))
        if h is None:
            rows = self.query(
                "SELECT b.head, c.depth FROM branches b LEFT JOIN commits c ON c.id = b.head "
                "WHERE b.repo=? AND b.name=?", (repo, branch))
            if not rows:
                raise NoSuchBranch(f"{branch}.{repo}")
            h = self.heads[(repo, branch)] = [rows[0][0], rows[0][1], False]
        return h[0], 0 if h[0] is None else h[1] + 1

    def moved(self, repo: str, branch: str, commit_id: str, depth: int,
              parent: str | None, skip: str | None) -> None:
        self.heads[(repo, branch)] = [commit_id, depth, True]
        self.fresh[commit_id] = (parent, skip)

    def step(self, cid: str) -> tuple[str | None, str | None]:
        row = self.fresh.get(cid) or self.cache.get(cid)
        if row is None:
            row = self.fresh[cid] = tuple(self._db_step(cid))
        return row

    def flush(self) -> list[tuple]:
        """The statements that write the moved heads (the heads are read again
        after them)."""
        ops = [("UPDATE branches SET head=? WHERE repo=? AND name=?", (head, repo, branch))
               for (repo, branch), (head, _depth, moved) in self.heads.items() if moved]
        self.heads.clear()
        return ops

    def committed(self) -> None:
        cache = self.cache
        cache.update(self.fresh)
        if len(cache) > self.CACHE_MAX:      # forget the oldest half
            for cid in list(itertools.islice(cache, len(cache) - self.CACHE_MAX // 2)):
                del cache[cid]
