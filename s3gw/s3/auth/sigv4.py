"""AWS Signature Version 4 for S3: header auth, presigned URLs, chunk chains.

Theory of operation
-------------------
Pure functions (STYLE "sans-IO"): no I/O, no clock reads -- the caller passes
``now`` (an aware ``datetime`` or epoch seconds) and a ``secret_lookup``
callable (access key -> secret, or ``None`` when unknown / revoked).

A SigV4 signature is ``HMAC(signing_key, string_to_sign)`` where::

    signing_key    = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), "s3"), "aws4_request")
    string_to_sign = "AWS4-HMAC-SHA256\\n" timestamp "\\n" scope "\\n" hex(sha256(canonical_request))
    canonical_request = method \\n canonical_uri \\n canonical_query \\n
                        canonical_headers \\n \\n signed_headers \\n payload_hash

What is canonicalised, and how (CLIENTS.md 3.7):

* **URI**: the raw request path *as received*, not decoded and re-encoded:
  every client escapes ``!*'()``, spaces, ``+`` and UTF-8 its own way and
  signs exactly what it sends.  Leniency: if that fails and the AWS
  re-encoding of the decoded path differs from the raw path, it is tried
  too (a client that sent a character raw but signed it escaped names the
  same object, so this admits nothing new).
* **Query**: each ``name[=value]`` pair is percent-decoded (``+`` is a
  space, as in :func:`s3gw.s3.wire.router.parse_query`), re-encoded per AWS
  (``A-Za-z0-9-_.~`` kept, every other byte ``%XX`` upper-case), sorted by
  encoded name then value, joined ``name=value`` with ``&``; so ``?uploads``
  and ``?uploads=`` both give ``uploads=``.  Presigned URLs leave out
  ``X-Amz-Signature``.
* **Headers**: exactly those named in ``SignedHeaders``, in that order, with
  the values as received (repeats joined with ``,``), trimmed and runs of
  ASCII whitespace collapsed to one space.  Header strings arrive decoded as
  latin-1 (:mod:`s3gw.http.headers`), so the canonical request is encoded
  back with latin-1 to hash exactly the bytes the client hashed.
* **Payload hash**: the ``x-amz-content-sha256`` value (required for header
  auth, as S3 requires it); ``UNSIGNED-PAYLOAD`` for presigned URLs.  A hex
  value is *not* checked here -- the body has not been read; the caller
  checks it against the decoded body before committing (STYLE rule 6).

Streaming uploads (``STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]``) chain a
signature per chunk from the header signature (the *seed*)::

    AWS4-HMAC-SHA256-PAYLOAD \\n timestamp \\n scope \\n prev_sig \\n sha256("") \\n sha256(chunk)
    AWS4-HMAC-SHA256-TRAILER \\n timestamp \\n scope \\n prev_sig \\n sha256(trailer lines)

:class:`ChunkVerifier` is fed the chunk signatures and payload slices that
:class:`s3gw.s3.wire.awschunked.AwsChunkedDecoder` produces and raises on the
first bad chunk.

Rules: every comparison of a signature uses :func:`hmac.compare_digest`;
errors are :class:`S3Error` from the one table (``SignatureDoesNotMatch``
carries ``StringToSign`` and ``CanonicalRequest`` as S3 does; they reveal
nothing secret).  :func:`signing_key` is cached (it changes once a day per
key and region); revocation is unaffected because the secret is looked up
on every request before the cache is consulted.

Known weaknesses: SigV4a (ECDSA) is not supported (its header fails to
parse: ``AuthorizationHeaderMalformed``); ``x-amz-security-token`` (session
credentials) is not interpreted; any region is accepted unless the caller
passes ``regions``.
"""

from __future__ import annotations

import datetime as _dt
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from ..wire.dates import parse_signed_date
from ..wire.errors import S3Error
from .signing import (ALGORITHM, EMPTY_SHA256, SERVICE, TERMINATOR, SecretLookup,
                      chunk_string_to_sign, epoch, header_values, iso_time, lookup_secret, sign,
                      signature_mismatch, signing_key, string_to_sign, trailer_string_to_sign)

