"""Small PUTs made durable and committed in batches by a two-thread pipeline.

A small PUT's blocking work (bucket check, hashing and staging its chunk,
the digest checks, ``fdatasync`` + rename + directory fsync, the commit) is a
few hundred microseconds of system calls.  Run in a worker thread per
request, eight concurrent PUTs kept nine threads passing the GIL back and
forth at every one of those calls: each hand-over leaves the GIL idle while
the next thread is woken, so 8 clients reached ~600 PUT/s with the server
using only 1.2 of its 2 cores and most PUT latency spent waiting for the GIL.

Here one thread (the stager) takes whatever PUTs are queued and runs them
together: stage every chunk, then make them durable together (small chunks
in one pack append and one ``fdatasync``), and hands the batch to a second
thread (the committer), which commits it in one SQLite transaction in which
each PUT is still its own commit and fails alone
(``MetadataStore.commit_many``).  While one batch commits, the next is
staged and synced: the commit (SQLite's work and the WAL sync, about 0.85 ms
for four PUTs, mostly without the GIL) no longer stalls the staging.  Batches
that queue at the committer are committed together, in staging order.  The
order per PUT is the streamed path's (chunk durable -> commit), so the crash
guarantees are the same, and each caller gets its answer only once its
commit is durable.  The event loop is woken once per commit.

A PUT whose object is kept in its commit (up to ``INLINE_MAX`` bytes, see
``store.manifest``) has nothing to make durable before its commit: it is
queued at the committer directly (``commit``), one thread hop instead of two,
and the committer hashes and checks it (its ``prepare``) just before the
commit, off the event loop, which is the busier thread (hashing and queueing
there were ~18% of its time per 4 KiB PUT).

Both threads are started on demand and exit after a few idle seconds.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

import trio

__all__ = ["SmallPutWriter", "SmallPutJob"]

log = logging.getLogger("s3gw.smallputs")


class SmallPutJob(Protocol):
    def stage(self, seen: set): ...       # checks, hash, write the chunk: its WriteBatch
    #                                       (seen: the branches found so far in this batch)
    def prepare(self) -> None: ...        # (``commit`` only) hash and check, on the committer
    def synced(self) -> None: ...         # its batch is durable
    def discard(self) -> None: ...        # its batch could not be made durable: remove it
    def commit_args(self) -> tuple: ...   # MetadataStore.commit_many's tuple
    def answer(self, commit) -> object: ...  # the caller's result, from its durable commit


class _OnDemandThread:
    """A queue served by one thread, started when work arrives and gone after
    ``idle_exit`` idle seconds.  ``take`` turns the queue into one unit of work.

    ``put`` runs on the event loop for every small PUT, so it is kept to C-level
    calls: a plain lock around the list, and a second lock used as the sleeping
    thread's wake-up signal (released only when the thread sleeps).  A
    ``threading.Condition`` cost ~5% of the event loop's time in 4 KiB PUTs
    (``notify`` is Python code)."""

    def __init__(self, name: str, work, take, idle_exit: float):
        self.name, self._work, self._take, self.idle_exit = name, work, take, idle_exit
        self.items: list = []
        self._lock = threading.Lock()       # guards items, _sleeping, _running
        self._wake = threading.Lock()       # held while nobody signalled the sleeper
        self._wake.acquire()
        self._sleeping = False
        self._running = False

    def put(self, items: list) -> None:
        with self._lock:
            self.items.extend(items)
            if self._sleeping:
                self._sleeping = False
                self._wake.release()
            elif not self._running:
                self._running = True
                threading.Thread(target=self._loop, name=self.name, daemon=True).start()

    def _loop(self) -> None:
        lock, wake = self._lock, self._wake
        while True:
            with lock:
                while not self.items:
                    self._sleeping = True
                    lock.release()
                    try:
                        woken = wake.acquire(timeout=self.idle_exit)
                    finally:
                        lock.acquire()
                    if not woken:
                        if self._sleeping:              # nobody came: idle, exit
                            self._sleeping = False
                            self._running = False
                            return
                        wake.acquire()                  # signalled after the timeout
                unit = self._take(self.items)
            try:
                self._work(unit)
            except BaseException:  # noqa: BLE001 - a bug: keep serving the queue
                log.exception("%s failed", self.name)


class SmallPutWriter:
    """Two threads in a pipeline: the first stages a batch and makes its chunks
    durable, the second commits it, so the next batch is staged and synced
    while the previous one commits (the commit's SQLite work and WAL sync run
    without the GIL, the staging needs it).  Batches are committed in the order
    they were staged; if commits fall behind, the waiting batches are committed
    together, in one transaction."""

    def __init__(self, meta, store, *, max_batch: int = 64, idle_exit: float = 5.0):
        self.meta = meta
        self.store = store
        self.max_batch = max_batch
        self._stager = _OnDemandThread("s3gw-small-puts", self._stage_batch, self._take_jobs,
                                       idle_exit)
        self._committer = _OnDemandThread("s3gw-small-commits", self._commit_batches,
                                          _take_all, idle_exit)
        self.batches = 0   # counters, for tests and curiosity: batches staged,
        self.jobs = 0      # jobs queued (staged or not),
        self.commits = 0   # transactions

    def _take_jobs(self, items: list) -> list:
        batch = items[:self.max_batch]
        del items[:self.max_batch]
        return batch

    async def run(self, job: SmallPutJob) -> object:
        """Queue ``job`` and wait (not cancellable, like ``trio.to_thread``) for its
        commit's result; raises what its stage, sync or commit raised."""
        entry = self._entry(job)
        self._stager.put([entry])
        return await self._result(entry)

    async def commit(self, job: SmallPutJob) -> object:
        """Like ``run`` for a job with nothing to make durable (an object kept in its
        commit): it goes to the committer directly, which calls its ``prepare``
        (hash and check) before the commit."""
        entry = self._entry(job)
        entry[3] = _UNPREPARED
        self._committer.put([([entry], [entry])])
        return await self._result(entry)

    def _entry(self, job: SmallPutJob) -> list:
        self.jobs += 1      # on the event loop's thread
        return [job, trio.lowlevel.current_trio_token(), trio.lowlevel.current_task(),
                None, None]   # result, error

    @staticmethod
    async def _result(entry: list) -> object:
        # Parked until the writer's wake-up reschedules this task; a cancellation
        # is refused (Abort.FAILED) and seen at the task's next checkpoint.  No
        # Event and no shielded scope: less event-loop work per PUT.
        await trio.lowlevel.wait_task_rescheduled(_refuse_abort)
        if entry[4] is not None:
            raise entry[4]
        return entry[3]

    # -- the first thread: stage and sync ---------------------------------------------------
    def _stage_batch(self, batch: list) -> None:
        try:
            durable = self._make_durable(batch)
        except BaseException as exc:  # noqa: BLE001 - never leave a caller waiting
            _fail_unanswered(batch, exc)
            durable = []
        self.batches += 1
        if durable:
            self._committer.put([(batch, durable)])
        else:
            self._wake(batch)

    def _make_durable(self, batch: list) -> list:
        staged, writes = [], []
        seen: set = set()
        for entry in batch:
            try:
                writes.append(entry[0].stage(seen))
            except Exception as exc:  # noqa: BLE001 - this PUT fails alone
                entry[4] = exc
            else:
                staged.append(entry)
        durable = []
        # every chunk's fdatasync (a device flush) at once, then the directories'
        for entry, error in zip(staged, self.store.sync_many(writes)):
            try:
                if error is not None:
                    entry[0].discard()
                    raise error
                entry[0].synced()
            except Exception as exc:  # noqa: BLE001
                entry[4] = exc
            else:
                durable.append(entry)
        return durable

    # -- the second thread: commit ----------------------------------------------------------
    def _commit_batches(self, units: list) -> None:
        durable = []
        for _batch, entries in units:
            for entry in entries:
                if entry[3] is _UNPREPARED:      # queued by ``commit``: hash and check it here
                    entry[3] = None
                    try:
                        entry[0].prepare()
                    except Exception as exc:  # noqa: BLE001 - this PUT fails alone
                        entry[4] = exc
                        continue
                durable.append(entry)
        try:
            results = self.meta.commit_many([entry[0].commit_args() for entry in durable])
            for entry, (commit, error) in zip(durable, results):
                if error is None:
                    entry[3] = entry[0].answer(commit)
                else:
                    entry[4] = error
        except BaseException as exc:  # noqa: BLE001 - never leave a caller waiting
            _fail_unanswered(durable, exc)
        self.commits += 1
        self._wake([entry for batch, _entries in units for entry in batch])

    @staticmethod
    def _wake(batch: list) -> None:
        by_token: dict = {}
        for entry in batch:
            by_token.setdefault(entry[1], []).append(entry[2])
        for token, tasks in by_token.items():
            try:
                token.run_sync_soon(_reschedule_all, tasks)
            except trio.RunFinishedError:  # pragma: no cover - that event loop is gone
                pass


_UNPREPARED = object()   # an entry's result before ``prepare`` ran


def _take_all(items: list) -> list:
    unit = items[:]
    items.clear()
    return unit


def _fail_unanswered(entries: list, exc: BaseException) -> None:
    for entry in entries:
        if entry[3] is None and entry[4] is None:
            entry[4] = exc


def _refuse_abort(_raise_cancel) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED


def _reschedule_all(tasks: list) -> None:
    for task in tasks:
        trio.lowlevel.reschedule(task)
