"""SigV4 signing primitives and the helpers SigV2 and SigV4 share (pure).

Split from :mod:`s3gw.s3.auth.sigv4` so that the streaming verifier
(:mod:`.sigv4_stream`) and SigV2 (:mod:`.sigv2`) import these, not the request
verifier: the key derivation (``signing_key``, cached per key, day and
region), the strings to sign of a request, a chunk and a trailer, the
``SignatureDoesNotMatch`` error every scheme raises, the secret lookup, and
the time and header helpers.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

from ..wire.errors import S3Error

__all__ = [
    "ALGORITHM", "EMPTY_SHA256", "SERVICE", "TERMINATOR", "SecretLookup",
    "chunk_string_to_sign", "epoch", "header_values", "iso_time", "lookup_secret", "sign",
    "signature_mismatch", "signing_key", "string_to_sign", "trailer_string_to_sign",
]

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
SERVICE = "s3"
TERMINATOR = "aws4_request"

SecretLookup = Callable[[str], "str | None"]


def iso_time(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def epoch(now: _dt.datetime | float | int) -> float:
    if isinstance(now, _dt.datetime):
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        return now.timestamp()
    return float(now)


def header_values(headers: Any) -> dict[str, list[str]]:
    """Lowercase name -> values, from :class:`Headers` or a plain mapping."""
    out: dict[str, list[str]] = {}
    if isinstance(headers, Mapping):
        pairs: Iterable[tuple[str, str]] = headers.items()
    else:  # s3gw.http.headers.Headers iterates (name, value) pairs
        pairs = iter(headers)
    for name, value in pairs:
        out.setdefault(name.lower(), []).append(value)
    return out


def lookup_secret(secret_lookup: SecretLookup, access_key: str) -> str:
    secret = secret_lookup(access_key)
    if secret is None:
        raise S3Error("InvalidAccessKeyId", **{"AWSAccessKeyId": access_key})
    return secret


def string_to_sign(timestamp: str, scope: str, canonical: str) -> str:
    """``AWS4-HMAC-SHA256 \\n timestamp \\n scope \\n hex(sha256(canonical))``."""
    digest = hashlib.sha256(canonical.encode("latin-1")).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


@lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """The SigV4 signing key for *secret* on *date* (``yyyymmdd``) in *region*.

    Cached: a key and region sign with one key per day.
    """
    k = _hmac(("AWS4" + secret).encode("utf-8"), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, TERMINATOR)


def sign(key: bytes, text: str) -> str:
    """Hex HMAC-SHA256 of *text* (UTF-8) under *key*."""
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def chunk_string_to_sign(prev_signature: str, timestamp: str, scope: str, chunk_sha256_hex: str) -> str:
    """String to sign for one aws-chunked chunk (``AWS4-HMAC-SHA256-PAYLOAD``)."""
    return (
        f"{ALGORITHM}-PAYLOAD\n{timestamp}\n{scope}\n{prev_signature}\n"
        f"{EMPTY_SHA256}\n{chunk_sha256_hex}"
    )


def trailer_string_to_sign(prev_signature: str, timestamp: str, scope: str, trailer_sha256_hex: str) -> str:
    """String to sign for the trailing headers (``AWS4-HMAC-SHA256-TRAILER``)."""
    return f"{ALGORITHM}-TRAILER\n{timestamp}\n{scope}\n{prev_signature}\n{trailer_sha256_hex}"


def signature_mismatch(access_key: str, sts: str, provided: str, canonical: str | None = None) -> S3Error:
    return S3Error(
        "SignatureDoesNotMatch",
        **{"AWSAccessKeyId": access_key},
        string_to_sign=sts,
        signature_provided=provided,
        canonical_request=(
            None if canonical is None else canonical.encode("latin-1").decode("utf-8", "replace")
        ),
    )
