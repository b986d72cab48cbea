"""Pipelines and jobs in SQL: the logic both pipeline stores share, written once.

Theory of operation
-------------------
The two stores (``pps.store.PpsStore`` on SQLite, ``pps.pgstore.PostgresPpsStore``
on PostgreSQL) keep the same three tables under their own names: pipelines (the
name is the output repo; the current spec version), their specs (every
version's canonical JSON) and jobs (state, input commits as JSON, times, output
commit, reason, datum counts, ``stop_requested``).  :class:`SqlPpsStore` holds
every query on them, in the SQL both engines speak, with ``?`` placeholders; a
backend gives it:

* ``_tx(fn)``: ``fn(cursor)`` in one write transaction (SQLite ``BEGIN
  IMMEDIATE``: one writer per file; PostgreSQL READ COMMITTED, retried on a
  deadlock or serialization failure), and ``_read(sql, args)``: rows;
* ``FOR_UPDATE``/``FOR_SHARE``: the row locks PostgreSQL needs and SQLite's
  file lock makes needless (empty there);
* ``_pipelines_changed(cursor)`` (PostgreSQL counts changes for
  ``data_version``; SQLite has ``PRAGMA data_version``) and ``_forget_logs``.

Locks, PostgreSQL's order: a pipeline's row before its jobs' rows (create_job,
settle and delete_pipeline all take them in that order), so they never wait on
each other in a circle.  A transition locks its job's row, reads the state,
applies the lifecycle table, writes: a compare-and-set.

Logs and the runner's lock are each backend's own (files vs a table; an
``flock`` vs an advisory lock).
"""

from __future__ import annotations

import abc
import json
import uuid
from typing import Callable, Iterable

from .interface import (LOG_LIMIT, NoSuchJob, NoSuchPipeline, PipelineConflict, PipelineDump,
                        PipelineRecord, Settled)
from .jobs import FINAL, InputCommit, JobInfo, JobState, next_state, settlement
from .spec import PipelineSpec, parse_spec

__all__ = ["SqlPpsStore", "TRUNCATED"]

JOB_COLS = ("id, pipeline, spec_version, state, inputs, created_ns, started_ns, finished_ns, "
            "output_commit, reason, datums, datums_failed, restart_of, stop_requested")
_FIELDS = frozenset({"reason", "output_commit", "datums", "datums_failed"})
TRUNCATED = "\ns3gw: the log was cut here: a job keeps at most {limit} bytes of log\n"


def job_from_row(row) -> JobInfo:
    (jid, pipeline, version, state, inputs, created, started, finished, output, reason,
     datums, failed, restart_of, stop) = row
    return JobInfo(id=jid, pipeline=pipeline, spec_version=version, state=JobState(state),
                   inputs=tuple(InputCommit(**d) for d in json.loads(inputs)),
                   created_ns=created, started_ns=started, finished_ns=finished,
                   output_commit=output, reason=reason, datums=datums, datums_failed=failed,
                   restart_of=restart_of, stop_requested=bool(stop))


def inputs_document(inputs: Iterable[InputCommit]) -> str:
    return json.dumps([i.__dict__ for i in inputs])


def cut(data: bytes, size: int, limit: int) -> bytes:
    """What of ``data`` a log of ``size`` bytes keeps under ``limit``: all of it, or
    what fits and the line saying the log was cut (once), or nothing."""
    if size + len(data) <= limit:
        return data
    if size >= limit:
        return b""
    return data[:limit - size] + TRUNCATED.format(limit=limit).encode()


