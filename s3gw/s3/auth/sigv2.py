"""AWS Signature Version 2 for S3: ``Authorization: AWS`` and presigned URLs.

Theory of operation
-------------------
Pure (no I/O, no clock reads: pass ``now``).  SigV2 still arrives: s3cmd's
fallback, rclone ``v2_auth``, and presigned URLs from aws cli v1 / boto3 by
default (CLIENTS.md 3.7).  The signature is
``base64(HMAC-SHA1(secret, string_to_sign))`` over::

    METHOD \\n Content-MD5 \\n Content-Type \\n Date \\n
    CanonicalizedAmzHeaders CanonicalizedResource

* ``Date`` is the ``Date`` header; it is empty when ``x-amz-date`` is
  present (which then appears among the amz headers); for a presigned URL it
  is the ``Expires`` parameter.  Leniency: a client that sent both headers
  and signed the ``Date`` value is accepted too.
* ``CanonicalizedAmzHeaders``: every ``x-amz-*`` header, lowercase name,
  sorted, repeats joined with ``,``, value trimmed and whitespace runs
  unfolded, ``name:value\\n`` each.  For presigned URLs, ``x-amz-*`` query
  parameters count as headers (botocore moves signed headers into the query).
* ``CanonicalizedResource``: ``/bucket`` for virtual-host requests, then the
  raw request path as received (not re-encoded), then the signed
  sub-resources (:data:`SUB_RESOURCES`) sorted by name, ``?a&b=v`` with
  *decoded* values (as the AWS docs say).  A parameter sent without ``=``
  is signed bare (``?uploads``); one sent as ``name=`` is tried both ways,
  since clients differ.

String-to-sign pieces are kept as bytes: header values are the wire bytes
(latin-1 decoded strings encoded back), sub-resource values their decoded
UTF-8 bytes -- what the client's HMAC saw.

Known weaknesses (inherent to SigV2): no payload signing, no region, no
scope; ``x-amz-security-token`` is not interpreted.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from ..wire.dates import parse_signed_date
from ..wire.errors import S3Error
from .signing import epoch, header_values, iso_time, lookup_secret  # shared with SigV4

__all__ = [
    "MAX_SKEW",
    "SUB_RESOURCES",
    "V2Identity",
    "canonical_resource",
    "sign",
    "string_to_sign",
    "verify_header_auth",
    "verify_presigned",
]

MAX_SKEW = 15 * 60

# Query parameters that are part of the signed resource (AWS SigV2 docs plus
# what botocore's HmacV1Auth signs).
SUB_RESOURCES = frozenset(
    {
        "accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete",
        "encryption", "inventory", "lifecycle", "location", "logging", "metrics",
        "notification", "object-lock", "partNumber", "policy", "replication",
        "requestPayment", "restore", "select", "select-type", "storageClass",
        "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning",
        "versions", "website",
        "response-cache-control", "response-content-disposition",
        "response-content-encoding", "response-content-language",
        "response-content-type", "response-expires",
    }
)

SecretLookup = Callable[[str], "str | None"]


@dataclass(frozen=True, slots=True)
class V2Identity:
    """Who signed a verified SigV2 request."""

    access_key: str
    presigned: bool = False


def _wire(text: str | bytes) -> bytes:
    return bytes(text) if isinstance(text, (bytes, bytearray)) else text.encode("latin-1")


def _fold(value: str) -> str:
    # Unfold (line breaks -> one space) and trim; inner spaces are kept, as
    # botocore and the AWS docs sign them.
    return re.sub(r"[ \t]*\r?\n[ \t]*", " ", value).strip(" \t")


def _query_items(raw_query: str | bytes) -> list[tuple[str, bytes | None]]:
    """(decoded name, decoded value bytes or None if sent without '='), wire order."""
    out = []
    for item in _wire(raw_query).split(b"&"):
        if not item:
            continue
        name, eq, value = item.partition(b"=")
        n = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace")
        out.append((n, unquote_to_bytes(value.replace(b"+", b" ")) if eq else None))
    return out


def canonical_resource(
    raw_path: str | bytes,
    raw_query: str | bytes,
    *,
    vhost_bucket: str | None = None,
    bare_empty: bool = False,
) -> bytes:
    """The CanonicalizedResource (see the module docstring).

    Args:
        bare_empty: sign ``name=`` (empty value) as bare ``name``.
    """
    path = _wire(raw_path) or b"/"
    if vhost_bucket:
        path = b"/" + vhost_bucket.encode("utf-8") + path
    subs = [(n, v) for n, v in _query_items(raw_query) if n in SUB_RESOURCES]
    if not subs:
        return path
    subs.sort(key=lambda nv: nv[0])
    parts = []
    for n, v in subs:
        if v is None or (bare_empty and not v):
            parts.append(n.encode("utf-8"))
        else:
            parts.append(n.encode("utf-8") + b"=" + v)
    return path + b"?" + b"&".join(parts)


def _amz_headers(multi: Mapping[str, list[str]], extra: Iterable[tuple[str, str]] = ()) -> bytes:
    amz: dict[str, list[str]] = {}
    for name, values in multi.items():
        if name.startswith("x-amz-"):
            amz.setdefault(name, []).extend(values)
    for name, value in extra:
        amz.setdefault(name.lower(), []).append(value)
    lines = [
        f"{name}:{','.join(_fold(v) for v in amz[name])}\n" for name in sorted(amz)
    ]
    return "".join(lines).encode("latin-1", "replace")


def string_to_sign(
    method: str,
    content_md5: str,
    content_type: str,
    date: str,
    amz_headers: bytes,
    resource: bytes,
) -> bytes:
    """The SigV2 string to sign, as bytes."""
    head = f"{method.upper()}\n{content_md5.strip()}\n{content_type.strip()}\n{date.strip()}\n"
    return head.encode("latin-1", "replace") + amz_headers + resource


def sign(secret: str, sts: bytes) -> str:
    """``base64(HMAC-SHA1(secret, sts))``."""
    mac = hmac.new(secret.encode("utf-8"), sts, hashlib.sha1).digest()
    return base64.b64encode(mac).decode("ascii")


def _first(multi: Mapping[str, list[str]], name: str) -> str | None:
    values = multi.get(name)
    return values[0] if values else None


def _match(
    secret: str,
    access_key: str,
    provided: str,
    candidates: list[bytes],
) -> None:
    for sts in candidates:
        if hmac.compare_digest(sign(secret, sts).encode(), provided.encode("latin-1", "replace")):
            return
    sts = candidates[0]
    raise S3Error(
        "SignatureDoesNotMatch",
        **{"AWSAccessKeyId": access_key},
        string_to_sign=sts.decode("utf-8", "replace"),
        signature_provided=provided,
        string_to_sign_bytes=" ".join(f"{b:02x}" for b in sts),
    )


def _resources(raw_path: str | bytes, raw_query: str | bytes, vhost_bucket: str | None) -> list[bytes]:
    paths = [raw_path]
    path = _wire(raw_path)
    if vhost_bucket is None and path.count(b"/") == 1 and len(path) > 1:
        # botocore signs a bucket-level request sent as ``/bucket`` with the
        # resource ``/bucket/`` (its auth_path); S3 accepts both.
        paths.append(path + b"/")
    out: list[bytes] = []
    for p in paths:
        for bare in (False, True):
            r = canonical_resource(p, raw_query, vhost_bucket=vhost_bucket, bare_empty=bare)
            if r not in out:
                out.append(r)
    return out


def verify_header_auth(
    method: str,
    raw_path: str | bytes,
    raw_query: str | bytes,
    headers: Any,
    secret_lookup: SecretLookup,
    now: _dt.datetime | float | int,
    *,
    vhost_bucket: str | None = None,
) -> V2Identity:
    """Verify ``Authorization: AWS AKID:signature``.

    Args:
        raw_path: the path as received; *vhost_bucket* is prepended for
            virtual-host-style requests.
        headers: :class:`s3gw.http.headers.Headers` or a str mapping.
        secret_lookup: access key -> secret, ``None`` if unknown/revoked.
        now: server time (aware datetime or epoch seconds).

    Raises:
        S3Error: ``InvalidArgument`` (malformed header), ``AccessDenied``
            (no usable date), ``InvalidAccessKeyId``, ``RequestTimeTooSkewed``,
            ``SignatureDoesNotMatch``.
    """
    multi = header_values(headers)
    auth = (_first(multi, "authorization") or "").strip()
    scheme, _, cred = auth.partition(" ")
    access_key, colon, provided = cred.strip().rpartition(":")
    if scheme != "AWS" or not colon or not access_key or not provided:
        raise S3Error(
            "InvalidArgument",
            "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
            argument_name="Authorization",
            argument_value=auth,
        )
    amz_date = _first(multi, "x-amz-date")
    date = _first(multi, "date")
    when = parse_signed_date(amz_date if amz_date is not None else date)
    if when is None:
        raise S3Error(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
        )
    secret = lookup_secret(secret_lookup, access_key)
    server = epoch(now)
    t = when // 1_000_000_000
    if abs(server - t) > MAX_SKEW:
        raise S3Error(
            "RequestTimeTooSkewed",
            request_time=amz_date if amz_date is not None else date,
            server_time=iso_time(server),
            max_allowed_skew_milliseconds=MAX_SKEW * 1000,
        )
    date_lines = [""] if amz_date is not None else [date or ""]
    if amz_date is not None and date:
        date_lines.append(date)
    amz = _amz_headers(multi)
    md5 = _first(multi, "content-md5") or ""
    ctype = _first(multi, "content-type") or ""
    candidates = [
        string_to_sign(method, md5, ctype, d, amz, r)
        for d in date_lines
        for r in _resources(raw_path, raw_query, vhost_bucket)
    ]
    _match(secret, access_key, provided, candidates)
    return V2Identity(access_key, False)


def verify_presigned(
    method: str,
    raw_path: str | bytes,
    raw_query: str | bytes,
    headers: Any,
    secret_lookup: SecretLookup,
    now: _dt.datetime | float | int,
    *,
    vhost_bucket: str | None = None,
) -> V2Identity:
    """Verify a SigV2 presigned URL (``AWSAccessKeyId``, ``Expires``, ``Signature``).

    Raises:
        S3Error: ``AccessDenied`` (missing parameters; "Request has
            expired"), ``InvalidAccessKeyId``, ``SignatureDoesNotMatch``.
    """
    items = _query_items(raw_query)
    q: dict[str, str] = {}
    for n, v in items:
        q.setdefault(n, (v or b"").decode("utf-8", "replace"))
    if not all(q.get(p) for p in ("AWSAccessKeyId", "Expires", "Signature")):
        raise S3Error(
            "AccessDenied",
            "Query-string authentication requires the Signature, Expires and "
            "AWSAccessKeyId parameters",
        )
    access_key = q["AWSAccessKeyId"]
    # base64 may hold '+': a client that sent it unescaped meant '+', not ' '.
    provided = q["Signature"].replace(" ", "+")
    expires_text = q["Expires"]
    if not expires_text.isdigit():
        raise S3Error("AccessDenied", "Invalid date (should be seconds since epoch)")
    secret = lookup_secret(secret_lookup, access_key)
    server = epoch(now)
    expires = int(expires_text)
    if server > expires:
        raise S3Error(
            "AccessDenied",
            "Request has expired",
            expires=iso_time(expires),
            server_time=iso_time(server),
        )
    multi = header_values(headers)
    query_amz = [(n, (v or b"").decode("latin-1")) for n, v in items if n.lower().startswith("x-amz-")]
    amz = _amz_headers(multi, query_amz)
    md5 = _first(multi, "content-md5") or q.get("content-md5", "")
    ctype = _first(multi, "content-type") or q.get("content-type", "")
    candidates = [
        string_to_sign(method, md5, ctype, expires_text, amz, r)
        for r in _resources(raw_path, raw_query, vhost_bucket)
    ]
    _match(secret, access_key, provided, candidates)
    return V2Identity(access_key, True)
