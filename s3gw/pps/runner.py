"""The job runner: triggers jobs, runs them through an executor, commits their output.

Theory of operation
-------------------
One :class:`Runner` lives in ``s3gw serve``, under the app's nursery.

* **Triggering** (``_tick``, every ``poll`` seconds).  A pipeline gets a new
  job when every input branch has a head and the heads differ from the input
  commits of the pipeline's latest job.  At most one job per pipeline is
  unfinished at a time: commits that land while a job runs are picked up
  together by the next job, which takes the newest heads (commits are never
  lost, a burst of them costs one job).  Pipelines chain through this rule
  alone: a job's output commit moves its output branch, which is the next
  pipeline's input.  With no pipeline defined a tick is one
  ``PipelineStore.data_version`` (a ``PRAGMA`` on ``pps.sqlite``, or one row of
  PostgreSQL): nothing touches the S3 hot path.
* **Running** (``_run_job``), at most ``max_jobs`` at once: the job gets a
  private staging repo (``pps.jobs.staging_repo``) behind its ``out`` bucket,
  its own S3 endpoint (``gateway.open_view``: a listener that serves only the
  job's view and accepts only the job's freshly minted key), and one run of
  the transform per datum (``pps.datums``), non-S3 inputs materialised as
  files under ``<workdir>/pfs/<input>/``, in ``<data>/pps/jobs/<job>/`` (the
  runner's local scratch).
* **Logs**: the executor appends the command's stdout and stderr to a local
  spool file (``<job>/spool``); the runner moves it into the store's log
  (``PipelineStore.append_log``: a file beside ``pps.sqlite``, or rows of
  PostgreSQL that every gateway reads) every ``ship`` seconds while a datum
  runs and before each line of its own, so the log keeps its order.
* **Output**: when every datum succeeded the staging tree becomes one commit
  on the output branch (the files it adds, changes and removes relative to
  the previous output), made in one metadata transaction together with its
  provenance (input commits, spec version, job id).  Otherwise nothing is
  committed.  Either way the staging repo is dropped (a failed job's partial
  output is discarded; its log is kept).  The commit carries the store's
  ``commit_guard``: with PostgreSQL it is refused unless the job is still
  FINISHING, so a runner that lost its lock never commits a job another runner
  has settled (``pps.interface``).
* **Stopping**: ``s3gw job stop`` sets a flag the tick reads; the job's scope
  is cancelled, the executor kills the process group, the job ends KILLED.
  A job whose pipeline was deleted is stopped the same way.
* **Restarts**: a clean shutdown marks running jobs FAILURE ("interrupted")
  and queues a re-run; after a crash ``recover`` does the same at start-up,
  except for a FINISHING job whose output commit exists (found by its job id
  in the commit provenance), which is marked SUCCESS.  No job stays RUNNING
  across a restart, and no partial output is ever on a branch.  Each of these
  is ``PipelineStore.settle``: one transaction, so two runners (one stopping,
  one taking over) queue one re-run.  With several gateways, ``run`` starts
  (and so ``recover`` runs) on whichever one is elected (``app``), also when
  it takes over from a dead one.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
import time
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Callable, Protocol

import trio

from ..pfs.model import BranchExists, Delete, NoSuchBranch, Put
from ..store.manifest import Manifest
from .datums import Datum, plan_datums
from .executor import Executor, LocalExecutor, RunTask, kill_leftovers
from .interface import JobFenced, NoSuchJob, NoSuchPipeline, PipelineStore
from .jobs import (FINAL, OUT, InputCommit, InvalidTransition, JobInfo, JobState, JobView,
                   ViewBucket, is_internal_repo, staging_repo)
from .spec import PipelineSpec, parse_spec

__all__ = ["Runner", "Gateway", "list_all"]

log = logging.getLogger("s3gw.pps")

SHIP_READ = 1 << 20          # bytes of spool read (and appended to the log) at a time
INTERRUPTED = "interrupted: the server stopped during the job"


class Gateway(Protocol):
    def open_view(self, view: JobView) -> AbstractAsyncContextManager[str]:
        """Serve ``view`` on a listener of its own; yields the endpoint URL."""
        ...


def list_all(meta, repo: str, *, branch: str | None = None, commit: str | None = None):
    """Every file of a branch head or a commit (blocking; pages of 1000)."""
    after = None
    while True:
        if commit is not None:
            page = meta.list_at(repo, commit, "", after, 1000)
        else:
            page = meta.list_files(repo, branch, "", after, 1000)
        yield from page
        if len(page) < 1000:
            return
        after = page[-1].path


class LogShipper:
    """Moves one job's output from its local spool file (where the executor appends the
    command's stdout and stderr) into the store's log, in order, ``SHIP_READ`` bytes at
    a time.  Blocking; one job's calls are serialised."""

    def __init__(self, pps: PipelineStore, job_id: str, spool: str):
        self.pps, self.job_id, self.spool = pps, job_id, spool
        self.pos = 0
        self.full = False
        self._lock = threading.Lock()

    def ship(self) -> None:
        with self._lock:
            self._ship()

    def _ship(self) -> None:
        try:
            f = open(self.spool, "rb")
        except FileNotFoundError:
            return
        with f:
            if self.full:                      # the log is at its limit: skip, unread
                self.pos = f.seek(0, os.SEEK_END)
                return
            f.seek(self.pos)
            while data := f.read(SHIP_READ):
                kept = self.pps.append_log(self.job_id, data)
                self.pos += len(data)
                if kept < len(data):
                    self.full = True
                    self.pos = f.seek(0, os.SEEK_END)
                    return

    def write(self, text: str) -> None:
        """The spool so far, then one line of the runner's own."""
        with self._lock:
            self._ship()
            if not self.full:
                self.full = self.pps.append_log(self.job_id, text.encode()) < len(text.encode())


