"""Readiness checks: can this gateway serve the data folder it opened?

``Readiness.check`` (blocking: run it in a worker thread, under a timeout) runs
the checks in order and returns ``(ready, {check: "ok" | why})``:

* ``metadata_file``: the metadata store's file is still at its path and is the
  file the server opened (same device and inode).  A removed or replaced
  ``meta.sqlite`` keeps working through the server's open handles, but nothing
  written from then on survives a restart, and the admin commands see another
  store: not ready.
* ``metadata``: a real query through the server's own read connection (the
  schema version row of the ``meta`` table); a locked, corrupt or unreadable
  database fails it (or makes it exceed the caller's timeout).
* ``chunk_store``: the chunk folder is there.

The reasons name the check and the error class, never a path or a secret.
"""

from __future__ import annotations

import os

__all__ = ["Readiness"]


class Readiness:
    """``check()``: the metadata store answers a query; where the metadata is a local file
    (SQLite), it is still the file this server opened; where the chunks are a local folder,
    it exists.  Stores that are neither (PostgreSQL, an object store) skip those checks."""

    def __init__(self, meta, chunk_root: str | None) -> None:
        self.meta = meta
        self.chunk_root = chunk_root
        self._path = getattr(meta, "path", None)
        self._identity = None
        if self._path is not None:
            st = os.stat(self._path)
            self._identity = (st.st_dev, st.st_ino)

    def check(self) -> tuple[bool, dict[str, str]]:
        checks: dict[str, str] = {}
        if self._path is not None:
            try:
                st = os.stat(self._path)
            except FileNotFoundError:
                checks["metadata_file"] = "missing: the metadata store's file was removed"
            except OSError as exc:
                checks["metadata_file"] = f"cannot stat: {type(exc).__name__}"
            else:
                checks["metadata_file"] = ("ok" if (st.st_dev, st.st_ino) == self._identity else
                                           "replaced: not the file this server opened")
        try:
            row = self.meta.reader.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            checks["metadata"] = "ok" if row is not None else "no schema version"
        except Exception as exc:  # noqa: BLE001 - any failure of the query is the answer
            checks["metadata"] = f"query failed: {type(exc).__name__}"
        if self.chunk_root is not None:
            checks["chunk_store"] = ("ok" if os.path.isdir(self.chunk_root)
                                     else "chunk folder missing")
        return all(v == "ok" for v in checks.values()), checks
