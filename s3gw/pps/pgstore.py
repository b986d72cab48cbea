"""Pipeline and job state in the PostgreSQL database of the metadata: one state for
every gateway of that database.

Theory of operation
-------------------
The tables are migration 4 of ``pfs.postgres.MIGRATIONS``: ``pps_pipelines``,
``pps_specs``, ``pps_jobs`` (the SQLite store's three tables, the queries
``pps.sqlstore``'s), ``pps_job_logs`` and ``pps_changes``.  Every gateway of the
database sees the same pipelines and jobs: ``s3gw pipeline``/``job`` from any
gateway's folder (or with ``--meta``) read and change them, and ``job stop``
sets the flag the one runner polls, wherever it runs.

* **Transactions** are READ COMMITTED with row locks (``FOR UPDATE`` on a
  job before its state moves, ``FOR SHARE`` on a pipeline before a job of it
  is created; a pipeline's row before its jobs' rows, always), retried whole on
  a deadlock or serialization failure.
* **Change detection**: ``pps_changes.n`` counts pipeline creations, updates
  and deletions, in their transactions: ``data_version`` is one indexed read.
  ``output_repos`` never goes to the database (the S3 layer calls it on the
  event loop): it answers from the snapshot ``refresh_outputs`` took, which
  ``app`` refreshes every 0.2 s in a worker thread on every gateway.
* **Logs**: a job's log is rows of ``pps_job_logs`` (``start``: the byte offset
  of the piece, each at most ``PIECE`` bytes), appended under the job's row lock
  with the running size in ``pps_jobs.log_bytes``; at most ``log_limit`` bytes
  per job, then one line saying it was cut.  A read at an offset is one index
  range.  Deleting a pipeline deletes its jobs' logs.
* **The runner's lock** is a session-level advisory lock
  (``pg_try_advisory_lock``) on a connection of its own: held while that
  session lives, released by PostgreSQL when the session ends -- the gateway
  closing it, or dying (its socket closes; a host that vanishes is noticed by
  the keepalives set on the session, within about 25 s).  ``held`` asks the
  session (``SELECT 1``); a holder that finds it gone stops its jobs.
* **The output fence**: ``commit_guard(job)`` is run by the metadata store inside
  the output commit's transaction (same database, same tables): it locks the job's
  row and refuses unless the job is FINISHING.  ``settle`` locks the same row
  before it asks whether the commit exists.  So a runner that lost its lock (a
  partition, a session killed under it) cannot commit the output of a job a new
  runner already failed and queued again: no duplicate output commit.

Known weaknesses: like ``pfs.postgres``, a lost connection is not re-opened (the
runner lock's is: ``try_acquire`` opens a new one).
"""

from __future__ import annotations

import os
import socket
import threading
import time

import psycopg
from psycopg import errors as pg_errors

from ..pfs.postgres import _check_schema, _connect, _QConn
from .interface import LOG_LIMIT, CommitGuard, JobFenced
from .jobs import JobState
from .sqlstore import SqlPpsStore, cut

__all__ = ["PostgresPpsStore", "PIECE", "RUNNER_LOCK"]

PIECE = 64 << 10              # bytes per log row
RUNNER_LOCK = 0x53337070      # the advisory lock key of the pipeline runner ("S3pp")
_RETRY = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)
_RETRIES = 20
# the lock's session: the client notices a vanished server, the server a vanished client
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
               "keepalives_count": 3, "connect_timeout": 10}


class _AdvisoryLock:
    """The pipeline runner's lock: ``pg_try_advisory_lock(RUNNER_LOCK)`` on a session of
    its own (see the module docstring)."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self._conn: psycopg.Connection | None = None
        self._held = False

    def try_acquire(self) -> bool:
        if self._held:
            return self.held()
        try:
            if self._conn is None or self._conn.closed:
                name = f"s3gw pipeline runner {socket.gethostname()}:{os.getpid()}"[:63]
                self._conn = psycopg.connect(self.dsn, autocommit=True,
                                             application_name=name, **_KEEPALIVES)
                for setting, value in (("tcp_keepalives_idle", 10),
                                       ("tcp_keepalives_interval", 5),
                                       ("tcp_keepalives_count", 3)):
                    self._conn.execute(f"SET {setting} = {value}")
            self._held = bool(self._conn.execute("SELECT pg_try_advisory_lock(%s)",
                                                 (RUNNER_LOCK,)).fetchone()[0])
        except psycopg.Error:
            self.release()
            return False
        return self._held

    def held(self) -> bool:
        if not self._held or self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error:
            self.release()
            return False
        return True

    def release(self) -> None:
        """Unlock, then close the session.  (Closing alone drops the lock too, but only
        once the server's backend has exited: an explicit unlock hands it over at once.)"""
        held, self._held = self._held, False
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if held and not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (RUNNER_LOCK,))
        except psycopg.Error:
            pass                                   # a session gone has dropped it
        finally:
            try:
                conn.close()
            except psycopg.Error:
                pass


