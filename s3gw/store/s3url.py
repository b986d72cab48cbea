"""Parse a chunk-store location: ``s3://bucket/prefix?endpoint=...`` (pure).

The form (``s3gw serve --chunks URL``)::

    s3://BUCKET[/PREFIX][?OPTION=VALUE&...]

Options (all optional):

``endpoint``
    the S3 API's base URL (``http://127.0.0.1:8333``); absent: AWS S3 of ``region``
``region``
    the signing region (default ``us-east-1``)
``addressing``
    ``path`` (default when an ``endpoint`` is given) or ``virtual``
    (``bucket.host``, the default for AWS S3)
``profile``
    a profile of the shared AWS config/credentials files; otherwise
    credentials come from the environment (``AWS_ACCESS_KEY_ID``, ...), as
    every AWS tool takes them
``payload``
    ``signed`` or ``unsigned``: whether a chunk PUT carries the SHA-256 of its
    body in its signature (``x-amz-content-sha256``), which the store checks
    before it stores the body.  Default: ``unsigned`` over HTTPS (TLS already
    guards the body on the wire, as the AWS SDKs reason) and over HTTP to a
    loopback address (no wire at all); ``signed`` over plain HTTP to any other
    host.  Unsigned saves the gateway one SHA-256 pass over every byte it
    writes (0.85 CPU-s/GB measured here) and the store its check.  Either way
    every chunk is verified (length and XXH3) each time it is read.
``grace``
    GC grace period in seconds, recorded in the store the first time it is
    opened (see ``docs/object-store.md``); a later open with another value is
    refused, so every gateway and every ``s3gw gc`` of one store agree on it

The prefix is normalized to end with ``/`` (or be empty); keys of the store
are ``<prefix>chunks/<hex id>`` and ``<prefix>s3gw/...``.  Credentials are never
part of the URL: a URL is logged and kept in the data folder.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

__all__ = ["S3Location", "parse_s3_url", "is_s3_url", "S3UrlError"]

_OPTIONS = {"endpoint", "region", "addressing", "profile", "grace", "payload"}


class S3UrlError(ValueError):
    """A chunk-store URL that cannot be used (the message says why)."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str = ""                 # "" or ending with "/"
    endpoint: str | None = None
    region: str = "us-east-1"
    virtual_hosted: bool = False
    profile: str | None = None
    grace_s: float | None = None     # None: the store's recorded value (or the default)
    payload: str | None = None       # "signed", "unsigned", None: by the endpoint

    @property
    def unsigned_payload(self) -> bool:
        """True when chunk PUTs send ``UNSIGNED-PAYLOAD`` (see ``payload``)."""
        if self.payload is not None:
            return self.payload == "unsigned"
        if self.endpoint is None:
            return True                          # AWS S3: HTTPS
        ep = urlsplit(self.endpoint)
        return ep.scheme == "https" or _is_loopback(ep.hostname or "")

    def url(self) -> str:
        """The location as a URL (``parse_s3_url(loc.url()) == loc``)."""
        query = []
        if self.endpoint:
            query.append(f"endpoint={self.endpoint}")
        if self.region != "us-east-1":
            query.append(f"region={self.region}")
        if self.virtual_hosted != (self.endpoint is None):
            query.append(f"addressing={'virtual' if self.virtual_hosted else 'path'}")
        if self.profile:
            query.append(f"profile={self.profile}")
        if self.grace_s is not None:
            query.append(f"grace={self.grace_s:g}")
        if self.payload is not None:
            query.append(f"payload={self.payload}")
        tail = "?" + "&".join(query) if query else ""
        return f"s3://{self.bucket}/{self.prefix}{tail}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_s3_url(text: str) -> bool:
    return text.startswith("s3://")


def parse_s3_url(text: str) -> S3Location:
    """``s3://bucket/prefix?endpoint=...`` -> ``S3Location``.

    Raises:
        S3UrlError: not an ``s3://`` URL, no bucket, an unknown or repeated
            option, a bad value, or credentials in the URL.
    """
    parts = urlsplit(text)
    if parts.scheme != "s3":
        raise S3UrlError(f"not an s3:// URL: {text!r}")
    if "@" in parts.netloc:
        raise S3UrlError("credentials do not belong in the URL: use the environment or a profile")
    bucket = parts.netloc
    if not bucket:
        raise S3UrlError(f"no bucket in {text!r}")
    if not (3 <= len(bucket) <= 63) or not all(c.islower() or c.isdigit() or c in ".-" for c in bucket):
        raise S3UrlError(f"not a bucket name: {bucket!r}")
    prefix = parts.path.lstrip("/")
    if "//" in prefix or any(seg in (".", "..") for seg in prefix.split("/")):
        raise S3UrlError(f"bad prefix: {prefix!r}")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    if parts.fragment:
        raise S3UrlError("a fragment (#...) has no meaning here")
    options: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if name not in _OPTIONS:
            raise S3UrlError(f"unknown option {name!r} (known: {', '.join(sorted(_OPTIONS))})")
        if name in options:
            raise S3UrlError(f"option {name!r} given twice")
        options[name] = value
    endpoint = options.get("endpoint") or None
    if endpoint is not None:
        ep = urlsplit(endpoint)
        if ep.scheme not in ("http", "https") or not ep.netloc or ep.path not in ("", "/") or ep.query:
            raise S3UrlError(f"endpoint must be http(s)://host[:port]: {endpoint!r}")
        if "@" in ep.netloc:
            raise S3UrlError("credentials do not belong in the endpoint")
        endpoint = f"{ep.scheme}://{ep.netloc}"
    addressing = options.get("addressing", "path" if endpoint else "virtual")
    if addressing not in ("path", "virtual"):
        raise S3UrlError(f"addressing must be path or virtual, not {addressing!r}")
    region = options.get("region", "us-east-1")
    if not region:
        raise S3UrlError("empty region")
    grace = None
    if "grace" in options:
        try:
            grace = float(options["grace"])
        except ValueError:
            raise S3UrlError(f"grace must be seconds: {options['grace']!r}") from None
        if not 0 < grace < 1e9:
            raise S3UrlError("grace must be a positive number of seconds")
    payload = options.get("payload")
    if payload is not None and payload not in ("signed", "unsigned"):
        raise S3UrlError(f"payload must be signed or unsigned, not {payload!r}")
    return S3Location(bucket=bucket, prefix=prefix, endpoint=endpoint, region=region,
                      virtual_hosted=addressing == "virtual", profile=options.get("profile") or None,
                      grace_s=grace, payload=payload)
