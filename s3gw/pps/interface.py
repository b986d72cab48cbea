"""The pipeline-store interface: what the runner, the CLI, the console and the S3 layer
call to read and change pipelines, jobs and job logs.

Two implementations: ``pps.store.PpsStore`` (a data folder's ``pps.sqlite``, job logs
as files beside it) and ``pps.pgstore.PostgresPpsStore`` (the tables of migration 4
in the PostgreSQL database the gateway keeps its metadata in, job logs included).
Which one a gateway uses follows its metadata store (``pps.backends.open_pps_store``,
for the wiring only: ``app.py`` and ``cli``).  Everything else names only
:class:`PipelineStore`; ``tests/unit/test_layers.py`` forbids ``s3``, ``pps``'s
runner and executor, the console, ``observe`` and ``cli/pipelines.py`` to import a
concrete store, and ``tests/pfs/test_pps_store_conformance.py`` runs one suite on both.

Contracts every implementation keeps
------------------------------------
* **Lifecycle**: a job's state moves only through ``pps.jobs.next_state``, each
  move a compare-and-set in one transaction (``transition``): of two runners or
  CLIs racing to move one job, one wins and the other gets ``InvalidTransition``.
* **Settling** (``settle``) a job whose run ended without its own last
  transition is one transaction too: the job's row is locked, *then* its output
  commit is looked up (``commit_of_job``, the metadata store's), then
  ``pps.jobs.settlement``'s plan is applied, the re-run created in the same
  transaction.  Two runners settling one job make one re-run.
* **The output fence** (``commit_guard``): the runner makes a job's output commit
  with ``also=commit_guard(job)``; where the jobs live in the metadata's own
  database (PostgreSQL), the guard locks the job's row inside the commit's
  transaction and refuses (:class:`JobFenced`) unless the job is still
  FINISHING.  A commit and a settlement of one job therefore happen one after
  the other, never across each other: a job settled FAILURE by another runner
  never gets an output commit, and a job whose commit landed is settled SUCCESS.
  Where one runner per folder is guaranteed by the kernel (SQLite: an ``flock``
  on the folder), there is nothing to fence and the guard is None.
* **Logs**: ``append_log`` keeps at most ``log_limit`` bytes per job (then one
  line saying the log was cut); ``read_log``/``log_size`` read them from any
  process that opens the same store.
* **The runner's lock** (``runner_lock``): at most one holder per store at a
  time, released when its process dies, however it dies.

All methods block (callers run them in worker threads), except ``output_repos``,
which the S3 layer calls on the event loop: it reads a snapshot, or does one local
check at most (see its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol, runtime_checkable

from .jobs import InputCommit, JobInfo
from .spec import PipelineSpec

__all__ = ["PipelineStore", "RunnerLock", "PipelineRecord", "PipelineDump", "Settled",
           "NoSuchPipeline", "NoSuchJob", "JobFenced", "PipelineConflict", "LOG_LIMIT",
           "CommitGuard"]

LOG_LIMIT = 16 << 20       # bytes of log kept per job (the console shows the last 64 KiB)

# also(cursor) of a metadata commit (pfs.interface.AlsoHook)
CommitGuard = Callable[[Any], None]


class NoSuchPipeline(LookupError):
    pass


class NoSuchJob(LookupError):
    pass


class JobFenced(Exception):
    """A job's output commit was refused: the job is no longer FINISHING (another
    runner settled it meanwhile, or it was deleted)."""


class PipelineConflict(ValueError):
    """``load_pipeline``: the store has a pipeline of that name with other specs."""


class PipelineRecord:
    __slots__ = ("name", "version", "spec", "created_ns", "updated_ns")

    def __init__(self, name: str, version: int, spec: PipelineSpec, created_ns: int,
                 updated_ns: int):
        self.name, self.version, self.spec = name, version, spec
        self.created_ns, self.updated_ns = created_ns, updated_ns


@dataclass(frozen=True)
class PipelineDump:
    """A pipeline with every spec version, as ``s3gw migrate`` copies it between stores."""

    name: str
    version: int
    created_ns: int
    updated_ns: int
    specs: tuple[tuple[int, str, int], ...]     # (version, canonical JSON, created_ns)


@dataclass(frozen=True)
class Settled:
    """What ``settle`` did: the job as it is now, the re-run it queued (or None), and
    the plan's outcome (``pps.jobs.Settlement.outcome``)."""

    job: JobInfo
    rerun: JobInfo | None
    outcome: str


@runtime_checkable
class RunnerLock(Protocol):
    """Elects the one gateway of a store that runs the pipeline jobs."""

    def try_acquire(self) -> bool: ...      # True: this process holds it now
    def held(self) -> bool: ...             # still held (False: lost; release, try again)
    def release(self) -> None: ...


@runtime_checkable
class PipelineStore(Protocol):
    """Pipelines, their jobs and the jobs' logs."""

    log_limit: int

    # -- change detection
    def data_version(self) -> int: ...
    def output_repos(self, max_age: float = 0.0) -> frozenset[str]: ...
    def refresh_outputs(self) -> None: ...

    # -- pipelines
    def put_pipeline(self, spec: PipelineSpec, now_ns: int, *, update: bool) -> int: ...
    def delete_pipeline(self, name: str) -> None: ...
    def pipelines(self) -> list[PipelineRecord]: ...
    def pipeline(self, name: str) -> PipelineRecord: ...
    def spec_document(self, name: str, version: int) -> str: ...

    # -- jobs
    def create_job(self, pipeline: str, spec_version: int, inputs: Iterable[InputCommit],
                   now_ns: int, restart_of: str | None = None) -> JobInfo: ...
    def job(self, job_id: str) -> JobInfo: ...
    def jobs(self, pipeline: str | None = None, limit: int | None = 1000) -> list[JobInfo]: ...
    def unfinished_jobs(self) -> list[JobInfo]: ...
    def latest_job(self, pipeline: str) -> JobInfo | None: ...
    def transition(self, job_id: str, event: str, now_ns: int, **fields) -> JobInfo: ...
    def settle(self, job_id: str, now_ns: int, commit_of_job: Callable[[str], str | None], *,
               stopped: bool, reason: str) -> Settled: ...
    def request_stop(self, job_id: str) -> JobInfo: ...
    def stop_requested(self) -> set[str]: ...
    def job_counts(self) -> dict[str, int]: ...

    # -- logs
    def append_log(self, job_id: str, data: bytes) -> int: ...
    def read_log(self, job_id: str, offset: int = 0, limit: int = 1 << 20) -> bytes: ...
    def log_size(self, job_id: str) -> int: ...

    # -- the runner
    def runner_lock(self) -> RunnerLock: ...
    def commit_guard(self, job_id: str) -> CommitGuard | None: ...

    # -- copying between stores (``s3gw migrate``)
    def dump_pipelines(self) -> list[PipelineDump]: ...
    def load_pipeline(self, dump: PipelineDump) -> bool: ...
    def load_job(self, job: JobInfo, log: bytes) -> bool: ...

    def close(self) -> None: ...
