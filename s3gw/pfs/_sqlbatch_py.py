"""Pure-Python twin of the compiled ``s3gw._native.sqlbatch`` (``_native/sqlbatch.pyx``).

The same ``BatchDb`` on Python's ``sqlite3``: ``run`` executes the statements
one by one (each ``sqlite3_step`` gives up the GIL and takes it back, which is
what the compiled one avoids), ``query`` returns ``fetchall()``.  Results,
values and exceptions are the same.
"""

from __future__ import annotations

import sqlite3

API_VERSION = 1


class BatchDb:
    """A SQLite connection for a committer (see the compiled module)."""

    def __init__(self, path: str, *, timeout_ms: int = 30000, pragmas=()) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=timeout_ms / 1000)
        for pragma in pragmas:
            self.query(pragma, ())

    @property
    def in_transaction(self) -> bool:
        return self._conn is not None and self._conn.in_transaction

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return self._conn

    def begin(self) -> None:
        """``BEGIN IMMEDIATE`` (waiting up to the busy timeout for the write lock)."""
        self._db().execute("BEGIN IMMEDIATE")

    def run(self, ops: list) -> None:
        """Execute ``(sql, params)`` in order; the first failure raises."""
        conn = self._db()
        for sql, params in ops:
            conn.execute(sql, params)

    def query(self, sql: str, params) -> list:
        """The rows of one statement."""
        return self._db().execute(sql, params).fetchall()
