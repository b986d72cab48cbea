"""Durable pipeline and job state of a data folder on SQLite: ``<data>/pps.sqlite``.

Theory of operation
-------------------
* ``pipelines``: one row per pipeline (its name is its output repo), with the
  current spec version; ``pipeline_specs`` keeps every version's canonical
  JSON, so a job and its output commit name the exact spec they ran.
* ``jobs``: one row per job: state (``pps.jobs.JobState``, moved only through
  its transition table), the input commits (JSON), times, output commit,
  reason, datum counts, and ``stop_requested`` (set by ``s3gw job stop``; the
  runner polls it).  The queries are ``pps.sqlstore``'s, shared with the
  PostgreSQL store.
* Job logs are files, ``<data>/pps/jobs/<job>/log``, appended by the runner
  (``append_log``, at most ``log_limit`` bytes) and read by ``s3gw job logs``
  and the console.
* The runner's lock is ``<data>/pps/runner.lock`` (an ``flock``, which the kernel
  drops when its process dies): the one runner of a folder among ``--workers``.
  Its holder cannot lose it while it lives, so no output commit needs fencing
  (``commit_guard`` is None).

The CLI writes here directly (as ``s3gw auth`` writes ``auth.sqlite``); a
running server notices changes through ``PRAGMA data_version``
(:meth:`PpsStore.data_version`), so ``pipeline create`` takes effect within the
runner's poll interval without an admin API.  Writes are short ``BEGIN
IMMEDIATE`` transactions; every method blocks (the server calls them in
worker threads).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time

from .interface import LOG_LIMIT, JobFenced, NoSuchJob, NoSuchPipeline, PipelineRecord
from .sqlstore import SqlPpsStore, cut

__all__ = ["PpsStore", "PipelineRecord", "NoSuchPipeline", "NoSuchJob", "JobFenced", "PPS_FILE"]

PPS_FILE = "pps.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pipelines(
    name TEXT PRIMARY KEY, version INTEGER NOT NULL, created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pipeline_specs(
    name TEXT NOT NULL, version INTEGER NOT NULL, spec TEXT NOT NULL, created_ns INTEGER NOT NULL,
    PRIMARY KEY(name, version));
CREATE TABLE IF NOT EXISTS jobs(
    id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, spec_version INTEGER NOT NULL,
    state TEXT NOT NULL, inputs TEXT NOT NULL, created_ns INTEGER NOT NULL,
    started_ns INTEGER, finished_ns INTEGER, output_commit TEXT, reason TEXT NOT NULL DEFAULT '',
    datums INTEGER NOT NULL DEFAULT 0, datums_failed INTEGER NOT NULL DEFAULT 0,
    restart_of TEXT, stop_requested INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS jobs_pipeline ON jobs(pipeline, created_ns);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
"""


class _FileRunnerLock:
    """``<data>/pps/runner.lock``: an exclusive ``flock`` held while the file is open."""

    def __init__(self, path: str):
        self.path = path
        self._file = None

    def try_acquire(self) -> bool:
        if self._file is not None:
            return True
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        self._file = f
        return True

    def held(self) -> bool:
        return self._file is not None     # an flock is not lost while its file is open

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class PpsStore(SqlPpsStore):
    """Pipelines and jobs of one data folder (``PipelineStore`` on SQLite)."""

    def __init__(self, data_dir: str, *, create: bool = True, log_limit: int = LOG_LIMIT):
        self.data_dir = data_dir
        self.path = os.path.join(data_dir, PPS_FILE)
        self.log_limit = log_limit
        if not create and not os.path.exists(self.path):
            raise FileNotFoundError(self.path)
        self._lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                     timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        with self._lock:
            self._conn.executescript(_SCHEMA)
        self._version: int | None = None
        self._outputs: frozenset[str] = frozenset()
        self._checked = 0.0

    def close(self) -> None:
        self._conn.close()

    def _tx(self, fn):
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                result = fn(c)
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")
            return result

    def _read(self, sql: str, args=()) -> list:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # -- change detection ---------------------------------------------------------------
    def data_version(self) -> int:
        """Changes whenever another connection (the CLI) committed to this file."""
        return self._read("PRAGMA data_version")[0][0]

    def output_repos(self, max_age: float = 0.0) -> frozenset[str]:
        """The repos that only their pipeline's jobs may write (pipeline names).

        Re-read at most every ``max_age`` seconds (one ``PRAGMA data_version``
        when nothing changed: a local read, cheap enough for the event loop), like
        the auth store's snapshot."""
        now = time.monotonic()
        if max_age > 0 and self._version is not None and now - self._checked < max_age:
            return self._outputs
        with self._lock:
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._version:
                self._outputs = frozenset(
                    r[0] for r in self._conn.execute("SELECT name FROM pipelines"))
                self._version = version
            self._checked = now
        return self._outputs

    def refresh_outputs(self) -> None:
        self.output_repos(0.0)

    # -- logs: files in the folder ----------------------------------------------------
    def _log_path(self, job_id: str) -> str:
        return os.path.join(self.data_dir, "pps", "jobs", job_id, "log")

    def append_log(self, job_id: str, data: bytes) -> int:
        """Append to the job's log file what fits under ``log_limit``; the bytes kept
        (0 for a job that does not exist)."""
        if not data or not self._read("SELECT 1 FROM jobs WHERE id=?", (job_id,)):
            return 0
        path = self._log_path(job_id)
        with self._log_lock:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "ab") as f:
                kept = cut(data, f.seek(0, os.SEEK_END), self.log_limit)
                f.write(kept)
        return len(kept)

    def read_log(self, job_id: str, offset: int = 0, limit: int = 1 << 20) -> bytes:
        try:
            with open(self._log_path(job_id), "rb") as f:
                f.seek(offset)
                return f.read(limit)
        except FileNotFoundError:
            return b""

    def log_size(self, job_id: str) -> int:
        try:
            return os.path.getsize(self._log_path(job_id))
        except FileNotFoundError:
            return 0

    # -- the runner -------------------------------------------------------------------
    def runner_lock(self) -> _FileRunnerLock:
        return _FileRunnerLock(os.path.join(self.data_dir, "pps", "runner.lock"))

    def commit_guard(self, job_id: str) -> None:
        return None          # one runner per folder by the kernel's flock: nothing to fence
