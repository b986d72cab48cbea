"""``s3gw serve --workers N``: one supervisor, N worker processes, one listening socket.

The supervisor binds ``host:port`` once, takes the data folder's ``serve.lock``
(``app.lock_data_folder``: exclusive on a SQLite folder, shared with PostgreSQL
metadata), prepares the folder once (SQLite schema, temp-file cleanup, the
PostgreSQL schema check) and then starts N copies of the same ``s3gw serve``
command line, each told through ``S3GW_WORKER_OF`` which worker it is and which
inherited file descriptors are the listening sockets.  Every worker is a whole
gateway (its own event loop, metadata connections and group-commit batcher) that
accepts connections from the one shared socket: the kernel hands each
connection to one of them.  See docs/backends.md, "Workers", for why.

The lock's file descriptor is inherited too: the folder stays locked while the
supervisor or any of its workers lives, and a second ``s3gw serve`` refuses.
A worker asks the kernel for SIGKILL when the supervisor dies
(``PR_SET_PDEATHSIG``), so a killed supervisor leaves no orphan serving: the group
dies as one process would (``app.wait_for_orphans`` lets the next server started
on the folder wait the milliseconds they take to go).

A worker that dies is started again after a back-off (0.5 s, doubling while it
keeps dying within 10 s of its start, at most 30 s).  A worker that exits 1 or 2
(a one-line refusal: a bad database, a damaged folder) within 5 s of its start
stops the whole group with its status: it would only refuse again.  SIGTERM or
SIGINT to the supervisor is passed on as SIGTERM to every worker, which stops
gracefully (``http.drain``: it accepts no more connections, closes its idle ones
and finishes the exchanges in progress, for up to ``app.DRAIN_GRACE``, 20 s); the
supervisor waits for them (SIGKILL after 30 s).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

__all__ = ["supervise", "worker_role", "become_worker", "ENV"]

ENV = "S3GW_WORKER_OF"          # "<index>:<supervisor pid>:<fd>,<fd>..."
log = logging.getLogger("s3gw")

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
HEALTHY_AFTER = 10.0            # a worker that lived this long starts the back-off afresh
REFUSAL_WINDOW = 5.0
STOP_GRACE = 30.0


def worker_role() -> tuple[int, int, tuple[int, ...]] | None:
    """(index, supervisor pid, listening fds) when this process is a worker, else None."""
    text = os.environ.get(ENV)
    if not text:
        return None
    index, parent, fds = text.split(":")
    return int(index), int(parent), tuple(int(fd) for fd in fds.split(",") if fd)


def become_worker(parent: int) -> bool:
    """Ask for SIGKILL when the supervisor dies (a killed ``s3gw serve`` is killed
    whole, as one process is: every commit is atomic); False if it is already gone."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)        # PR_SET_PDEATHSIG
    except (OSError, AttributeError):                  # not Linux: the poll below still helps
        pass
    return os.getppid() == parent


def bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for ``host:port``, one per address ``host`` resolves to (as
    ``trio.open_tcp_listeners`` makes them).

    Raises:
        OSError: the port cannot be bound.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    socks: list[socket.socket] = []
    try:
        for family, type_, proto, _, addr in infos:
            if any(s.family == family for s in socks):
                continue
            sock = socket.socket(family, type_, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(addr)
            sock.listen(socket.SOMAXCONN)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


@dataclasses.dataclass
class _Slot:
    index: int
    proc: subprocess.Popen | None = None
    started: float = 0.0
    backoff: float = BACKOFF_FIRST
    restart_at: float = 0.0


def supervise(config, argv: list[str], workers: int) -> int:
    """Run ``workers`` copies of ``s3gw serve <argv>`` on one socket until SIGTERM/SIGINT.

    Raises:
        OSError: the port cannot be bound.
        app.DataFolderBusy: another server has the data folder.
    """
    from ..app import App, lock_data_folder, wait_for_orphans
    from ..pfs.backends import is_postgres_url, remember, remembered

    stop: list[int] = []
    previous = {s: signal.signal(s, lambda signum, _frame: stop.append(signum))
                for s in (signal.SIGTERM, signal.SIGINT)}
    if not is_postgres_url(config.meta or remembered(config.data_dir)):
        wait_for_orphans(config.data_dir)      # a killed group's workers, dying
    # the folder is locked before the port is bound (as ``app.run_server`` does): a
    # group whose port answers holds its folder; a port that cannot be bound leaves
    # nothing behind
    created = not os.path.exists(config.data_dir)
    os.makedirs(config.data_dir, exist_ok=True)
    lock = None
    try:
        config.meta = config.meta or remembered(config.data_dir)
        lock = lock_data_folder(config.data_dir, shared=config.shared_folder)
        socks = bind(config.host, config.port)
    except BaseException:
        if lock is not None:
            lock.close()
        if created:
            shutil.rmtree(config.data_dir, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        raise
    try:
        if config.shared_folder:
            remember(config.data_dir, config.meta)
        App(dataclasses.replace(config, console=None)).close()   # schemas, temp files: once
        port = socks[0].getsockname()[1]
        fds = [s.fileno() for s in socks] + [lock.fileno()]
        role = f":{os.getpid()}:{','.join(str(s.fileno()) for s in socks)}"
        args = [sys.executable, "-m", "s3gw", *argv]
        log.info("s3gw supervisor (pid %d) on http://%s:%d: %d workers", os.getpid(),
                 config.host, port, workers)
        slots = [_Slot(i) for i in range(workers)]
        status = 0
        while not stop:
            now = time.monotonic()
            for slot in slots:
                if slot.proc is not None:
                    rc = slot.proc.poll()
                    if rc is None:
                        continue
                    lived = now - slot.started
                    pid, slot.proc = slot.proc.pid, None
                    if rc in (1, 2) and lived < REFUSAL_WINDOW:
                        log.error("worker %d exited %d at its start: stopping", slot.index, rc)
                        status = rc
                        stop.append(signal.SIGTERM)
                        break
                    if lived >= HEALTHY_AFTER:
                        slot.backoff = BACKOFF_FIRST
                    slot.restart_at = now + slot.backoff
                    slot.backoff = min(slot.backoff * 2, BACKOFF_MAX)
                    log.warning("worker %d (pid %s) exited %s; starting it again in %.1f s",
                                slot.index, pid, rc, slot.restart_at - now)
                if slot.proc is None and now >= slot.restart_at and not stop:
                    slot.proc = subprocess.Popen(
                        args, pass_fds=fds, env=dict(os.environ, **{ENV: f"{slot.index}{role}"}))
                    slot.started = now
            time.sleep(0.05)
        signum = stop[0]
        log.info("received %s, stopping %d workers", signal.Signals(signum).name,
                 sum(s.proc is not None for s in slots))
        _stop_all([s.proc for s in slots if s.proc is not None])
        return status
    finally:
        for s in socks:
            s.close()
        if lock is not None:
            lock.close()
        for s, handler in previous.items():
            signal.signal(s, handler)


def _stop_all(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for p in procs:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("worker pid %d did not stop in %.0f s: killed", p.pid, STOP_GRACE)
            p.kill()
            p.wait()
