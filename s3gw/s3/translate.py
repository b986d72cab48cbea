"""The one translation of lower-layer errors into S3 errors (STYLE rule 2).

``LOWER_ERRORS`` maps exception classes of pfs, ingest and http to S3 codes;
:func:`to_s3_error` looks every class of an exception's MRO up in it, most
specific first.  Keyed by the classes, so renaming one is an import error
here, not a silent ``InternalError``.  The S3 vocabulary itself (codes,
statuses, the XML) is ``s3.wire.errors``.
"""

from __future__ import annotations

import errno
import sqlite3

from ..http.errors import BodyTimeout, MalformedBody
from ..ingest.pipeline import BodyTooLong
from ..pfs.history import InvalidVersion
from ..pfs.model import (
    BranchExists,
    ConditionFailed,
    InvalidName,
    NoSuchBranch,
    NoSuchCommit,
    NoSuchFile,
    NoSuchRepo,
)
from ..pfs.uploads import NoSuchUpload
from .wire.errors import S3Error

__all__ = ["LOWER_ERRORS", "to_s3_error"]

# Lower-layer exception class -> S3 code.
LOWER_ERRORS: dict[type[BaseException], str] = {
    # pfs
    NoSuchRepo: "NoSuchBucket",
    NoSuchBranch: "NoSuchBucket",
    BranchExists: "BucketAlreadyOwnedByYou",
    NoSuchFile: "NoSuchKey",
    NoSuchCommit: "NoSuchVersion",
    InvalidName: "InvalidBucketName",
    ConditionFailed: "PreconditionFailed",
    InvalidVersion: "InvalidArgument",
    NoSuchUpload: "NoSuchUpload",
    # http (the request body failed)
    BodyTimeout: "RequestTimeout",
    MalformedBody: "IncompleteBody",
    # ingest
    BodyTooLong: "IncompleteBody",
}


def to_s3_error(exc: BaseException) -> S3Error:
    """Translate any exception into an :class:`S3Error`, once.

    ``S3Error`` passes through; a class in :data:`LOWER_ERRORS` (or a subclass)
    maps to its code (an ``s3_fields`` dict attribute on the exception, if
    present, supplies extra fields such as ``key``); anything else is
    ``InternalError`` with the generic message.
    """
    if isinstance(exc, S3Error):
        return exc
    if _disk_full(exc):
        return S3Error("InsufficientStorage")
    for cls in type(exc).__mro__:
        code = LOWER_ERRORS.get(cls)
        if code is not None:
            fields = getattr(exc, "s3_fields", None)
            return S3Error(code, **(fields if isinstance(fields, dict) else {}))
    return S3Error("InternalError")


def _disk_full(exc: BaseException) -> bool:
    """A full disk (or quota) while writing chunks or the database, however it surfaced:
    ``OSError`` ENOSPC/EDQUOT, SQLite's "database or disk is full" (SQLITE_FULL), or
    either as the cause of another error."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False
