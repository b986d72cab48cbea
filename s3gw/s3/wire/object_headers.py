"""Which request headers become part of a stored object, and header checks.

Theory of operation
-------------------
PutObject, CopyObject (``REPLACE``) and CreateMultipartUpload store a few
standard headers and every ``x-amz-meta-*`` header; GET/HEAD send them back.
:func:`stored_headers` picks them from the request:

* ``Content-Type``, ``Content-Disposition``, ``Cache-Control``,
  ``Content-Language``, ``Expires``: stored verbatim.
* ``Content-Encoding``: stored with the ``aws-chunked`` token removed (it
  describes the request framing, not the object); dropped if nothing is left.
* ``x-amz-meta-*``: names lowercased (as HTTP/2 and S3 present them), values
  verbatim; repeated headers are joined with ``,``.  S3 limits user metadata
  to 2 KB measured as the UTF-8 bytes of each name (without the prefix) plus
  each value: above that, ``MetadataTooLarge``.
* ``x-amz-acl``: a canned ACL is accepted and ignored (s3gw has no ACLs;
  rclone sends ``private`` on every bucket PUT); an unknown value is
  ``InvalidArgument`` as in S3.  ``x-amz-grant-*`` headers are ignored.

The result is a list of ``(name, value)`` in a stable order (standard headers
first in the order above, then user metadata sorted by name), so equal
requests store equal metadata.

Headers are given either as something with ``.items()`` or as an iterable of
``(name, value)`` pairs (names are lowercased here either way).  Values are
expected as the http layer delivers them -- latin-1 text, one code point per
octet -- and are stored and sent back unchanged, so non-ASCII (UTF-8)
metadata round-trips byte for byte; the 2 KB limit counts those octets.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping

from .errors import S3Error

__all__ = [
    "CANNED_ACLS",
    "MAX_USER_METADATA",
    "STANDARD_STORED",
    "check_acl",
    "content_md5",
    "stored_headers",
    "strip_aws_chunked",
]

MAX_USER_METADATA = 2048
STANDARD_STORED = (
    "content-type",
    "content-disposition",
    "cache-control",
    "content-encoding",
    "content-language",
    "expires",
)
CANNED_ACLS = frozenset(
    {
        "private",
        "public-read",
        "public-read-write",
        "authenticated-read",
        "aws-exec-read",
        "bucket-owner-read",
        "bucket-owner-full-control",
        "log-delivery-write",
    }
)
_META = "x-amz-meta-"


def _pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> Iterable[tuple[str, str]]:
    items = getattr(headers, "items", None)
    return items() if callable(items) else headers  # type: ignore[return-value]


def _octets(text: str) -> int:
    try:
        return len(text.encode("latin-1"))  # wire octets, as the http layer decodes them
    except UnicodeEncodeError:
        return len(text.encode("utf-8", "surrogateescape"))


def strip_aws_chunked(value: str | None) -> str | None:
    """Remove the ``aws-chunked`` coding from a Content-Encoding value.

    Returns:
        The value byte for byte when it has no ``aws-chunked`` coding (``deflate,
        gzip`` stays so: clients compare what they stored); else the other codings
        as sent, without that one and its comma; ``None`` if none remain.
    """
    if value is None:
        return None
    pieces = value.split(",")
    kept = [c for c in pieces if c.strip().lower() != "aws-chunked"]
    if len(kept) == len(pieces):
        return value
    return ",".join(c for c in kept if c.strip()).strip() or None


def check_acl(value: str | None) -> None:
    """Accept a canned ``x-amz-acl`` value (or none).

    Raises:
        S3Error: ``InvalidArgument`` for a value S3 does not know.
    """
    if value is not None and value.strip() not in CANNED_ACLS:
        raise S3Error(
            "InvalidArgument", argument_name="x-amz-acl", argument_value=value
        )


def stored_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
) -> list[tuple[str, str]]:
    """Pick the headers to store with an object.

    Args:
        headers: the request headers.

    Returns:
        ``[(lowercase name, value), …]``, standard headers first, then
        ``x-amz-meta-*`` sorted by name.

    Raises:
        S3Error: ``MetadataTooLarge`` (user metadata over 2 KB);
            ``InvalidArgument`` (unknown canned ACL).
    """
    standard: dict[str, str] = {}
    meta: dict[str, str] = {}
    acl: str | None = None
    for raw_name, value in _pairs(headers):
        name = raw_name.lower()
        if name.startswith(_META) and len(name) > len(_META):
            meta[name] = f"{meta[name]},{value}" if name in meta else value
        elif name in STANDARD_STORED:
            standard[name] = f"{standard[name]},{value}" if name in standard else value
        elif name == "x-amz-acl":
            acl = value
    check_acl(acl)
    if "content-encoding" in standard:
        enc = strip_aws_chunked(standard.pop("content-encoding"))
        if enc is not None:
            standard["content-encoding"] = enc
    size = sum(_octets(n[len(_META) :]) + _octets(v) for n, v in meta.items())
    if size > MAX_USER_METADATA:
        raise S3Error("MetadataTooLarge", size=size, max_size_allowed=MAX_USER_METADATA)
    out = [(n, standard[n]) for n in STANDARD_STORED if n in standard]
    out.extend(sorted(meta.items()))
    return out


def content_md5(header: str | None) -> bytes | None:
    """Decode a ``Content-MD5`` header.

    Returns:
        The 16-byte digest, or ``None`` when the header is absent.

    Raises:
        S3Error: ``InvalidDigest`` when the value is not strict base64 of
            exactly 16 bytes (``BadDigest`` is for a digest that does not
            match the body: the caller's check, after the body arrived).
    """
    if header is None:
        return None
    try:
        digest = base64.b64decode(header.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise S3Error("InvalidDigest") from None
    if len(digest) != 16:
        raise S3Error("InvalidDigest")
    return digest
