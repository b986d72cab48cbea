"""Job lifecycle and the per-job S3 view (pure values and tables).

Lifecycle
---------
::

    CREATED --start--> RUNNING --finish--> FINISHING --commit--> SUCCESS
       |                  |                    |
       |                  +--fail--> FAILURE   +--fail--> FAILURE
       +--kill--> KILLED  +--kill--> KILLED    +--recover(commit found)--> SUCCESS
       +--fail--> FAILURE

A job is durable state (``pps.interface.PipelineStore``).  FINISHING means the
user code succeeded and the output commit is being made; the commit records the
job id in its provenance, so a restart that finds a FINISHING or RUNNING job
looks for that commit: found -> SUCCESS, not found -> FAILURE ("interrupted")
and a new job for the same inputs (``runner.Runner.recover``).  SUCCESS, FAILURE
and KILLED are final.  :func:`settlement` is that decision, as a plan the
stores apply in one transaction (``PipelineStore.settle``).

The view
--------
A :class:`JobView` is what the job's own S3 endpoint shows: a bucket per S3
input (named by the input, pinned to the input commit, read-only) and
``out`` (the job's private staging repo, readable and writable).  The view's
credentials are minted per job and live only in the view: the main port
does not know them, and another job's port refuses them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["JobState", "InvalidTransition", "next_state", "FINAL", "JobInfo", "InputCommit",
           "ViewBucket", "JobView", "staging_repo", "is_internal_repo", "OUT", "Settlement",
           "settlement"]

OUT = "out"
_STAGING_PREFIX = "__job_"


class JobState(str, enum.Enum):
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    FINISHING = "FINISHING"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    KILLED = "KILLED"


S = JobState
_TRANSITIONS: dict[JobState, dict[str, JobState]] = {
    S.CREATED: {"start": S.RUNNING, "kill": S.KILLED, "fail": S.FAILURE},
    S.RUNNING: {"finish": S.FINISHING, "fail": S.FAILURE, "kill": S.KILLED},
    S.FINISHING: {"commit": S.SUCCESS, "fail": S.FAILURE, "recover": S.SUCCESS},
    S.SUCCESS: {},
    S.FAILURE: {},
    S.KILLED: {},
}
FINAL = frozenset({S.SUCCESS, S.FAILURE, S.KILLED})


class InvalidTransition(Exception):
    """An event that the job's state does not allow."""


def next_state(state: JobState, event: str) -> JobState:
    """The state after ``event``; raises :class:`InvalidTransition`."""
    try:
        return _TRANSITIONS[JobState(state)][event]
    except KeyError:
        raise InvalidTransition(f"job in state {JobState(state).value} cannot {event}") from None


@dataclass(frozen=True)
class Settlement:
    """How to settle a job whose run ended without its own last transition (its
    runner was cancelled, stopped or died): the events to apply in order, whether a
    re-run with the same inputs is queued, and what happened in a word."""

    events: tuple[str, ...]
    requeue: bool
    outcome: str          # "final", "queued", "succeeded", "stopped" or "interrupted"


def settlement(state: JobState, output_commit: str | None, stopped: bool) -> Settlement:
    """The plan for a job in ``state`` whose output commit (found by the job id in the
    commit provenance) is ``output_commit``; ``stopped``: by ``s3gw job stop`` or the
    deletion of its pipeline, rather than by a server stop or crash.

    A commit that exists wins (the job succeeded just before it was cancelled); a stop
    kills it (a FINISHING job, which can no longer be killed, fails); anything else
    that had started fails "interrupted" and is run again.  A queued job stays queued
    unless it is stopped; a final job stays as it is."""
    state = JobState(state)
    if state in FINAL:
        return Settlement((), False, "final")
    if output_commit is not None and state in (S.RUNNING, S.FINISHING):
        return Settlement(("finish", "recover") if state == S.RUNNING else ("recover",),
                          False, "succeeded")
    if stopped:
        return Settlement(("fail",) if state == S.FINISHING else ("kill",), False, "stopped")
    if state == S.CREATED:
        return Settlement((), False, "queued")
    return Settlement(("fail",), True, "interrupted")


@dataclass(frozen=True)
class InputCommit:
    """The commit a job read for one input."""

    name: str
    repo: str
    branch: str
    commit: str | None        # None: the branch had no commit yet
    s3: bool


@dataclass(frozen=True)
class JobInfo:
    id: str
    pipeline: str
    spec_version: int
    state: JobState
    inputs: tuple[InputCommit, ...]
    created_ns: int
    started_ns: int | None = None
    finished_ns: int | None = None
    output_commit: str | None = None
    reason: str = ""
    datums: int = 0
    datums_failed: int = 0
    restart_of: str | None = None
    stop_requested: bool = False

    @property
    def duration_s(self) -> float | None:
        if self.started_ns is None:
            return None
        end = self.finished_ns
        return None if end is None else (end - self.started_ns) / 1e9


def staging_repo(job_id: str) -> str:
    """The internal repo that holds a job's ``out`` until it succeeds.  Its name is
    not a valid bucket segment, so no S3 request outside the job's view can name it."""
    return f"{_STAGING_PREFIX}{job_id}"


def is_internal_repo(repo: str) -> bool:
    return repo.startswith("_")


@dataclass(frozen=True)
class ViewBucket:
    """One bucket of a job's view and where it points in the store."""

    name: str
    repo: str
    branch: str
    commit: str | None     # pinned commit of an input (None: empty input branch, or out)
    writable: bool


@dataclass(frozen=True)
class JobView:
    """What a job's S3 endpoint serves, and the one key pair it accepts."""

    job_id: str
    access_key: str
    secret_key: str
    buckets: tuple[ViewBucket, ...]

    def get(self, name: str | None) -> ViewBucket | None:
        for b in self.buckets:
            if b.name == name:
                return b
        return None