__all__ = [
    "ALGORITHM",
    "EMPTY_SHA256",
    "MAX_EXPIRES",
    "MAX_SKEW",
    "STREAMING_PAYLOAD",
    "STREAMING_PAYLOAD_TRAILER",
    "STREAMING_UNSIGNED_TRAILER",
    "UNSIGNED_PAYLOAD",
    "AuthHeader",
    "Credential",
    "Identity",
    "canonical_headers",
    "canonical_query",
    "canonical_request",
    "chunk_string_to_sign",
    "parse_authorization",
    "parse_credential",
    "sign",
    "signing_key",
    "string_to_sign",
    "trailer_string_to_sign",
    "verify_header_auth",
    "verify_presigned",
]

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_PAYLOAD_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
MAX_SKEW = 15 * 60  # seconds
MAX_EXPIRES = 7 * 24 * 3600  # seconds, presigned X-Amz-Expires upper bound

_PAYLOAD_LITERALS = frozenset(
    {UNSIGNED_PAYLOAD, STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER, STREAMING_UNSIGNED_TRAILER}
)
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_DATE8 = re.compile(r"[0-9]{8}")
_AMZ_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z")
_WS = re.compile(r"[ \t\r\n\f\v]+")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")



# --------------------------------------------------------------------------
# values


@dataclass(frozen=True, slots=True)
class Credential:
    """``AKID/yyyymmdd/region/service/aws4_request``, split."""

    access_key: str
    date: str
    region: str
    service: str = SERVICE
    terminator: str = TERMINATOR

    @property
    def scope(self) -> str:
        """``yyyymmdd/region/service/aws4_request``."""
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


@dataclass(frozen=True, slots=True)
class AuthHeader:
    """A parsed ``Authorization: AWS4-HMAC-SHA256 ...`` header."""

    credential: Credential
    signed_headers: tuple[str, ...]
    signature: str


@dataclass(frozen=True, slots=True)
class Identity:
    """Who signed a verified request, and what a body verifier needs.

    Attributes:
        access_key: the access key id that signed.
        region: the region of the credential scope, as the client sent it.
        scope: ``yyyymmdd/region/s3/aws4_request``.
        signing_key: the derived key (for :class:`ChunkVerifier`); not a
            secret's plain text, but secret-equivalent for a day: never log.
        seed_signature: the request signature (the chunk chain's seed).
        timestamp: the ``yyyymmddTHHMMSSZ`` request time that was signed.
        payload_hash: the payload hash that was signed (hex, or a literal).
        presigned: True for query-string (presigned URL) authentication.
    """

    access_key: str
    region: str
    scope: str
    signing_key: bytes = field(repr=False)
    seed_signature: str
    timestamp: str = ""
    payload_hash: str = UNSIGNED_PAYLOAD
    presigned: bool = False


# --------------------------------------------------------------------------
# parsing


def _malformed(message: str | None = None, **fields: Any) -> S3Error:
    return S3Error("AuthorizationHeaderMalformed", message, **fields)


def _query_error(message: str) -> S3Error:
    return S3Error("AuthorizationQueryParametersError", message)


def parse_credential(
    text: str, *, regions: Iterable[str] | None = None, presigned: bool = False
) -> Credential:
    """Split and check ``AKID/date/region/s3/aws4_request``.

    Args:
        text: the ``Credential`` value.
        regions: accepted regions; ``None`` accepts any non-empty region.
        presigned: raise ``AuthorizationQueryParametersError`` rather than
            ``AuthorizationHeaderMalformed``.

    Raises:
        S3Error: malformed credential, wrong service/terminator, or a
            region not in *regions* (``<Region>`` names the expected one).
    """
    bad = _query_error if presigned else (lambda m: _malformed(m))
    parts = text.split("/")
    if len(parts) != 5 or not parts[0]:
        raise bad(
            "The authorization header is malformed; the Credential is mal-formed; "
            "expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"."
        )
    akid, date, region, service, term = parts
    if not _DATE8.fullmatch(date):
        raise bad(f"The authorization header is malformed; incorrect date format '{date}'.")
    if not region:
        raise bad("The authorization header is malformed; the region is empty.")
    if service != SERVICE:
        raise bad(
            f"The authorization header is malformed; incorrect service '{service}'. "
            f"This endpoint belongs to '{SERVICE}'."
        )
    if term != TERMINATOR:
        raise bad(
            f"The authorization header is malformed; incorrect terminal '{term}'. "
            f"This endpoint uses '{TERMINATOR}'."
        )
    if regions is not None:
        allowed = list(regions)
        if region not in allowed:
            expected = allowed[0] if allowed else ""
            message = (
                f"The authorization header is malformed; the region '{region}' is wrong; "
                f"expecting '{expected}'"
            )
            if presigned:
                raise _query_error(message)
            raise _malformed(message, region=expected)
    return Credential(akid, date, region, service, term)


