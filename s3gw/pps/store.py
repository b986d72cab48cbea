"""Durable pipeline and job state: ``<data>/pps.sqlite``.

Theory of operation
-------------------
* ``pipelines``: one row per pipeline (its name is its output repo), with the
  current spec version; ``pipeline_specs`` keeps every version's canonical
  JSON, so a job and its output commit name the exact spec they ran.
* ``jobs``: one row per job: state (``pps.jobs.JobState``, moved only through
  its transition table), the input commits (JSON), times, output commit,
  reason, datum counts, and ``stop_requested`` (set by ``s3gw job stop``; the
  runner polls it).

The CLI writes here directly (as ``s3gw auth`` writes ``auth.sqlite``); a
running server notices changes through ``PRAGMA data_version``
(:meth:`PpsStore.changed`), so ``pipeline create`` takes effect within the
runner's poll interval without an admin API.  Writes are short ``BEGIN
IMMEDIATE`` transactions; every method blocks (the server calls them in
worker threads).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from typing import Iterable

from .jobs import FINAL, InputCommit, JobInfo, JobState, next_state
from .spec import PipelineSpec, parse_spec

__all__ = ["PpsStore", "PipelineRecord", "NoSuchPipeline", "NoSuchJob", "PPS_FILE"]

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


class NoSuchPipeline(LookupError):
    pass


class NoSuchJob(LookupError):
    pass


class PipelineRecord:
    __slots__ = ("name", "version", "spec", "created_ns", "updated_ns")

    def __init__(self, name: str, version: int, spec: PipelineSpec, created_ns: int,
                 updated_ns: int):
        self.name, self.version, self.spec = name, version, spec
        self.created_ns, self.updated_ns = created_ns, updated_ns


_JOB_COLS = ("id, pipeline, spec_version, state, inputs, created_ns, started_ns, finished_ns, "
             "output_commit, reason, datums, datums_failed, restart_of, stop_requested")


def _job(row) -> JobInfo:
    (jid, pipeline, version, state, inputs, created, started, finished, output, reason,
     datums, failed, restart_of, stop) = row
    return JobInfo(id=jid, pipeline=pipeline, spec_version=version, state=JobState(state),
                   inputs=tuple(InputCommit(**d) for d in json.loads(inputs)),
                   created_ns=created, started_ns=started, finished_ns=finished,
                   output_commit=output, reason=reason, datums=datums, datums_failed=failed,
                   restart_of=restart_of, stop_requested=bool(stop))


class PpsStore:
    """Pipelines and jobs of one data folder."""

    def __init__(self, data_dir: str, *, create: bool = True):
        self.path = os.path.join(data_dir, PPS_FILE)
        if not create and not os.path.exists(self.path):
            raise FileNotFoundError(self.path)
        self._lock = threading.Lock()
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
        when nothing changed), like the auth store's snapshot."""
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

    # -- pipelines ----------------------------------------------------------------------
    def put_pipeline(self, spec: PipelineSpec, now_ns: int, *, update: bool) -> int:
        """Create (``update=False``) or update a pipeline; returns its new spec version.

        Raises:
            ValueError: it exists (create) or does not (update).
        """

        def tx(c):
            row = c.execute("SELECT version FROM pipelines WHERE name=?", (spec.name,)).fetchone()
            if row is not None and not update:
                raise ValueError(f"pipeline {spec.name!r} exists already (use pipeline update)")
            if row is None and update:
                raise NoSuchPipeline(spec.name)
            version = 1 if row is None else row[0] + 1
            if row is None:
                c.execute("INSERT INTO pipelines VALUES(?,?,?,?)", (spec.name, 1, now_ns, now_ns))
            else:
                c.execute("UPDATE pipelines SET version=?, updated_ns=? WHERE name=?",
                          (version, now_ns, spec.name))
            c.execute("INSERT INTO pipeline_specs VALUES(?,?,?,?)",
                      (spec.name, version, spec.document, now_ns))
            return version

        return self._tx(tx)

    def delete_pipeline(self, name: str) -> None:
        """Forget a pipeline, its specs and its jobs (running ones must be stopped first)."""

        def tx(c):
            if c.execute("DELETE FROM pipelines WHERE name=?", (name,)).rowcount == 0:
                raise NoSuchPipeline(name)
            c.execute("DELETE FROM pipeline_specs WHERE name=?", (name,))
            c.execute("DELETE FROM jobs WHERE pipeline=?", (name,))

        self._tx(tx)

    def pipelines(self) -> list[PipelineRecord]:
        rows = self._read(
            "SELECT p.name, p.version, s.spec, p.created_ns, p.updated_ns FROM pipelines p "
            "JOIN pipeline_specs s ON s.name=p.name AND s.version=p.version ORDER BY p.name")
        return [PipelineRecord(n, v, parse_spec(json.loads(s)), c, u) for n, v, s, c, u in rows]

    def pipeline(self, name: str) -> PipelineRecord:
        for p in self.pipelines():
            if p.name == name:
                return p
        raise NoSuchPipeline(name)

    def spec_document(self, name: str, version: int) -> str:
        rows = self._read("SELECT spec FROM pipeline_specs WHERE name=? AND version=?",
                          (name, version))
        if not rows:
            raise NoSuchPipeline(f"{name} version {version}")
        return rows[0][0]

    # -- jobs ---------------------------------------------------------------------------
    def create_job(self, pipeline: str, spec_version: int, inputs: Iterable[InputCommit],
                   now_ns: int, restart_of: str | None = None) -> JobInfo:
        """A CREATED job of an existing pipeline (``NoSuchPipeline`` otherwise, decided in
        the same transaction, so a job never outlives a deleted pipeline's rows)."""
        jid = uuid.uuid4().hex
        doc = json.dumps([i.__dict__ for i in inputs])

        def tx(c):
            if c.execute("SELECT 1 FROM pipelines WHERE name=?", (pipeline,)).fetchone() is None:
                raise NoSuchPipeline(pipeline)
            c.execute("INSERT INTO jobs(id, pipeline, spec_version, state, inputs, created_ns, "
                      "restart_of) VALUES(?,?,?,?,?,?,?)",
                      (jid, pipeline, spec_version, JobState.CREATED.value, doc, now_ns,
                       restart_of))

        self._tx(tx)
        return self.job(jid)

    def job(self, job_id: str) -> JobInfo:
        rows = self._read(f"SELECT {_JOB_COLS} FROM jobs WHERE id=?", (job_id,))
        if not rows:
            rows = self._read(f"SELECT {_JOB_COLS} FROM jobs WHERE id LIKE ? || '%'", (job_id,))
            if len(rows) != 1:
                raise NoSuchJob(job_id)
        return _job(rows[0])

    def jobs(self, pipeline: str | None = None, limit: int = 1000) -> list[JobInfo]:
        """Jobs, newest first."""
        if pipeline is None:
            rows = self._read(f"SELECT {_JOB_COLS} FROM jobs ORDER BY created_ns DESC, id "
                              "LIMIT ?", (limit,))
        else:
            rows = self._read(f"SELECT {_JOB_COLS} FROM jobs WHERE pipeline=? "
                              "ORDER BY created_ns DESC, id LIMIT ?", (pipeline, limit))
        return [_job(r) for r in rows]

    def unfinished_jobs(self) -> list[JobInfo]:
        rows = self._read(f"SELECT {_JOB_COLS} FROM jobs WHERE state NOT IN (?,?,?) "
                          "ORDER BY created_ns, id", tuple(s.value for s in FINAL))
        return [_job(r) for r in rows]

    def latest_job(self, pipeline: str) -> JobInfo | None:
        jobs = self.jobs(pipeline, limit=1)
        return jobs[0] if jobs else None

    def transition(self, job_id: str, event: str, now_ns: int, **fields) -> JobInfo:
        """Move a job through its lifecycle table (``jobs.next_state``), setting
        ``fields`` (reason, output_commit, datums, datums_failed) in the same write.

        Raises:
            InvalidTransition: the job's current state does not allow ``event``.
        """
        allowed = {"reason", "output_commit", "datums", "datums_failed"}
        assert set(fields) <= allowed, fields

        def tx(c):
            row = c.execute("SELECT state FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None:
                raise NoSuchJob(job_id)
            state = next_state(JobState(row[0]), event)
            sets = ["state=?"]
            args: list = [state.value]
            if state == JobState.RUNNING:
                sets.append("started_ns=?")
                args.append(now_ns)
            if state in FINAL:
                sets.append("finished_ns=?")
                args.append(now_ns)
            for k, v in fields.items():
                sets.append(f"{k}=?")
                args.append(v)
            c.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id=?", (*args, job_id))

        self._tx(tx)
        return self.job(job_id)

    def request_stop(self, job_id: str) -> JobInfo:
        job = self.job(job_id)
        self._tx(lambda c: c.execute("UPDATE jobs SET stop_requested=1 WHERE id=?", (job.id,)))
        return self.job(job.id)

    def job_counts(self) -> dict[str, int]:
        """How many jobs are in each state (every state, zeros included; for metrics)."""
        counts = {state.value: 0 for state in JobState}
        counts.update(self._read("SELECT state, count(*) FROM jobs GROUP BY state"))
        return counts

    def stop_requested(self) -> set[str]:
        return {r[0] for r in self._read(
            "SELECT id FROM jobs WHERE stop_requested=1 AND state NOT IN (?,?,?)",
            tuple(s.value for s in FINAL))}