class SqlPpsStore(abc.ABC):
    """The shared queries (see the module docstring); not a store by itself: a backend
    provides ``_tx``, ``_read`` and ``append_log``."""

    PIPELINES = "pipelines"
    SPECS = "pipeline_specs"
    JOBS = "jobs"
    FOR_UPDATE = ""
    FOR_SHARE = ""
    log_limit = LOG_LIMIT

    # -- the backend's part ---------------------------------------------------------------
    @abc.abstractmethod
    def _tx(self, fn):
        """Run ``fn(connection)`` in one write transaction; its result."""

    @abc.abstractmethod
    def _read(self, sql: str, args=()) -> list:
        """The rows of one read query."""

    def _pipelines_changed(self, c) -> None:  # noqa: B027 - an optional hook
        """A pipeline was created, updated or deleted (called in that transaction)."""

    def _forget_logs(self, c, job_ids: list[str]) -> None:  # noqa: B027 - an optional hook
        """Jobs are being deleted: their logs go (called in that transaction)."""

    def _log_loaded(self, job_id: str, data: bytes) -> None:
        """``load_job``: the job's log, after the job's row was committed."""
        self.append_log(job_id, data)

    @abc.abstractmethod
    def append_log(self, job_id: str, data: bytes) -> int:
        """Append to a job's log (up to ``log_limit``); the bytes kept."""

    # -- pipelines ----------------------------------------------------------------------
    def put_pipeline(self, spec: PipelineSpec, now_ns: int, *, update: bool) -> int:
        """Create (``update=False``) or update a pipeline; returns its new spec version.

        Raises:
            ValueError: it exists (create).  NoSuchPipeline: it does not (update).
        """
        P, S = self.PIPELINES, self.SPECS

        def tx(c):
            row = c.execute(f"SELECT version FROM {P} WHERE name=?{self.FOR_UPDATE}",
                            (spec.name,)).fetchone()
            if row is not None and not update:
                raise ValueError(f"pipeline {spec.name!r} exists already (use pipeline update)")
            if row is None and update:
                raise NoSuchPipeline(spec.name)
            version = 1 if row is None else row[0] + 1
            if row is None:
                if c.execute(f"INSERT INTO {P}(name, version, created_ns, updated_ns) "
                             "VALUES(?,?,?,?) ON CONFLICT(name) DO NOTHING",
                             (spec.name, 1, now_ns, now_ns)).rowcount != 1:
                    raise ValueError(f"pipeline {spec.name!r} exists already (use pipeline "
                                     "update)")          # created meanwhile elsewhere
            else:
                c.execute(f"UPDATE {P} SET version=?, updated_ns=? WHERE name=?",
                          (version, now_ns, spec.name))
            c.execute(f"INSERT INTO {S}(name, version, spec, created_ns) VALUES(?,?,?,?)",
                      (spec.name, version, spec.document, now_ns))
            self._pipelines_changed(c)
            return version

        return self._tx(tx)

    def delete_pipeline(self, name: str) -> None:
        """Forget a pipeline, its specs, its jobs and their logs (running jobs must be
        stopped first)."""
        P, S, J = self.PIPELINES, self.SPECS, self.JOBS

        def tx(c):
            if c.execute(f"DELETE FROM {P} WHERE name=?", (name,)).rowcount == 0:
                raise NoSuchPipeline(name)
            c.execute(f"DELETE FROM {S} WHERE name=?", (name,))
            ids = [r[0] for r in c.execute(f"SELECT id FROM {J} WHERE pipeline=?{self.FOR_UPDATE}",
                                           (name,)).fetchall()]
            self._forget_logs(c, ids)
            c.execute(f"DELETE FROM {J} WHERE pipeline=?", (name,))
            self._pipelines_changed(c)

        self._tx(tx)

    def pipelines(self) -> list[PipelineRecord]:
        rows = self._read(
            f"SELECT p.name, p.version, s.spec, p.created_ns, p.updated_ns FROM {self.PIPELINES} p "
            f"JOIN {self.SPECS} s ON s.name=p.name AND s.version=p.version ORDER BY p.name")
        return [PipelineRecord(n, v, parse_spec(json.loads(s)), c, u) for n, v, s, c, u in rows]

    def pipeline(self, name: str) -> PipelineRecord:
        rows = self._read(
            f"SELECT p.name, p.version, s.spec, p.created_ns, p.updated_ns FROM {self.PIPELINES} p "
            f"JOIN {self.SPECS} s ON s.name=p.name AND s.version=p.version WHERE p.name=?",
            (name,))
        if not rows:
            raise NoSuchPipeline(name)
        n, v, s, c, u = rows[0]
        return PipelineRecord(n, v, parse_spec(json.loads(s)), c, u)

    def spec_document(self, name: str, version: int) -> str:
        rows = self._read(f"SELECT spec FROM {self.SPECS} WHERE name=? AND version=?",
                          (name, version))
        if not rows:
            raise NoSuchPipeline(f"{name} version {version}")
        return rows[0][0]

    # -- jobs ---------------------------------------------------------------------------
    def _insert_job(self, c, pipeline: str, spec_version: int, inputs_doc: str, now_ns: int,
                    restart_of: str | None) -> str:
        jid = uuid.uuid4().hex
        c.execute(f"INSERT INTO {self.JOBS}(id, pipeline, spec_version, state, inputs, "
                  "created_ns, restart_of) VALUES(?,?,?,?,?,?,?)",
                  (jid, pipeline, spec_version, JobState.CREATED.value, inputs_doc, now_ns,
                   restart_of))
        return jid

    def _pipeline_exists(self, c, name: str) -> bool:
        return c.execute(f"SELECT 1 FROM {self.PIPELINES} WHERE name=?{self.FOR_SHARE}",
                         (name,)).fetchone() is not None

    def create_job(self, pipeline: str, spec_version: int, inputs: Iterable[InputCommit],
                   now_ns: int, restart_of: str | None = None) -> JobInfo:
        """A CREATED job of an existing pipeline (``NoSuchPipeline`` otherwise, decided in
        the same transaction, so a job never outlives a deleted pipeline's rows)."""
        doc = inputs_document(inputs)

        def tx(c):
            if not self._pipeline_exists(c, pipeline):
                raise NoSuchPipeline(pipeline)
            return self._insert_job(c, pipeline, spec_version, doc, now_ns, restart_of)

        return self.job(self._tx(tx))

    def job(self, job_id: str) -> JobInfo:
        """A job by its id, or by a prefix of it that names one job only."""
        rows = self._read(f"SELECT {JOB_COLS} FROM {self.JOBS} WHERE id=?", (job_id,))
        if not rows:
            rows = self._read(f"SELECT {JOB_COLS} FROM {self.JOBS} WHERE id LIKE ? || '%' "
                              "LIMIT 2", (job_id,))
            if len(rows) != 1:
                raise NoSuchJob(job_id)
        return job_from_row(rows[0])

    def jobs(self, pipeline: str | None = None, limit: int | None = 1000) -> list[JobInfo]:
        """Jobs, newest first (``limit`` None: all)."""
        sql = f"SELECT {JOB_COLS} FROM {self.JOBS}"
        args: list = []
        if pipeline is not None:
            sql += " WHERE pipeline=?"
            args.append(pipeline)
        sql += " ORDER BY created_ns DESC, id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [job_from_row(r) for r in self._read(sql, args)]

    def unfinished_jobs(self) -> list[JobInfo]:
        rows = self._read(f"SELECT {JOB_COLS} FROM {self.JOBS} WHERE state NOT IN (?,?,?) "
                          "ORDER BY created_ns, id", tuple(s.value for s in FINAL))
        return [job_from_row(r) for r in rows]

    def latest_job(self, pipeline: str) -> JobInfo | None:
        jobs = self.jobs(pipeline, limit=1)
        return jobs[0] if jobs else None

    def transition(self, job_id: str, event: str, now_ns: int, **fields) -> JobInfo:
        """Move a job through its lifecycle table (``jobs.next_state``), setting
        ``fields`` (reason, output_commit, datums, datums_failed) in the same write: a
        compare-and-set on the job's state.

        Raises:
            InvalidTransition: the job's current state does not allow ``event``.
            NoSuchJob: there is no such job.
        """
        assert set(fields) <= _FIELDS, fields

        def tx(c):
            row = c.execute(f"SELECT state FROM {self.JOBS} WHERE id=?{self.FOR_UPDATE}",
                            (job_id,)).fetchone()
            if row is None:
                raise NoSuchJob(job_id)
            self._set(c, job_id, next_state(JobState(row[0]), event), now_ns, fields)

        self._tx(tx)
        return self.job(job_id)

    def _set(self, c, job_id: str, state: JobState, now_ns: int, fields: dict) -> None:
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
        c.execute(f"UPDATE {self.JOBS} SET {', '.join(sets)} WHERE id=?", (*args, job_id))

    def settle(self, job_id: str, now_ns: int, commit_of_job: Callable[[str], str | None], *,
               stopped: bool, reason: str) -> Settled:
        """Settle a job whose run ended without its own last transition
        (``pps.jobs.settlement``), in one transaction: the pipeline's row and the
        job's row locked, then ``commit_of_job(job_id)`` asked (so a commit made under
        ``commit_guard`` is either seen here or refused there), then the plan applied;
        a re-run (``restart_of`` the job) is created in the same transaction.

        Raises:
            NoSuchJob: there is no such job (deleted with its pipeline).
        """
        J = self.JOBS

        def tx(c):
            row = c.execute(f"SELECT pipeline FROM {J} WHERE id=?", (job_id,)).fetchone()
            if row is None:
                raise NoSuchJob(job_id)
            has_pipeline = self._pipeline_exists(c, row[0])
            row = c.execute(f"SELECT {JOB_COLS} FROM {J} WHERE id=?{self.FOR_UPDATE}",
                            (job_id,)).fetchone()
            if row is None:
                raise NoSuchJob(job_id)
            job = job_from_row(row)
            started = job.state in (JobState.RUNNING, JobState.FINISHING)
            commit = commit_of_job(job_id) if started else None
            plan = settlement(job.state, commit, stopped)
            state = job.state
            for event in plan.events:
                state = next_state(state, event)
            rerun = None
            fields: dict = {"reason": reason}
            if state == JobState.SUCCESS:
                fields = {"output_commit": commit}
            elif plan.requeue and has_pipeline:
                rerun = self._insert_job(c, job.pipeline, job.spec_version,
                                         inputs_document(job.inputs), now_ns, job.id)
                fields["reason"] = f"{reason}; re-run as job {rerun}"
            elif plan.requeue:
                fields["reason"] = f"{reason} (its pipeline is gone: no re-run)"
            if plan.events:
                self._set(c, job_id, state, now_ns, fields)
            return plan.outcome, rerun

        outcome, rerun = self._tx(tx)
        return Settled(self.job(job_id), None if rerun is None else self.job(rerun), outcome)

    def request_stop(self, job_id: str) -> JobInfo:
        job = self.job(job_id)
        self._tx(lambda c: c.execute(f"UPDATE {self.JOBS} SET stop_requested=1 WHERE id=?",
                                     (job.id,)))
        return self.job(job.id)

    def job_counts(self) -> dict[str, int]:
        """How many jobs are in each state (every state, zeros included; for metrics)."""
        counts = {state.value: 0 for state in JobState}
        counts.update((s, int(n)) for s, n in self._read(
            f"SELECT state, count(*) FROM {self.JOBS} GROUP BY state"))
        return counts

    def stop_requested(self) -> set[str]:
        return {r[0] for r in self._read(
            f"SELECT id FROM {self.JOBS} WHERE stop_requested=1 AND state NOT IN (?,?,?)",
            tuple(s.value for s in FINAL))}

    # -- copying between stores -------------------------------------------------------
    def dump_pipelines(self) -> list[PipelineDump]:
        specs: dict[str, list[tuple[int, str, int]]] = {}
        for name, version, doc, created in self._read(
                f"SELECT name, version, spec, created_ns FROM {self.SPECS} ORDER BY name, version"):
            specs.setdefault(name, []).append((version, doc, created))
        return [PipelineDump(n, v, c, u, tuple(specs.get(n, ())))
                for n, v, c, u in self._read(f"SELECT name, version, created_ns, updated_ns "
                                             f"FROM {self.PIPELINES} ORDER BY name")]

    def load_pipeline(self, dump: PipelineDump) -> bool:
        """Add a pipeline as it was dumped (its versions and times kept); False if this
        store has it already, the same.

        Raises:
            PipelineConflict: this store has a pipeline of that name with other specs.
        """
        P, S = self.PIPELINES, self.SPECS

        def tx(c):
            row = c.execute(f"SELECT version FROM {P} WHERE name=?{self.FOR_UPDATE}",
                            (dump.name,)).fetchone()
            if row is not None:
                have = tuple(tuple(r) for r in c.execute(
                    f"SELECT version, spec, created_ns FROM {S} WHERE name=? ORDER BY version",
                    (dump.name,)).fetchall())
                if row[0] != dump.version or have != dump.specs:
                    raise PipelineConflict(f"pipeline {dump.name!r} exists in the destination "
                                           "with other specs")
                return False
            c.execute(f"INSERT INTO {P}(name, version, created_ns, updated_ns) VALUES(?,?,?,?)",
                      (dump.name, dump.version, dump.created_ns, dump.updated_ns))
            for version, doc, created in dump.specs:
                c.execute(f"INSERT INTO {S}(name, version, spec, created_ns) VALUES(?,?,?,?)",
                          (dump.name, version, doc, created))
            self._pipelines_changed(c)
            return True

        return self._tx(tx)

    def load_job(self, job: JobInfo, log: bytes) -> bool:
        """Add a job as it is (id, state, times, fields) with its log; False if this store
        has a job of that id already (nothing changes then).

        Raises:
            NoSuchPipeline: its pipeline is not in this store (load it first).
        """

        def tx(c):
            if not self._pipeline_exists(c, job.pipeline):
                raise NoSuchPipeline(job.pipeline)
            return c.execute(
                f"INSERT INTO {self.JOBS}({JOB_COLS}) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(id) DO NOTHING",
                (job.id, job.pipeline, job.spec_version, job.state.value,
                 inputs_document(job.inputs), job.created_ns, job.started_ns, job.finished_ns,
                 job.output_commit, job.reason, job.datums, job.datums_failed, job.restart_of,
                 int(job.stop_requested))).rowcount == 1

        added = self._tx(tx)
        if added and log:
            self._log_loaded(job.id, log)
        return added