def _signed_header_list(text: str, bad: Callable[[str], S3Error]) -> tuple[str, ...]:
    names = tuple(text.split(";"))
    if not text or not all(_HEADER_NAME.fullmatch(n) for n in names):
        raise bad("The authorization header is malformed; SignedHeaders is invalid.")
    return names


def parse_authorization(value: str, *, regions: Iterable[str] | None = None) -> AuthHeader:
    """Parse ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``.

    Raises:
        S3Error: ``AuthorizationHeaderMalformed`` (with ``<Region>`` when the
            region is the problem).
    """
    value = value.strip()
    algo, _, rest = value.partition(" ")
    if algo != ALGORITHM:
        raise _malformed(
            f"The authorization header is malformed; the authorization mechanism "
            f"'{algo}' is not supported."
        )
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, eq, val = item.strip().partition("=")
        if not eq or name in fields:
            raise _malformed(
                f"The authorization header is malformed; the authorization component "
                f"'{item.strip()}' is malformed."
            )
        fields[name] = val.strip()
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if n not in fields]
    if missing:
        raise _malformed(
            f"The authorization header is malformed; missing {', '.join(missing)}."
        )
    cred = parse_credential(fields["Credential"], regions=regions)
    names = _signed_header_list(fields["SignedHeaders"], lambda m: _malformed(m))
    sig = fields["Signature"]
    if not _HEX64.fullmatch(sig):
        raise _malformed("The authorization header is malformed; Signature is invalid.")
    return AuthHeader(cred, names, sig.lower())


def _parse_amz_date(text: str) -> int | None:
    m = _AMZ_DATE.fullmatch(text.strip())
    if not m:
        return None
    try:
        t = _dt.datetime(*(int(g) for g in m.groups()), tzinfo=_dt.timezone.utc)
    except ValueError:
        return None
    return int(t.timestamp())


def _amz_date(epoch: int) -> str:
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


# --------------------------------------------------------------------------
# canonicalisation


def _wire(text: str | bytes) -> str:
    return text.decode("latin-1") if isinstance(text, (bytes, bytearray)) else text


def _uri_encode(raw: bytes, safe: str = "") -> str:
    # quote() always keeps A-Za-z0-9 and "-_.~"; everything else is %XX upper-case.
    return quote(raw, safe=safe)


def _query_pairs(raw_query: str | bytes) -> list[tuple[str, str, str]]:
    """(decoded-name, encoded-name, encoded-value) for every pair, wire order."""
    raw = _wire(raw_query).encode("latin-1")
    out = []
    for item in raw.split(b"&"):
        if not item:
            continue
        name, _, value = item.partition(b"=")
        n = unquote_to_bytes(name.replace(b"+", b" "))
        v = unquote_to_bytes(value.replace(b"+", b" "))
        out.append((n.decode("utf-8", "replace"), _uri_encode(n), _uri_encode(v)))
    return out


def canonical_query(raw_query: str | bytes, *, exclude: Iterable[str] = ()) -> str:
    """The SigV4 canonical query string of a raw query (see the module docstring)."""
    skip = set(exclude)
    pairs = sorted((n, v) for d, n, v in _query_pairs(raw_query) if d not in skip)
    return "&".join(f"{n}={v}" for n, v in pairs)


def _trimall(value: str) -> str:
    return _WS.sub(" ", value).strip(" ")


def canonical_headers(headers: Any, signed: Iterable[str]) -> str:
    """``name:value\\n`` for each signed header, values as received (trimmed).

    A signed header absent from the request canonicalises with an empty
    value (the signature then simply fails to match).
    """
    multi = headers if isinstance(headers, dict) and all(
        isinstance(v, list) for v in headers.values()
    ) else header_values(headers)
    lines = []
    for name in signed:
        values = multi.get(name, [])
        lines.append(f"{name}:{','.join(_trimall(v) for v in values)}\n")
    return "".join(lines)