class Runner:
    def __init__(self, meta, store, pps: PipelineStore, gateway: Gateway, jobs_dir: str, *,
                 executor: Executor | None = None, max_jobs: int = 2, poll: float = 0.2,
                 region: str = "us-east-1", limiter: trio.CapacityLimiter | None = None,
                 clock: Callable[[], int] = time.time_ns, ship: float = 0.5):
        self.meta, self.store, self.pps, self.gateway = meta, store, pps, gateway
        self.jobs_dir = jobs_dir
        self.executor = executor or LocalExecutor()
        self.max_jobs = max_jobs
        self.poll = poll
        self.region = region
        self.limiter = limiter
        self.clock = clock
        self.ship = ship
        self._active: dict[str, tuple[str, trio.CancelScope]] = {}   # job -> (pipeline, scope)
        self._stopping: set[str] = set()
        self._version: int | None = None
        self._pipelines: dict[str, object] = {}

    async def _thread(self, fn, *args):
        return await trio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    # -- the loop -----------------------------------------------------------------------
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Recover, then trigger and run jobs until cancelled (again after a re-election:
        each run starts from the store)."""
        self._version, self._pipelines = None, {}
        started = False
        while True:
            try:
                await self._thread(self.recover)
                break
            except Exception:  # noqa: BLE001 - the server serves on; recovery is retried
                log.exception("pipeline runner: start-up recovery failed; retrying")
                if not started:          # do not hold up the server's start meanwhile
                    task_status.started()
                    started = True
                await trio.sleep(max(self.poll, 1.0))
        async with trio.open_nursery() as nursery:
            if not started:
                task_status.started()
            while True:
                try:
                    await self._tick(nursery)
                except Exception:  # noqa: BLE001 - one bad tick must not stop the runner
                    log.exception("pipeline runner tick failed")
                await trio.sleep(self.poll)

    async def _tick(self, nursery: trio.Nursery) -> None:
        version = await self._thread(self.pps.data_version)
        if version != self._version:
            self._pipelines = {p.name: p for p in await self._thread(self.pps.pipelines)}
            self._version = version
        if not self._pipelines and not self._active:
            return
        to_start, to_stop = await self._thread(self._plan)
        for job_id in to_stop:
            entry = self._active.get(job_id)
            if entry is not None:
                self._stopping.add(job_id)
                entry[1].cancel()
        for job in to_start:
            if len(self._active) >= self.max_jobs:
                break
            scope = trio.CancelScope()
            self._active[job.id] = (job.pipeline, scope)
            nursery.start_soon(self._run_job, job, scope)

    def _plan(self) -> tuple[list[JobInfo], set[str]]:
        """Blocking: the jobs to start (creating those the inputs' heads call for) and
        the active jobs to stop."""
        busy = {pipeline for pipeline, _ in self._active.values()}
        unfinished = self.pps.unfinished_jobs()
        pending: dict[str, JobInfo] = {}
        for j in unfinished:
            if j.state == JobState.CREATED and j.id not in self._active:
                pending.setdefault(j.pipeline, j)
        unfinished_pipelines = {j.pipeline for j in unfinished}
        to_start = []
        for name, record in self._pipelines.items():
            if name in busy:
                continue
            if name in pending:
                to_start.append(pending[name])
                continue
            if name in unfinished_pipelines:
                continue
            inputs = self._heads(record.spec)
            if inputs is None:
                continue
            latest = self.pps.latest_job(name)
            if latest is not None and _commits(latest.inputs) == _commits(inputs):
                continue
            try:
                job = self.pps.create_job(name, record.version, inputs, self.clock())
            except NoSuchPipeline:
                continue                  # deleted since this tick read the pipelines
            log.info("job %s of pipeline %s created for %s", job.id, name,
                     ", ".join(f"{i.name}@{i.commit}" for i in inputs))
            to_start.append(job)
        stops = self.pps.stop_requested() & set(self._active)
        stops |= {jid for jid, (pipeline, _) in self._active.items()
                  if pipeline not in self._pipelines}
        return to_start, stops

    def _heads(self, spec: PipelineSpec) -> list[InputCommit] | None:
        out = []
        for i in spec.inputs:
            try:
                head = self.meta.get_branch(i.repo, i.branch).head
            except NoSuchBranch:
                return None
            if head is None:
                return None
            out.append(InputCommit(i.name, i.repo, i.branch, head, i.s3))
        return out

    # -- one job ------------------------------------------------------------------------
    async def _run_job(self, job: JobInfo, scope: trio.CancelScope) -> None:
        """One job, from start to its final state.  Nothing it raises reaches the
        runner's nursery: a job never takes the server down."""
        try:
            with scope:
                await self._execute(job)
        except Exception:  # noqa: BLE001 - logged; the job's state says what happened
            log.exception("job %s of pipeline %s: the runner failed", job.id, job.pipeline)
        finally:
            self._active.pop(job.id, None)
            self._stopping.discard(job.id)

    def _job_dir(self, job_id: str) -> str:
        return os.path.join(self.jobs_dir, job_id)

    def _shipper(self, job_id: str) -> LogShipper:
        return LogShipper(self.pps, job_id, os.path.join(self._job_dir(job_id), "spool"))

    async def _log(self, shipper: LogShipper, text: str) -> None:
        await self._thread(shipper.write, text)

    async def _execute(self, job: JobInfo) -> None:
        try:
            spec = parse_spec(await self._thread(self.pps.spec_document, job.pipeline,
                                                 job.spec_version))
            await self._thread(self._transition, job.id, "start")
        except (NoSuchPipeline, NoSuchJob, InvalidTransition):
            return      # deleted, stopped while queued, or started by another runner
        os.makedirs(self._job_dir(job.id), exist_ok=True)
        shipper = self._shipper(job.id)
        staging = staging_repo(job.id)
        ended = False
        try:
            await self._thread(self._create_staging, staging)
            datums: list[Datum] = []
            with trio.fail_after(spec.job_timeout or float("inf")):
                datums = await self._thread(self._plan_datums, job, spec)
                await self._log(shipper, f"s3gw: job {job.id} of pipeline {spec.name} "
                                         f"(spec v{job.spec_version}): {len(datums)} datum(s)\n")
                failure = await self._run_datums(job, spec, datums, shipper, staging)
            if failure:
                await self._fail(job, failure, shipper, datums=len(datums))
                ended = True
                return
            await self._thread(partial(self._transition, job.id, "finish", datums=len(datums)))
            try:
                commit = await self._thread(self._commit_output, job, spec)
            except JobFenced as exc:
                log.warning("job %s of pipeline %s: %s", job.id, spec.name, exc)
                ended = True
                return
            await self._log(shipper, f"s3gw: job succeeded: output commit {commit} on "
                                     f"{spec.output_branch}.{spec.name}\n")
            await self._thread(partial(self._transition, job.id, "commit", output_commit=commit))
            log.info("job %s of pipeline %s succeeded: commit %s", job.id, spec.name, commit)
            ended = True
        except trio.TooSlowError:
            await self._fail(job, f"job timed out after {spec.job_timeout:g} s (job_timeout)",
                             shipper)
            ended = True
        except (NoSuchJob, NoSuchPipeline):
            ended = True                  # the pipeline and its jobs were deleted meanwhile
        except InvalidTransition as exc:  # settled by another runner (this one lost its lock)
            log.warning("job %s of pipeline %s was settled elsewhere: %s", job.id,
                        job.pipeline, exc)
            ended = True
        except Exception as exc:  # noqa: BLE001 - the job fails, the runner goes on
            log.exception("job %s failed in the runner", job.id)
            await self._fail(job, f"internal error: {type(exc).__name__}: {exc}", shipper)
            ended = True
        finally:
            # Not ended: cancelled (``job stop``, a deleted pipeline, the server stopping;
            # trio may deliver it as a group of Cancelled, so decide here, not in an except).
            with trio.CancelScope(shield=True):
                with trio.move_on_after(30):
                    if not ended:
                        stopped = job.id in self._stopping
                        outcome = await self._thread(self._settle_cancelled, job.id, stopped)
                        await self._log(shipper, f"s3gw: {outcome}\n")
                        log.info("job %s of pipeline %s: %s", job.id, job.pipeline, outcome)
                    await self._thread(self._cleanup, job.id, staging, shipper)

    async def _run_datums(self, job: JobInfo, spec: PipelineSpec, datums: list[Datum],
                          shipper: LogShipper, staging: str) -> str | None:
        """Run the transform once per datum; the reason of the first failure, or None."""
        access_key = "JOB" + secrets.token_hex(8).upper()
        view = JobView(job.id, access_key, secrets.token_urlsafe(30), tuple(
            [ViewBucket(i.name, i.repo, i.branch, i.commit, False) for i in job.inputs if i.s3]
            + [ViewBucket(OUT, staging, "master", None, True)]))
        async with self.gateway.open_view(view) as endpoint:
            for n, datum in enumerate(datums):
                workdir = os.path.join(self._job_dir(job.id), f"datum-{n}")
                await self._thread(self._materialise, job, datum, workdir)
                env = self._env(job, spec, view, endpoint, datum, workdir)
                await self._log(shipper, f"s3gw: datum {n} ({datum.id}) starts\n")
                cwd = os.path.join(workdir, spec.transform.working_dir or "")
                os.makedirs(cwd, exist_ok=True)
                task = RunTask(job.id, n, spec.transform.cmd,
                               "\n".join(spec.transform.stdin).encode() + b"\n"
                               if spec.transform.stdin else b"",
                               env, cwd, shipper.spool, spec.transform.image)
                result = None
                with trio.move_on_after(spec.datum_timeout or float("inf")):
                    result = await self._run_shipping(task, shipper)
                if result is None:
                    return f"datum {n} ({datum.id}) timed out after {spec.datum_timeout:g} s"
                ok = result.returncode == 0 or result.returncode in \
                    spec.transform.accept_return_code
                await self._log(shipper, f"s3gw: datum {n} exited with {result.returncode}"
                                         f"{' ' + result.detail if result.detail else ''}\n")
                if not ok:
                    what = (f"exit code {result.returncode}" if result.returncode is not None
                            else result.detail or "killed")
                    await self._thread(shutil.rmtree, workdir, True)
                    return f"datum {n} ({datum.id}) failed: {what}"
                await self._thread(shutil.rmtree, workdir, True)
        return None

    async def _run_shipping(self, task: RunTask, shipper: LogShipper):
        """``executor.run(task)``, moving its output into the log every ``ship`` seconds."""
        async with trio.open_nursery() as nursery:
            async def ship_every() -> None:
                while True:
                    await trio.sleep(self.ship)
                    await self._thread(shipper.ship)

            nursery.start_soon(ship_every)
            try:
                return await self.executor.run(task)
            finally:
                nursery.cancel_scope.cancel()

    def _env(self, job: JobInfo, spec: PipelineSpec, view: JobView, endpoint: str,
             datum: Datum, workdir: str) -> dict[str, str]:
        env = dict(os.environ)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.pop(name, None)
        env.update(spec.transform.env)
        env.update({
            "S3_ENDPOINT": endpoint, "AWS_ENDPOINT_URL": endpoint,
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_ACCESS_KEY_ID": view.access_key, "AWS_SECRET_ACCESS_KEY": view.secret_key,
            "AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region,
            "PACH_JOB_ID": job.id, "S3GW_JOB_ID": job.id, "PPS_PIPELINE_NAME": spec.name,
            "PACH_DATUM_ID": datum.id, "PFS_ROOT": os.path.join(workdir, "pfs"),
        })
        for i in job.inputs:
            env[f"{i.name}_COMMIT"] = i.commit or ""
        for piece in datum.pieces:
            if piece.paths and piece.input not in os.environ:
                env[piece.input] = os.path.join(workdir, "pfs", piece.input) + (
                    piece.match if piece.match != "/" else "")
        return env

    # -- blocking helpers (worker threads) ------------------------------------------------
    def _transition(self, job_id: str, event: str, **fields) -> JobInfo:
        return self.pps.transition(job_id, event, self.clock(), **fields)

    def _create_staging(self, staging: str) -> None:
        self.meta.create_branch(staging, "master", self.clock())

    def _plan_datums(self, job: JobInfo, spec: PipelineSpec) -> list[Datum]:
        commits = {i.name: i for i in job.inputs}

        def files_of(inp):
            c = commits[inp.name]
            return [f.path for f in list_all(self.meta, c.repo, commit=c.commit)]

        return plan_datums(spec.input, files_of)

    def _materialise(self, job: JobInfo, datum: Datum, workdir: str) -> None:
        """Write the files of the datum's non-S3 pieces under ``workdir/pfs/<input>/``."""
        commits = {i.name: i for i in job.inputs}
        os.makedirs(os.path.join(workdir, "pfs"), exist_ok=True)
        for piece in datum.pieces:
            if not piece.paths:
                continue
            c = commits[piece.input]
            root = os.path.join(workdir, "pfs", piece.input)
            for path in piece.paths:
                info = self.meta.stat_at(c.repo, c.branch, c.commit, path)
                target = os.path.join(root, *[p for p in path.split("/") if p not in
                                              ("", ".", "..")])
                if not target.startswith(root + os.sep):
                    continue                       # a key that cannot be a file name
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as f:
                    for ref in Manifest.unpack(info.object.manifest).chunks:
                        f.write(self.store.read(ref))

    def _commit_output(self, job: JobInfo, spec: PipelineSpec) -> str:
        """The staging tree as one commit on the output branch, with provenance, under the
        store's output fence.

        Raises:
            JobFenced: the job is no longer FINISHING (settled by another runner).
        """
        self.pps.pipeline(spec.name)      # NoSuchPipeline: deleted meanwhile, commit nothing
        staging = staging_repo(job.id)
        try:
            self.meta.get_branch(staging, "master")
        except NoSuchBranch:              # dropped by a runner that settled this job
            raise JobFenced(f"job {job.id}'s staging repo is gone: nothing committed") from None
        staged = {f.path: f for f in list_all(self.meta, staging, branch="master")}
        try:
            self.meta.get_branch(spec.name, spec.output_branch)
        except NoSuchBranch:          # (a listing of a missing branch is just empty)
            try:
                self.meta.create_branch(spec.name, spec.output_branch, self.clock())
            except BranchExists:
                pass
        current = {f.path: f for f in list_all(self.meta, spec.name, branch=spec.output_branch)}
        changes: list[Put | Delete] = [
            Put(path, f.object) for path, f in staged.items()
            if path not in current or current[path].object.id != f.object.id]
        changes += [Delete(path) for path in current if path not in staged]
        provenance = {
            "job": job.id, "pipeline": spec.name, "spec_version": job.spec_version,
            "inputs": [{"name": i.name, "repo": i.repo, "branch": i.branch, "commit": i.commit}
                       for i in job.inputs]}
        c = self.meta.commit(spec.name, spec.output_branch, changes,
                             f"job {job.id} of pipeline {spec.name}", self.clock(),
                             also=self.pps.commit_guard(job.id), provenance=provenance,
                             allow_empty=True)
        return c.id

    def _cleanup(self, job_id: str, staging: str, shipper: LogShipper | None = None) -> None:
        """The job's staging repo and scratch (datum folders; its spool once shipped)."""
        try:
            self.meta.delete_branch(staging, "master")
        except NoSuchBranch:
            pass
        if shipper is not None:
            shipper.ship()
        job_dir = self._job_dir(job_id)
        if os.path.isdir(job_dir):
            for name in os.listdir(job_dir):
                if name.startswith("datum-"):
                    shutil.rmtree(os.path.join(job_dir, name), ignore_errors=True)
                elif name == "spool":
                    try:
                        os.unlink(os.path.join(job_dir, name))
                    except FileNotFoundError:
                        pass
            try:
                os.rmdir(job_dir)            # empty unless the folder's SQLite store's log
            except OSError:
                pass

    async def _fail(self, job: JobInfo, reason: str, shipper: LogShipper, **fields) -> None:
        await self._end(job, "fail", reason, shipper, **fields)

    async def _end(self, job: JobInfo, event: str, reason: str, shipper: LogShipper,
                   **fields) -> None:
        await self._log(shipper, f"s3gw: job {'stopped' if event == 'kill' else 'failed'}: "
                                 f"{reason}\n")
        log.info("job %s of pipeline %s %s: %s", job.id, job.pipeline,
                 "stopped" if event == "kill" else "failed", reason)
        try:
            await self._thread(lambda: self.pps.transition(job.id, event, self.clock(),
                                                           reason=reason, **fields))
        except (NoSuchJob, InvalidTransition) as exc:   # deleted, or settled elsewhere
            log.info("job %s: not marked %s: %s", job.id, event, exc)

    def _settle_cancelled(self, job_id: str, stopped: bool, reason: str = INTERRUPTED) -> str:
        """Blocking: settle a job whose run was cancelled or cut short (``pps.jobs.
        settlement``, in one store transaction); what happened, in words.

        Its output commit may have been made just before the cancellation landed:
        then it succeeded.  Otherwise a stop kills it, and a server shutdown or crash
        fails it and queues a re-run."""
        if stopped:
            reason = "stopped by s3gw job stop (or its pipeline was deleted)"
        try:
            done = self.pps.settle(job_id, self.clock(), self.meta.commit_of_job,
                                   stopped=stopped, reason=reason)
        except NoSuchJob:
            return "job deleted with its pipeline"
        job = done.job
        if done.outcome == "succeeded":
            return f"job succeeded: output commit {job.output_commit}"
        if done.outcome == "stopped":
            return f"job stopped: {reason}"
        if done.outcome == "interrupted":
            if done.rerun is None:
                return "job interrupted: its pipeline is gone, no re-run"
            return f"job interrupted: a re-run is queued (job {done.rerun.id})"
        return f"job ended {job.state.value}" if job.state in FINAL else "job still queued"

    # -- start-up -------------------------------------------------------------------------
    def recover(self) -> None:
        """Blocking, before serving jobs (at start-up, and on the gateway that takes the
        runner over): settle the jobs a crash left unfinished, and drop the staging repos
        of jobs that have ended."""
        for job in self.pps.unfinished_jobs():
            if job.state == JobState.CREATED:
                continue
            shipper = self._shipper(job.id)
            shipper.ship()                      # its last output, if this folder has it
            # settled first, then its commands killed: a runner that lost its lock but
            # lives, seeing them die, then finds the job settled (not merely failed)
            outcome = self._settle_cancelled(job.id, stopped=False)
            left = kill_leftovers(job.id)       # a crash left its commands running
            log.info("job %s of pipeline %s was unfinished at start-up: %s%s", job.id,
                     job.pipeline, outcome,
                     f" ({left} leftover process(es) of it killed)" if left else "")
            shipper.write(f"s3gw: at start-up: {outcome}\n")
            self._cleanup(job.id, staging_repo(job.id), shipper)
        prefix = staging_repo("")
        for repo in self.meta.list_repos():
            if not (is_internal_repo(repo.name) and repo.name.startswith(prefix)):
                continue
            try:
                if self.pps.job(repo.name[len(prefix):]).state not in FINAL:
                    continue                    # a job running elsewhere (see docstring)
            except NoSuchJob:
                pass
            for b in self.meta.list_branches(repo.name):
                try:
                    self.meta.delete_branch(b.repo, b.name)
                except NoSuchBranch:
                    pass


def _commits(inputs) -> dict[str, str | None]:
    return {i.name: i.commit for i in inputs}
