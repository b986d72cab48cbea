"""Executors: where a job's user code runs.

Theory of operation
-------------------
The runner hands an executor one :class:`RunTask` per datum: the command,
its stdin, the environment (the job's S3 endpoint and credentials, the job
id, input commits), a working folder and a log file, and waits for a
:class:`RunResult`.  Cancelling the wait (a timeout, ``s3gw job stop``, a
server shutdown) must stop the user code and everything it started.

:class:`LocalExecutor` runs the command as a local process in its own
session (process group), stdout and stderr appended to the job's log.  On
cancellation it sends SIGTERM to the whole group, then SIGKILL after
``grace`` seconds, so an ``sh`` that started an ``aws`` does not leave the
``aws`` behind.

A Kubernetes executor implements the same ``run``: one Job per datum with
the spec's ``transform.image``, the environment as container env, the
endpoint being the gateway's job listener reachable from the pod network;
see docs/pipelines.md.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from typing import Protocol

import trio

__all__ = ["RunTask", "RunResult", "Executor", "LocalExecutor", "kill_leftovers"]


@dataclass(frozen=True)
class RunTask:
    job_id: str
    datum: int
    cmd: tuple[str, ...]
    stdin: bytes
    env: dict[str, str]
    workdir: str
    log_path: str
    image: str | None = None     # for executors that run containers


@dataclass(frozen=True)
class RunResult:
    returncode: int | None      # None: it did not exit by itself (killed)
    detail: str = ""


class Executor(Protocol):
    async def run(self, task: RunTask) -> RunResult:
        """Run the task to completion.  On cancellation, stop it and everything it
        started before re-raising ``trio.Cancelled``."""
        ...


class LocalExecutor:
    """User code as local processes of the server's machine."""

    name = "local"

    def __init__(self, grace: float = 5.0):
        self.grace = grace

    async def run(self, task: RunTask) -> RunResult:
        os.makedirs(task.workdir, exist_ok=True)
        log = open(task.log_path, "ab")
        try:
            proc = await trio.lowlevel.open_process(
                list(task.cmd), stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                cwd=task.workdir, env=task.env, start_new_session=True,
                preexec_fn=_die_with_parent)
        except OSError as exc:
            log.write(f"s3gw: cannot start {task.cmd[0]!r}: {exc}\n".encode())
            log.close()
            return RunResult(None, f"cannot start {task.cmd[0]!r}: {exc.strerror or exc}")
        try:
            await self._feed(proc, task.stdin)
            await proc.wait()
            return RunResult(proc.returncode)
        finally:
            if proc.returncode is None:
                with trio.CancelScope(shield=True):
                    await self._stop(proc)
            else:
                _killpg(proc.pid, signal.SIGKILL)   # leftovers of a finished command
            log.close()

    @staticmethod
    async def _feed(proc, data: bytes) -> None:
        try:
            if data:
                await proc.stdin.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass                                   # the command does not read its stdin
        finally:
            await proc.stdin.aclose()

    async def _stop(self, proc) -> None:
        _killpg(proc.pid, signal.SIGTERM)
        with trio.move_on_after(self.grace):
            await proc.wait()
        _killpg(proc.pid, signal.SIGKILL)
        with trio.move_on_after(self.grace):
            await proc.wait()


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the server dies (Linux
    ``PR_SET_PDEATHSIG``), so a crashed server leaves no job command running.  What
    that command started itself is found by ``kill_leftovers`` at the next start."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)        # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def kill_leftovers(job_id: str) -> int:
    """SIGKILL every process still running for ``job_id`` (found by the ``S3GW_JOB_ID``
    in its environment: what a job's command started, left behind by a crashed
    server).  Returns how many.  Linux ``/proc`` only; elsewhere 0."""
    needle = f"S3GW_JOB_ID={job_id}".encode()
    killed = 0
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return 0
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if needle in env:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
    return killed


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