def canonical_request(
    method: str,
    canonical_uri: str | bytes,
    raw_query: str | bytes,
    headers: Any,
    signed_headers: Iterable[str],
    payload_hash: str,
    *,
    exclude_query: Iterable[str] = (),
) -> str:
    """The canonical request (a latin-1 "wire" string; hash its latin-1 bytes)."""
    signed = tuple(signed_headers)
    return "\n".join(
        [
            method.upper(),
            _wire(canonical_uri) or "/",
            canonical_query(raw_query, exclude=exclude_query),
            canonical_headers(headers, signed),
            ";".join(signed),
            payload_hash,
        ]
    )


def _uri_candidates(raw_path: str | bytes) -> list[str]:
    raw = _wire(raw_path) or "/"
    out = [raw]
    alt = _uri_encode(unquote_to_bytes(raw.encode("latin-1")), safe="/")
    if alt != raw:
        out.append(alt)
    return out


def _check_unsigned_amz(multi: Mapping[str, list[str]], signed: Iterable[str]) -> None:
    have = set(signed)
    unsigned = sorted(n for n in multi if n.startswith("x-amz-") and n not in have)
    if unsigned:
        raise S3Error(
            "AccessDenied",
            "There were headers present in the request which were not signed",
            headers_not_signed=", ".join(unsigned),
        )


def _check_signature(
    method: str,
    raw_path: str | bytes,
    raw_query: str | bytes,
    multi: Mapping[str, list[str]],
    signed: tuple[str, ...],
    payload_hash: str,
    timestamp: str,
    cred: Credential,
    key: bytes,
    provided: str,
    exclude_query: tuple[str, ...] = (),
) -> None:
    first: tuple[str, str] | None = None
    for uri in _uri_candidates(raw_path):
        canonical = canonical_request(
            method, uri, raw_query, multi, signed, payload_hash, exclude_query=exclude_query
        )
        sts = string_to_sign(timestamp, cred.scope, canonical)
        if hmac.compare_digest(sign(key, sts), provided.lower()):
            return
        if first is None:
            first = (canonical, sts)
    assert first is not None
    raise signature_mismatch(cred.access_key, first[1], provided, first[0])


# --------------------------------------------------------------------------
# verification


def verify_header_auth(
    method: str,
    raw_path: str | bytes,
    raw_query: str | bytes,
    headers: Any,
    secret_lookup: SecretLookup,
    now: _dt.datetime | float | int,
    *,
    regions: Iterable[str] | None = None,
) -> Identity:
    """Verify a request signed in the ``Authorization`` header.

    Args:
        method: the request method.
        raw_path: the request path exactly as received (percent-escapes kept).
        raw_query: the query string as received, without ``?``.
        headers: :class:`s3gw.http.headers.Headers` (or a str mapping).
        secret_lookup: access key -> secret, ``None`` if unknown or revoked.
        now: the server time (aware datetime or epoch seconds).
        regions: accepted credential regions, ``None`` for any.

    Returns:
        The :class:`Identity`; the caller still checks a hex payload hash
        against the body, and chunk signatures with :class:`ChunkVerifier`.

    Raises:
        S3Error: ``AuthorizationHeaderMalformed``, ``AccessDenied`` (no
            date, unsigned ``x-amz-*`` headers), ``InvalidRequest`` (no
            ``x-amz-content-sha256``), ``InvalidArgument`` (bad hash value),
            ``InvalidAccessKeyId``, ``RequestTimeTooSkewed``,
            ``SignatureDoesNotMatch``.
    """
    multi = header_values(headers)
    auth = (multi.get("authorization") or [""])[0]
    parsed = parse_authorization(auth, regions=regions)
    cred = parsed.credential

    amz = multi.get("x-amz-date")
    if amz:
        t = _parse_amz_date(amz[0])
        timestamp = amz[0].strip()
    else:
        ns = parse_signed_date((multi.get("date") or [None])[0])
        t = None if ns is None else ns // 1_000_000_000
        timestamp = "" if t is None else _amz_date(t)
    if t is None:
        raise S3Error(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
        )
    if timestamp[:8] != cred.date:
        raise _malformed(
            "The authorization header is malformed; Invalid credential date. "
            "Date is not the same as X-Amz-Date."
        )

    payload = (multi.get("x-amz-content-sha256") or [None])[0]
    if payload is None:
        raise S3Error(
            "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"
        )
    payload = payload.strip()
    if payload not in _PAYLOAD_LITERALS and not _HEX64.fullmatch(payload):
        raise S3Error(
            "InvalidArgument",
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-..., "
            "or a valid sha256 value.",
            argument_name="x-amz-content-sha256",
            argument_value=payload,
        )
    _check_unsigned_amz(multi, parsed.signed_headers)

    secret = lookup_secret(secret_lookup, cred.access_key)
    server = epoch(now)
    if abs(server - t) > MAX_SKEW:
        raise S3Error(
            "RequestTimeTooSkewed",
            request_time=timestamp,
            server_time=iso_time(server),
            max_allowed_skew_milliseconds=MAX_SKEW * 1000,
        )
    key = signing_key(secret, cred.date, cred.region, cred.service)
    _check_signature(
        method, raw_path, raw_query, multi, parsed.signed_headers, payload,
        timestamp, cred, key, parsed.signature,
    )
    return Identity(
        cred.access_key, cred.region, cred.scope, key, parsed.signature,
        timestamp, payload, False,
    )


