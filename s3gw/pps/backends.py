"""Which pipeline store a gateway uses: the one its metadata store says.  For the
wiring only (``app.py``, ``cli``); everything else takes a
``pps.interface.PipelineStore``.

* Metadata in the data folder (SQLite): ``<data>/pps.sqlite`` (``pps.store``).
* Metadata in PostgreSQL (``--meta`` or the folder's ``metadata.url``): the same
  database (``pps.pgstore``), shared by every gateway of it.

A folder whose metadata is in PostgreSQL but which still holds a ``pps.sqlite``
with pipelines or jobs (the layout before pipeline state moved into the database)
is refused in one line (:class:`OldPipelineState`) naming the command that copies
them in: a gateway never silently drops pipelines it used to run.
"""

from __future__ import annotations

import os
import sqlite3

from ..pfs.backends import is_postgres_url, remembered
from .interface import PipelineStore

__all__ = ["open_pps_store", "OldPipelineState", "old_pipeline_state"]

PPS_FILE = "pps.sqlite"


class OldPipelineState(Exception):
    """The folder's pps.sqlite holds pipelines the database does not (one line)."""


def old_pipeline_state(data_dir: str) -> tuple[int, int]:
    """(pipelines, jobs) in ``<data>/pps.sqlite``; (0, 0) when it is absent or empty."""
    path = os.path.join(data_dir, PPS_FILE)
    if not os.path.exists(path):
        return 0, 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        count = lambda t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] \
            if t in tables else 0  # noqa: E731
        return count("pipelines"), count("jobs")
    finally:
        conn.close()


def open_pps_store(data_dir: str, meta: str | None = None) -> PipelineStore:
    """The pipeline store of a gateway whose metadata is ``meta`` (None: the folder's
    recorded URL, else its SQLite file).

    Raises:
        OldPipelineState: PostgreSQL metadata, and the folder's pps.sqlite is not empty.
        pfs.postgres.SchemaMismatch: the database lacks the pipelines' migration.
    """
    url = meta or remembered(data_dir)
    if is_postgres_url(url):
        pipelines, jobs = old_pipeline_state(data_dir)
        if pipelines or jobs:
            folder = os.path.abspath(data_dir)
            raise OldPipelineState(
                f"{os.path.join(folder, PPS_FILE)} holds {pipelines} pipeline(s) and {jobs} "
                f"job(s) of this folder, and pipelines now live in the database: copy them "
                f"in with `s3gw migrate --pipelines --from {data_dir}` (or move the file away "
                "to drop them)")
        from .pgstore import PostgresPpsStore
        return PostgresPpsStore(url)
    from .store import PpsStore
    return PpsStore(data_dir)
