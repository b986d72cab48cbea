"""Conditional requests (pure): RFC 9110 section 13 as S3 applies it.

Reads (GetObject, HeadObject), RFC 9110 13.2.2, in this order:

1. ``If-Match`` present: false -> 412.  (Strong comparison: a weak
   ``W/"..."`` validator never matches; ``*`` matches any existing object.)
2. ``If-Match`` absent, ``If-Unmodified-Since`` present and valid: modified
   after it -> 412.  With ``If-Match`` present it is ignored, which is S3's
   documented "If-Match true + If-Unmodified-Since false -> 200".
3. ``If-None-Match`` present: true (a match, weak comparison) -> 304.
4. ``If-None-Match`` absent, ``If-Modified-Since`` present and valid: not
   modified since -> 304.  With ``If-None-Match`` present it is ignored:
   S3's "If-None-Match false + If-Modified-Since true -> 304".
5. ``If-Range`` (only with ``Range``): an ETag must match strongly, a date
   must equal Last-Modified exactly; otherwise the Range is ignored (200).

ETags are compared without quotes, so Spark's unquoted values work; lists
(``"a", "b"``) are accepted.  Dates compare at one-second resolution (that
of the ``Last-Modified`` header); an unparsable date is ignored, as the RFC
requires.

Writes (PutObject, CompleteMultipartUpload, CopyObject's destination):
``If-None-Match: *`` -> create only if absent (412 otherwise); ``If-Match:
<etag>`` -> replace only that content (412 if it differs, 404 NoSuchKey if
there is no object).  Other ``If-None-Match`` values are not supported by S3
either (501).  Deletes (DeleteObject's ``If-Match``, DeleteObjects'
``<ETag>``) use the same check, ``*`` meaning "exists".  ``WriteCondition``
is the callback ``SqliteMetadata.commit`` runs inside the transaction, so two
racing writers cannot both pass it.
"""

from __future__ import annotations

from ...pfs.model import ConditionFailed, FileInfo, NoSuchFile
from .dates import parse_http_date
from .errors import S3Error

__all__ = ["evaluate_read", "failed_condition", "if_range_holds", "write_condition",
           "WriteCondition"]


def _tags(header: str) -> list[str]:
    return [t.strip() for t in header.split(",") if t.strip()]


def _matches(header: str, etag: str, *, weak: bool) -> bool:
    for t in _tags(header):
        if t == "*":
            return True
        if t.startswith("W/"):
            if not weak:
                continue
            t = t[2:]
        if t.strip('"') == etag:
            return True
    return False


def evaluate_read(headers, etag: str, time_ns: int) -> int | None:
    """None to proceed, 412 (PreconditionFailed) or 304 (Not Modified)."""
    modified_s = time_ns // 1_000_000_000
    if_match = headers.get("if-match")
    if if_match is not None:
        if not _matches(if_match, etag, weak=False):
            return 412
    else:
        ius = parse_http_date(headers.get("if-unmodified-since"))
        if ius is not None and modified_s > ius // 1_000_000_000:
            return 412
    if_none = headers.get("if-none-match")
    if if_none is not None:
        if _matches(if_none, etag, weak=True):
            return 304
    else:
        ims = parse_http_date(headers.get("if-modified-since"))
        if ims is not None and modified_s <= ims // 1_000_000_000:
            return 304
    return None


def failed_condition(headers) -> str:
    """The ``<Condition>`` S3 names in a read's PreconditionFailed."""
    return "If-Match" if headers.get("if-match") is not None else "If-Unmodified-Since"


def if_range_holds(headers, etag: str, time_ns: int) -> bool:
    """True when a Range applies: no ``If-Range``, or it still names this object."""
    value = headers.get("if-range")
    if value is None:
        return True
    value = value.strip()
    if value.startswith('"') or value.startswith("W/"):
        return value.startswith('"') and value.strip('"') == etag
    when = parse_http_date(value)
    if when is None:
        return value == etag          # an unquoted ETag (lenient, like If-Match)
    return when // 1_000_000_000 == time_ns // 1_000_000_000


class WriteCondition:
    """``condition(path, current)`` for ``SqliteMetadata.commit``: raises pfs errors."""

    def __init__(self, if_match: str | None, if_none_match: bool):
        self.if_match = if_match
        self.if_none_match = if_none_match

    def __call__(self, path: str, current: FileInfo | None) -> None:
        if self.if_match is not None:
            if current is None:
                raise NoSuchFile(path)
            if not _matches(self.if_match, current.object.etag, weak=False):
                err = ConditionFailed(path)
                err.s3_fields = {"condition": "If-Match"}
                raise err
        if self.if_none_match and current is not None:
            err = ConditionFailed(path)
            err.s3_fields = {"condition": "If-None-Match"}
            raise err


def write_condition(headers) -> WriteCondition | None:
    """The PutObject precondition the request carries, if any.

    Raises:
        S3Error: ``NotImplemented`` for an ``If-None-Match`` other than ``*``.
    """
    if_match = headers.get("if-match")
    if_none = headers.get("if-none-match")
    if if_none is not None and if_none.strip() != "*":
        raise S3Error("NotImplemented", "If-None-Match on a write supports only '*'.")
    if if_match is None and if_none is None:
        return None
    return WriteCondition(if_match, if_none is not None)