class PostgresPpsStore(SqlPpsStore):
    """Pipelines and jobs in the PostgreSQL database ``dsn`` (``PipelineStore``)."""

    PIPELINES = "pps_pipelines"
    SPECS = "pps_specs"
    JOBS = "pps_jobs"
    FOR_UPDATE = " FOR UPDATE"
    FOR_SHARE = " FOR SHARE"

    def __init__(self, dsn: str, *, log_limit: int = LOG_LIMIT):
        self.dsn = dsn
        self.log_limit = log_limit
        self._lock = threading.Lock()
        self._conn = _connect(dsn)
        try:
            _check_schema(self._conn, dsn)
        except BaseException:
            self._conn.close()
            raise
        self._q = _QConn(self._conn)
        self._version: int | None = None
        self._outputs: frozenset[str] = frozenset()
        self.refresh_outputs()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _tx(self, fn):
        with self._lock:
            for attempt in range(_RETRIES):
                try:
                    with self._conn.transaction():
                        return fn(self._q)
                except _RETRY:
                    time.sleep(0.002 * (attempt + 1))
            raise pg_errors.SerializationFailure("pipeline store: too many retries")

    def _read(self, sql: str, args=()) -> list:
        with self._lock:
            return self._q.execute(sql, args).fetchall()

    def _pipelines_changed(self, c) -> None:
        c.execute("UPDATE pps_changes SET n = n + 1 WHERE key = 'pipelines'")

    def _forget_logs(self, c, job_ids: list[str]) -> None:
        if job_ids:
            c.execute("DELETE FROM pps_job_logs WHERE job = ANY(?)", (job_ids,))

    # -- change detection ---------------------------------------------------------------
    def data_version(self) -> int:
        """Changes whenever a pipeline is created, updated or deleted, by any gateway."""
        return int(self._read("SELECT n FROM pps_changes WHERE key = 'pipelines'")[0][0])

    def output_repos(self, max_age: float = 0.0) -> frozenset[str]:
        """The repos only their pipeline's jobs may write, as of the last
        ``refresh_outputs`` (no database round trip: this runs on the event loop)."""
        return self._outputs

    def refresh_outputs(self) -> None:
        version = self.data_version()
        if version != self._version:
            names = frozenset(r[0] for r in self._read("SELECT name FROM pps_pipelines"))
            self._outputs, self._version = names, version

    # -- logs: rows of pps_job_logs -----------------------------------------------------
    def append_log(self, job_id: str, data: bytes) -> int:
        """Append what fits under ``log_limit``, in pieces of at most ``PIECE`` bytes; the
        bytes kept (0 for a job that does not exist)."""
        if not data:
            return 0

        def tx(c):
            row = c.execute("SELECT log_bytes FROM pps_jobs WHERE id=? FOR UPDATE",
                            (job_id,)).fetchone()
            if row is None:
                return 0
            size = int(row[0])
            kept = cut(data, size, self.log_limit)
            for i in range(0, len(kept), PIECE):
                c.execute("INSERT INTO pps_job_logs(job, start, data) VALUES(?,?,?)",
                          (job_id, size + i, kept[i:i + PIECE]))
            if kept:
                c.execute("UPDATE pps_jobs SET log_bytes = ? WHERE id=?",
                          (size + len(kept), job_id))
            return len(kept)

        return self._tx(tx)

    def read_log(self, job_id: str, offset: int = 0, limit: int = 1 << 20) -> bytes:
        if limit <= 0:
            return b""
        rows = self._read("SELECT start, data FROM pps_job_logs WHERE job=? AND start > ? "
                          "AND start < ? ORDER BY start", (job_id, offset - PIECE, offset + limit))
        out = bytearray()
        for start, data in rows:
            data = bytes(data)
            lo = max(offset - start, 0)
            hi = min(offset + limit - start, len(data))
            if hi > lo:
                out += data[lo:hi]
        return bytes(out)

    def log_size(self, job_id: str) -> int:
        rows = self._read("SELECT log_bytes FROM pps_jobs WHERE id=?", (job_id,))
        return int(rows[0][0]) if rows else 0

    # -- the runner -------------------------------------------------------------------
    def runner_lock(self) -> _AdvisoryLock:
        return _AdvisoryLock(self.dsn)

    def commit_guard(self, job_id: str) -> CommitGuard:
        """The output fence (module docstring): run by the metadata store, on its cursor,
        inside the output commit's transaction."""

        def guard(cur) -> None:
            row = cur.execute("SELECT state FROM pps_jobs WHERE id=? FOR UPDATE",
                              (job_id,)).fetchone()
            if row is None:
                raise JobFenced(f"job {job_id} no longer exists: nothing committed")
            if row[0] != JobState.FINISHING.value:
                raise JobFenced(f"job {job_id} is {row[0]}, no longer FINISHING (another "
                                "runner settled it): nothing committed")

        return guard
