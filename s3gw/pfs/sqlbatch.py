"""The committer's SQLite connection: compiled (``s3gw._native.sqlbatch``) or its
pure-Python twin (``_sqlbatch_py``), chosen at import like the hashing driver.

``BatchDb.run(ops)`` executes a list of ``(sql, params)``; the compiled one
steps them all with one release of the GIL (see ``_native/sqlbatch.pyx``).
``S3GW_PUREPYTHON=1`` forces the twin.
"""

from __future__ import annotations

import logging
import os

from . import _sqlbatch_py

__all__ = ["BatchDb", "FALLBACK_REASON", "IMPLEMENTATION"]

_log = logging.getLogger(__name__)

_API_VERSION = 1


def _select():
    if os.environ.get("S3GW_PUREPYTHON") == "1":
        return _sqlbatch_py, "python", "S3GW_PUREPYTHON=1"
    try:
        from s3gw._native import sqlbatch as native
    except ImportError as exc:
        return _sqlbatch_py, "python", f"native sqlbatch not built ({exc})"
    version = getattr(native, "API_VERSION", None)
    if version != _API_VERSION:
        return _sqlbatch_py, "python", (
            f"native sqlbatch API_VERSION {version} != {_API_VERSION}; rebuild it "
            "(python setup.py build_ext --inplace)")
    return native, "cython", None


_impl, IMPLEMENTATION, FALLBACK_REASON = _select()
if IMPLEMENTATION == "python" and os.environ.get("S3GW_PUREPYTHON") != "1":
    _log.warning("using the pure-Python SQLite batch writer: %s", FALLBACK_REASON)

BatchDb = _impl.BatchDb
