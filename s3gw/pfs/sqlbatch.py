"""The committer's SQLite connection: compiled (``s3gw._native.sqlbatch``) or its
pure-Python twin (``_sqlbatch_py``), chosen at import like the hashing driver.

``BatchDb.run(ops)`` executes a list of ``(sql, params)``; the compiled one
steps them all with one release of the GIL (see ``_native/sqlbatch.pyx``).
``S3GW_PUREPYTHON=1`` forces the twin; so does a native module linked with
another copy of SQLite than Python's ``sqlite3`` (two copies in one process do
not see each other's POSIX locks, a documented way to corrupt a database).
"""

from __future__ import annotations

import ctypes
import sqlite3

from .._native import select
from . import _sqlbatch_py

__all__ = ["BatchDb", "FALLBACK_REASON", "IMPLEMENTATION"]

_API_VERSION = 1


def _select():
    return select("sqlbatch", _sqlbatch_py, _API_VERSION, "SQLite batch writer", _same_sqlite)


def _same_sqlite(native) -> str | None:
    """Why the compiled module must not be used, or None."""
    address, lib_version, threadsafe = native.library()
    if address != _python_sqlite_address():
        return (f"the native sqlbatch is linked with SQLite {lib_version} and Python's sqlite3 "
                f"with {sqlite3.sqlite_version}, two copies: their POSIX locks would not see "
                "each other")
    if not threadsafe:
        return "the system SQLite is built without thread support"
    return None


def _python_sqlite_address() -> int | None:
    """Where ``sqlite3_libversion`` is for Python's ``_sqlite3`` module (its own
    copy if it has one, else the shared library it links)."""
    try:
        import _sqlite3
        return ctypes.cast(ctypes.CDLL(_sqlite3.__file__).sqlite3_libversion, ctypes.c_void_p).value
    except (ImportError, OSError, AttributeError):
        return None


_impl, IMPLEMENTATION, FALLBACK_REASON = _select()

BatchDb = _impl.BatchDb