_PRESIGN_PARAMS = (
    "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature",
    "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Expires",
)


def _query_values(raw_query: str | bytes) -> dict[str, str]:
    raw = _wire(raw_query).encode("latin-1")
    out: dict[str, str] = {}
    for item in raw.split(b"&"):
        if not item:
            continue
        name, _, value = item.partition(b"=")
        n = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace")
        out.setdefault(n, unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8", "replace"))
    return out


def verify_presigned(
    method: str,
    raw_path: str | bytes,
    raw_query: str | bytes,
    headers: Any,
    secret_lookup: SecretLookup,
    now: _dt.datetime | float | int,
    *,
    regions: Iterable[str] | None = None,
) -> Identity:
    """Verify a SigV4 presigned URL (``X-Amz-Algorithm=AWS4-HMAC-SHA256&...``).

    Arguments as :func:`verify_header_auth`.  The payload hash signed is
    ``UNSIGNED-PAYLOAD``; ``X-Amz-Signature`` is left out of the canonical
    query.

    Raises:
        S3Error: ``AuthorizationQueryParametersError`` (missing/bad
            parameters, ``X-Amz-Expires`` over 604800), ``AccessDenied``
            ("Request has expired"; unsigned ``x-amz-*`` headers),
            ``InvalidAccessKeyId``, ``RequestTimeTooSkewed`` (dated more than
            15 minutes in the future), ``SignatureDoesNotMatch``.
    """
    q = _query_values(raw_query)
    if any(p not in q for p in _PRESIGN_PARAMS):
        raise _query_error(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
            "and X-Amz-Expires parameters."
        )
    if q["X-Amz-Algorithm"] != ALGORITHM:
        raise _query_error("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
    cred = parse_credential(q["X-Amz-Credential"], regions=regions, presigned=True)
    timestamp = q["X-Amz-Date"]
    t = _parse_amz_date(timestamp)
    if t is None:
        raise _query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    if timestamp[:8] != cred.date:
        raise _query_error("Invalid credential date. Date is not the same as X-Amz-Date.")
    exp_text = q["X-Amz-Expires"]
    if not exp_text.isdigit():
        raise _query_error("X-Amz-Expires should be a number")
    expires = int(exp_text)
    if expires > MAX_EXPIRES:
        raise _query_error(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800"
        )
    signed = _signed_header_list(q["X-Amz-SignedHeaders"], _query_error)
    provided = q["X-Amz-Signature"]
    if not _HEX64.fullmatch(provided):
        raise _query_error("X-Amz-Signature is invalid.")
    multi = header_values(headers)
    _check_unsigned_amz(multi, signed)

    secret = lookup_secret(secret_lookup, cred.access_key)
    server = epoch(now)
    if t - server > MAX_SKEW:
        raise S3Error(
            "RequestTimeTooSkewed",
            request_time=timestamp,
            server_time=iso_time(server),
            max_allowed_skew_milliseconds=MAX_SKEW * 1000,
        )
    if server > t + expires:
        raise S3Error(
            "AccessDenied",
            "Request has expired",
            **{"X-Amz-Expires": str(expires)},
            expires=iso_time(t + expires),
            server_time=iso_time(server),
        )
    key = signing_key(secret, cred.date, cred.region, cred.service)
    _check_signature(
        method, raw_path, raw_query, multi, signed, UNSIGNED_PAYLOAD, timestamp, cred,
        key, provided, exclude_query=("X-Amz-Signature",),
    )
    return Identity(
        cred.access_key, cred.region, cred.scope, key, provided.lower(), timestamp,
        UNSIGNED_PAYLOAD, True,
    )
