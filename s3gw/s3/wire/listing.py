"""Listing parameters (pure): prefix, delimiter, max-keys, encoding-type, continuation tokens.

Shared by ListObjects(V2), ListObjectVersions, ListMultipartUploads and
ListBuckets; each checks its bucket first, then these.
"""

from __future__ import annotations

import base64
import binascii
from typing import Mapping

from . import xml_out as s3xml
from .errors import S3Error

__all__ = ["MAX_KEYS", "list_params", "count_param", "encode_token", "decode_token"]

MAX_KEYS = 1000


def list_params(q: Mapping[str, str]) -> tuple[str, str | None, int, str | None]:
    """The common listing parameters: (prefix, delimiter, max-keys, encoding-type)."""
    prefix = q.get("prefix", "")
    delimiter = q.get("delimiter") or None
    raw = q.get("max-keys", str(MAX_KEYS))
    count = count_param(raw)
    if count is None:
        raise S3Error("InvalidArgument", "max-keys must be a non-negative integer.",
                      argument_name="max-keys", argument_value=raw)
    max_keys = min(count, MAX_KEYS)
    encoding = s3xml.check_encoding_type(q.get("encoding-type"))
    return prefix, delimiter, max_keys, encoding


def count_param(raw: str) -> int | None:
    """A non-negative decimal count from a query value, or ``None`` if it is not one.

    ASCII digits only (``str.isdigit`` also takes ``'²'``, which ``int`` refuses);
    values past 10**9 read as 10**9, so a thousand-digit value is a large count,
    not an ``int`` conversion error.
    """
    if not (raw.isascii() and raw.isdigit()):
        return None
    digits = raw.lstrip("0") or "0"
    return int(digits) if len(digits) <= 9 else 10**9


def encode_token(position: str) -> str:
    """The opaque continuation token for a listing position (a key or bucket name)."""
    return base64.urlsafe_b64encode(position.encode("utf-8")).decode("ascii")


def decode_token(token: str) -> str:
    """The position in a token from :func:`encode_token`.

    Raises:
        S3Error: ``InvalidArgument`` (continuation-token) if it is not one.
    """
    try:
        # validate: a token with characters outside the alphabet is refused, not
        # read as the shorter token those characters hide
        raw = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect.",
                      argument_name="continuation-token") from None
