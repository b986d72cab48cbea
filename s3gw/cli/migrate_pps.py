"""Pipelines between a data folder's ``pps.sqlite`` and a PostgreSQL database: the
pipeline part of ``s3gw migrate``.

A gateway's pipeline state lives where its metadata lives (``pps.backends``): a
SQLite folder's in ``pps.sqlite`` (job logs as files beside it), a PostgreSQL
gateway's in the database, shared by every gateway of it.  So moving a store moves
its pipelines:

* ``s3gw migrate --from DIR --meta URL --chunks ...`` (``cli/migrate.py``): after the
  metadata, :func:`pipelines_into_database` copies every pipeline (every spec
  version) and every job (its id, state, times, reason, flags, and log) of
  ``DIR/pps.sqlite`` into the database.  The ``--to`` folder gets no
  ``pps.sqlite``.
* The way back, ``s3gw migrate --from DIR --to NEW``: :func:`pipelines_out_of_database`
  fills ``NEW/pps.sqlite`` from the database.
* ``s3gw migrate --pipelines --from DIR [--meta URL]`` (:func:`run_migrate_pipelines`):
  a folder already served on PostgreSQL whose ``pps.sqlite`` still holds the
  pipelines of the per-folder layout (its gateways refuse to start until then:
  ``pps.backends.OldPipelineState``).  They are copied in, verified, and the file
  renamed ``pps.sqlite.in-database-<time>``.  The folder's lock is taken (its
  gateways stopped).  Several such folders: run it on each; a pipeline already in
  the database with the same specs is skipped, one with other specs refused.

Each copy adds only what the destination lacks (a second run adds nothing), then
verifies: every source pipeline dumps the same in the destination, every source job
reads back equal, with a log of the same size (a log longer than the destination's
limit, from before logs had one, is cut there, as the store cuts any).
"""

from __future__ import annotations

import os
import sys
import time

from .progress import track

__all__ = ["pipelines_into_database", "pipelines_out_of_database", "run_migrate_pipelines",
           "copy_pipelines"]


class PipelinesError(Exception):
    """The copy cannot go on (the message says why)."""


def copy_pipelines(src, dst) -> tuple[int, int]:
    """Every pipeline and job of the pipeline store ``src`` into ``dst`` (both
    ``pps.interface.PipelineStore``), then the check; (pipelines, jobs) added.

    Raises:
        PipelinesError: a pipeline of the same name with other specs in ``dst``, or the
            check failed.
    """
    from ..pps.interface import PipelineConflict
    from ..pps.sqlstore import TRUNCATED
    dumps = src.dump_pipelines()
    try:
        pipelines = sum(dst.load_pipeline(p) for p in dumps)
    except PipelineConflict as exc:
        raise PipelinesError(str(exc)) from None
    jobs = src.jobs(None, limit=None)
    added = 0
    read_max = dst.log_limit + 1
    for job in track(list(reversed(jobs)), "copying jobs", unit="job"):  # oldest first
        added += dst.load_job(job, src.read_log(job.id, 0, read_max))
    theirs = {p.name: p for p in dst.dump_pipelines()}
    for p in dumps:
        if theirs.get(p.name) != p:
            raise PipelinesError(f"pipeline {p.name}: not the same in the destination")
    note = len(TRUNCATED.format(limit=dst.log_limit).encode())
    for job in jobs:
        if dst.job(job.id) != job:
            raise PipelinesError(f"job {job.id}: not the same in the destination")
        size = src.log_size(job.id)
        want = size if size <= dst.log_limit else dst.log_limit + note
        if dst.log_size(job.id) != want:
            raise PipelinesError(f"job {job.id}: its log is {dst.log_size(job.id)} bytes in "
                                 f"the destination, {size} in the source")
    return pipelines, added


def pipelines_into_database(src_dir: str, url: str) -> None:
    """``DIR/pps.sqlite`` (if any) into the database ``url`` (migrated already)."""
    from ..pps.pgstore import PostgresPpsStore
    from ..pps.store import PPS_FILE, PpsStore
    if not os.path.exists(os.path.join(src_dir, PPS_FILE)):
        return
    src, dst = PpsStore(src_dir, create=False), PostgresPpsStore(url)
    try:
        pipelines, jobs = copy_pipelines(src, dst)
        print(f"pipelines: {pipelines} pipeline(s) and {jobs} job(s) copied into the "
              f"database; {len(src.dump_pipelines())} and {len(src.jobs(None, limit=None))} "
              "verified")
    finally:
        src.close()
        dst.close()


def pipelines_out_of_database(url: str, to_dir: str) -> None:
    """The database's pipelines into ``NEW/pps.sqlite`` (the way back)."""
    from ..pps.pgstore import PostgresPpsStore
    from ..pps.store import PpsStore
    src, dst = PostgresPpsStore(url), PpsStore(to_dir)
    try:
        pipelines, jobs = copy_pipelines(src, dst)
        print(f"pipelines: {pipelines} pipeline(s) and {jobs} job(s) copied into "
              f"{os.path.join(to_dir, 'pps.sqlite')}; verified")
    finally:
        src.close()
        dst.close()


def run_migrate_pipelines(args) -> int:
    """``s3gw migrate --pipelines --from DIR [--meta URL]`` (see the module docstring)."""
    try:
        _into_database_of_folder(args.from_dir, args.meta)
    except PipelinesError as exc:
        print(f"s3gw: migrate --pipelines: {exc}", file=sys.stderr)
        return 1
    return 0


def _into_database_of_folder(folder: str, meta: str | None) -> None:
    from ..app import DataFolderBusy, lock_data_folder
    from ..pfs.backends import is_postgres_url, remembered
    from ..pfs.postgres import migrate as migrate_schema
    from ..pps.store import PPS_FILE
    from .metastore import meta_error
    if not folder:
        raise PipelinesError("name the data folder with --from DIR")
    url = meta or remembered(folder)
    if not is_postgres_url(url):
        raise PipelinesError(f"{folder} keeps its pipelines in its own pps.sqlite (its "
                             "metadata is there too): name the database with --meta "
                             "postgresql://...")
    path = os.path.join(folder, PPS_FILE)
    if not os.path.exists(path):
        print(f"nothing to copy: {folder} has no {PPS_FILE}")
        return
    try:
        lock = lock_data_folder(folder)
    except DataFolderBusy as exc:
        raise PipelinesError(f"{exc}: stop its gateways first") from None
    try:
        try:
            migrate_schema(url)
            pipelines_into_database(folder, url)
        except Exception as exc:
            reason = meta_error(exc)
            if reason is None:
                raise
            raise PipelinesError(reason) from None
        _set_aside(path)
    finally:
        lock.close()


def _set_aside(path: str) -> None:
    """The copied ``pps.sqlite``, checkpointed into one file and renamed out of the way."""
    import sqlite3
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()
    aside = f"{path}.in-database-{int(time.time())}"
    os.replace(path, aside)
    for suffix in ("-wal", "-shm"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass
    print(f"{path} renamed {os.path.basename(aside)}: the folder's gateways now run "
          "the pipelines from the database")
