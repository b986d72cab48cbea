"""Dates on the S3 wire, from and to integer nanoseconds since the epoch (UTC).

Theory of operation
-------------------
The store keeps times as ``int`` nanoseconds.  S3 shows them two ways:

* XML (``LastModified``, ``CreationDate``, ``Initiated``):
  ``2026-11-23T08:50:40.000Z`` -- millisecond precision, always with the
  fraction (minio-py accepts only ``…SS.fffZ`` or ``…SSZ``).  Truncated by
  default; ``ceil=True`` rounds up to the next millisecond for callers that
  must never show a time earlier than the write (``aws s3 sync`` compares
  listing times with local mtimes).
* Headers (``Last-Modified``, ``Date``): IMF-fixdate
  ``Mon, 23 Nov 2026 08:50:40 GMT``, always 29 characters, whole seconds
  (truncated, as HTTP validators compare whole seconds).

:func:`parse_http_date` accepts the three forms RFC 9110 requires a
recipient to read (IMF-fixdate, RFC 850, asctime) and returns ``None`` for
anything else -- an unparsable ``If-Modified-Since`` is ignored, as HTTP says.
RFC 850's two-digit year is pivoted at 70 (``69`` -> 2069, ``70`` -> 1970)
instead of relative to "now", because this module reads no clock.

Nothing here reads the clock; pass ``now`` values in.
"""

from __future__ import annotations

import calendar
import functools
from email.utils import formatdate
import re
import time

__all__ = ["http_date", "iso8601_ms", "parse_http_date", "parse_iso8601", "parse_signed_date"]

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUM = {m: i + 1 for i, m in enumerate(_MONTHS)}
_NS = 1_000_000_000


def http_date(ns: int) -> str:
    """Format *ns* as an IMF-fixdate (``Mon, 23 Nov 2026 08:50:40 GMT``)."""
    return _http_date_s(ns // _NS)


@functools.lru_cache(maxsize=4096)
def _http_date_s(seconds: int) -> str:
    # the standard library's IMF-fixdate, as the HTTP layer's Date header uses it
    return formatdate(seconds, usegmt=True)


def iso8601_ms(ns: int, *, ceil: bool = False) -> str:
    """Format *ns* as ``2026-11-23T08:50:40.000Z``.

    Args:
        ns: nanoseconds since the epoch.
        ceil: round up to the next millisecond instead of truncating.
    """
    ms = -((-ns) // 1_000_000) if ceil else ns // 1_000_000
    t = time.gmtime(ms // 1000)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{ms % 1000:03d}Z"
    )


_IMF = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) ([A-Z][a-z]{2}) (\d{4}) "
    r"(\d{2}):(\d{2}):(\d{2}) GMT"
)
_RFC850 = re.compile(
    r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), "
    r"(\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT"
)
_ASCTIME = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) ([ \d]\d) "
    r"(\d{2}):(\d{2}):(\d{2}) (\d{4})"
)


def _to_ns(year: int, mon: str, day: int, hh: int, mm: int, ss: int) -> int | None:
    month = _MONTH_NUM.get(mon)
    if month is None or not (1 <= day <= 31) or hh > 23 or mm > 59 or ss > 60:
        return None
    if day > calendar.monthrange(year, month)[1]:
        return None
    return calendar.timegm((year, month, day, hh, mm, min(ss, 59), 0, 0, 0)) * _NS


def parse_http_date(value: str | None) -> int | None:
    """Parse an HTTP date header value.

    Returns:
        Nanoseconds since the epoch, or ``None`` when *value* is absent or not
        one of IMF-fixdate, RFC 850 or asctime.
    """
    if not value:
        return None
    value = value.strip()
    m = _IMF.fullmatch(value)
    if m:
        d, mon, y, hh, mm, ss = m.groups()
        return _to_ns(int(y), mon, int(d), int(hh), int(mm), int(ss))
    m = _RFC850.fullmatch(value)
    if m:
        d, mon, yy, hh, mm, ss = m.groups()
        year = int(yy) + (2000 if int(yy) < 70 else 1900)
        return _to_ns(year, mon, int(d), int(hh), int(mm), int(ss))
    m = _ASCTIME.fullmatch(value)
    if m:
        mon, d, hh, mm, ss, y = m.groups()
        return _to_ns(int(y), mon, int(d.strip()), int(hh), int(mm), int(ss))
    return None


_RFC2822 = re.compile(
    r"(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{2}):(\d{2}):(\d{2})"
    r"\s*(?:GMT|UTC|UT|Z|([+-])(\d{2})(\d{2}))")


def parse_signed_date(value: str | None) -> int | None:
    """Parse the ``Date`` / ``x-amz-date`` of a signed request, leniently.

    Besides the HTTP forms of :func:`parse_http_date`, RFC 2822 dates with a
    numeric zone (``Thu, 26 Nov 2026 12:25:00 +0000``: s3cmd's SigV2
    ``x-amz-date``) are accepted.  Conditional headers keep the strict
    parser (RFC 9110 says to ignore what it rejects).

    Returns:
        Nanoseconds since the epoch, or ``None``.
    """
    ns = parse_http_date(value)
    if ns is not None or not value:
        return ns
    m = _RFC2822.fullmatch(value.strip())
    if m is None:
        return None
    d, mon, y, hh, mm, ss, sign, zh, zm = m.groups()
    ns = _to_ns(int(y), mon.capitalize(), int(d), int(hh), int(mm), int(ss))
    if ns is None or sign is None:
        return ns
    offset = (int(zh) * 3600 + int(zm) * 60) * 1_000_000_000
    return ns - offset if sign == "+" else ns + offset


_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z")


def parse_iso8601(value: str | None) -> int | None:
    """Parse ``YYYY-MM-DDTHH:MM:SS[.fff]Z`` (e.g. ``x-amz-date`` bodies, XML).

    Returns:
        Nanoseconds since the epoch, or ``None`` if *value* is not that form.
    """
    if not value:
        return None
    m = _ISO.fullmatch(value.strip())
    if not m:
        return None
    y, mo, d, hh, mm, ss, frac = m.groups()
    mon = _MONTHS[int(mo) - 1] if 1 <= int(mo) <= 12 else ""
    base = _to_ns(int(y), mon, int(d), int(hh), int(mm), int(ss))
    if base is None:
        return None
    return base + (int(frac.ljust(9, "0")) if frac else 0)
