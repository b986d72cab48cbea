"""The ``Range`` request header of GetObject, the way S3 reads it.

Theory of operation
-------------------
S3 serves at most one byte range per GET ("Amazon S3 doesn't support
retrieving multiple ranges of data per GET request").  :func:`parse_range`
turns the header into one inclusive ``(start, end)`` pair or ``None``
(= serve the whole object with 200), following RFC 9110 section 14 where S3
agrees with it:

=============================  ===========================================
header (object of ``size``)    result
=============================  ===========================================
``bytes=a-b``, a <= b < size   ``(a, b)``
``bytes=a-b``, b >= size       ``(a, size-1)`` (clipped; s3transfer relies on it)
``bytes=a-``                   ``(a, size-1)``
``bytes=-n``, n > 0            ``(max(0, size-n), size-1)``
``bytes=a-…`` with a >= size   ``InvalidRange`` (416)
``bytes=-0``                   ``InvalidRange`` (416)
any range on a 0-byte object   ``InvalidRange`` (416): nothing can satisfy it
``bytes=5-3`` (end < start)    ``None``: syntactically invalid -> ignored
``bytes=0-1,5-6`` (several)    ``None``: S3 ignores multi-range and sends 200
not ``bytes=`` / garbage       ``None``: ignored, as RFC 9110 allows
=============================  ===========================================

The unit is matched case-insensitively and optional whitespace around the
numbers is tolerated; numbers are ASCII digits only.  The 416 error carries
``RangeRequested`` and ``ActualObjectSize`` as S3's does, and the response
should carry ``Content-Range: bytes */size`` (:func:`unsatisfied_range`).
"""

from __future__ import annotations

import re

from .errors import S3Error

__all__ = ["content_range", "parse_range", "unsatisfied_range"]

_SPEC = re.compile(r"[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*")
_MAX_HEADER = 1024


def parse_range(header_value: str | None, size: int) -> tuple[int, int] | None:
    """Resolve a ``Range`` header against an object of *size* bytes.

    Args:
        header_value: the raw header value, or ``None`` when absent.
        size: the object's length in bytes.

    Returns:
        ``(start, end)`` inclusive, with ``0 <= start <= end < size``; or
        ``None`` to serve the whole object (no, multiple or invalid ranges, or
        a non-zero suffix of an empty object).

    Raises:
        S3Error: ``InvalidRange`` (416) when the single range is
            syntactically valid but cannot be satisfied.
    """
    if header_value is None or len(header_value) > _MAX_HEADER:
        return None
    unit, eq, spec = header_value.strip().partition("=")
    if not eq or unit.strip().lower() != "bytes" or "," in spec:
        return None
    m = _SPEC.fullmatch(spec)
    if m is None:
        return None
    first, last = m.groups()
    if not first and not last:
        return None
    if first:
        start = int(first)
        if last and int(last) < start:
            return None
        if start >= size:
            raise _unsatisfiable(header_value, size)
        end = size - 1 if not last else min(int(last), size - 1)
        return start, end
    suffix = int(last)
    if suffix == 0:
        raise _unsatisfiable(header_value, size)
    if size == 0:       # satisfiable (RFC 9110 14.1.1) but with no byte to name: S3 answers
        return None     # 200 with the empty object (Trino reads empty files' tails so)
    return max(0, size - suffix), size - 1


def _unsatisfiable(header_value: str, size: int) -> S3Error:
    return S3Error(
        "InvalidRange",
        range_requested=header_value.strip(),
        actual_object_size=size,
        headers={"Content-Range": unsatisfied_range(size)},
    )


def content_range(start: int, end: int, size: int) -> str:
    """The ``Content-Range`` value of a 206: ``bytes start-end/size``."""
    return f"bytes {start}-{end}/{size}"


def unsatisfied_range(size: int) -> str:
    """The ``Content-Range`` value of a 416: ``bytes */size``."""
    return f"bytes */{size}"
