"""Route (method, raw path, raw query, headers) to an S3 :class:`Endpoint`.

Theory of operation
-------------------
1. **Address.**  Path style always: ``/`` is the service, ``/b`` and ``/b/``
   the bucket ``b``, ``/b/k…`` the key ``k…`` (everything after the first
   slash, including further slashes: ``/b//x`` is the key ``/x``).  When a
   ``domain`` is configured and the Host (port stripped, case-insensitive)
   is ``<bucket>.<domain>``, the bucket comes from the host and the whole
   path is the key (virtual-host style); a Host equal to the domain, or not
   under it (``127.0.0.1``), means path style.
2. **Decode.**  The path is split on ``/`` *before* percent-decoding, so a
   ``%2F`` inside the bucket segment cannot move the split.  Only ``%xx`` is
   decoded -- a ``+`` in a path is a plus -- and the bytes must be UTF-8
   (else ``InvalidURI``).  A ``%`` not followed by two hex digits is kept
   literally (as ``urllib`` does).  A ``str`` path is taken to be bytes
   decoded as Latin-1 (what a server does with raw request-target bytes);
   ``bytes`` are accepted too.
3. **Query.**  ``name[=value]`` items split on ``&``; names and values are
   form-decoded (``+`` is a space, as S3 does for query values; clients send
   ``%2B`` for a plus), then UTF-8 (else ``InvalidArgument``).  A bare
   ``?uploads`` and ``?uploads=`` both give ``{"uploads": ""}``.  For a
   repeated name the first value wins.  Parameters that are neither
   subresources nor known to the operation are ignored (``x-id``,
   ``fetch-owner``, ``metadata`` …).
4. **Select.**  The scope (service/bucket/object) and the first subresource
   present (in ``SUBRESOURCES`` order) pick the endpoint from ``TABLE``;
   refinements: ``x-amz-copy-source`` on PutObject -> CopyObject, on
   UploadPart -> UploadPartCopy; ``list-type=2`` -> ListObjectsV2.  A
   (method, scope, subresource) with no endpoint -> ``MethodNotAllowed``.

The router never reads the body and does not validate bucket names or keys
(that is :mod:`s3gw.s3.wire.names`, called by the operations, so authentication
can run first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from .endpoints import (
    BUCKET,
    COPY_OBJECT,
    LIST_OBJECTS_V2,
    OBJECT,
    SERVICE,
    SUBRESOURCES,
    TABLE,
    UPLOAD_PART_COPY,
    Endpoint,
)
from .errors import S3Error

__all__ = ["RoutedRequest", "parse_query", "route", "split_host"]


@dataclass(frozen=True, slots=True)
class RoutedRequest:
    """The result of routing.

    Attributes:
        endpoint: the operation.
        bucket: the decoded bucket name, or ``None`` for the service.
        key: the decoded key, or ``None`` for service/bucket requests.
        query: decoded query parameters (first value of each name).
        virtual_host: the bucket came from the Host header.
    """

    endpoint: Endpoint
    bucket: str | None
    key: str | None
    query: dict[str, str] = field(default_factory=dict)
    virtual_host: bool = False


def _utf8(raw: bytes, code: str, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise S3Error(code, f"The {what} is not valid UTF-8 after percent-decoding.") from None


def _path_bytes(raw_path: str | bytes) -> bytes:
    if isinstance(raw_path, bytes):
        return raw_path
    try:
        return raw_path.encode("latin-1")
    except UnicodeEncodeError:
        return raw_path.encode("utf-8", "surrogateescape")


def parse_query(raw_query: str | bytes) -> dict[str, str]:
    """Decode a raw query string (see the module docstring, step 3).

    Raises:
        S3Error: ``InvalidArgument`` when a name or value is not UTF-8.
    """
    raw = _path_bytes(raw_query)
    out: dict[str, str] = {}
    for item in raw.split(b"&"):
        if not item:
            continue
        name, _, value = item.partition(b"=")
        n = _utf8(unquote_to_bytes(name.replace(b"+", b" ")), "InvalidArgument", "query")
        if n in out:
            continue
        out[n] = _utf8(unquote_to_bytes(value.replace(b"+", b" ")), "InvalidArgument", "query")
    return out


def split_host(host: str | None, domain: str | None) -> str | None:
    """The bucket named by a virtual-host *host* under *domain*, else ``None``."""
    if not host or not domain:
        return None
    host = host.strip().lower()
    if host.startswith("["):  # IPv6 literal
        return None
    host = host.rsplit(":", 1)[0] if ":" in host else host
    domain = domain.strip().lower().rstrip(".")
    host = host.rstrip(".")
    suffix = "." + domain
    if host.endswith(suffix) and len(host) > len(suffix):
        return host[: -len(suffix)]
    return None


def _address(raw_path: str | bytes, vhost_bucket: str | None) -> tuple[str | None, str | None]:
    path = _path_bytes(raw_path)
    if not path.startswith(b"/"):
        raise S3Error("InvalidURI")
    if vhost_bucket is not None:
        key = _utf8(unquote_to_bytes(path[1:]), "InvalidURI", "path")
        return vhost_bucket, key or None
    rest = path[1:]
    if not rest:
        return None, None
    bucket_raw, slash, key_raw = rest.partition(b"/")
    bucket = _utf8(unquote_to_bytes(bucket_raw), "InvalidURI", "path")
    key = _utf8(unquote_to_bytes(key_raw), "InvalidURI", "path") if slash else ""
    if not bucket:
        raise S3Error("InvalidBucketName", "The bucket name is empty.", bucket_name="")
    return bucket, key or None


METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE"})


def route(
    method: str,
    raw_path: str | bytes,
    raw_query: str | bytes,
    headers: Mapping[str, str],
    *,
    domain: str | None = None,
    host: str | None = None,
) -> RoutedRequest:
    """Find the S3 operation of a request.

    Args:
        method: the HTTP method as received (case-sensitive: only the methods of
            ``METHODS`` are known; one in other case, e.g. ``delete``, is
            ``NotImplemented`` (501), an unknown upper-case one ``MethodNotAllowed``).
        raw_path: the request path as received (undecoded, no query).
        raw_query: the query string as received (no ``?``).
        headers: anything with ``.get(lowercase_name)``.
        domain: the configured virtual-host domain, or ``None``.
        host: the Host to use; defaults to ``headers.get("host")``.

    Returns:
        The :class:`RoutedRequest`; ``endpoint.implemented`` may be False
        (the caller answers ``NotImplemented`` after authentication).

    Raises:
        S3Error: ``InvalidURI`` / ``InvalidArgument`` (undecodable path or
            query), ``InvalidBucketName`` (empty bucket before a key),
            ``MethodNotAllowed`` (no operation for this method here).
    """
    if method not in METHODS and method != method.upper():
        # methods are case-sensitive (RFC 9110 9.1): ``delete`` is not DELETE
        raise S3Error("NotImplemented", "The HTTP method is not implemented (methods are "
                                        "case-sensitive).")
    vhost_bucket = split_host(host if host is not None else headers.get("host"), domain)
    bucket, key = _address(raw_path, vhost_bucket)
    query = parse_query(raw_query)
    scope = SERVICE if bucket is None else BUCKET if key is None else OBJECT
    sub = next((s for s in SUBRESOURCES[scope] if s in query), None)
    endpoint = TABLE.get((method, scope, sub))
    if endpoint is None:
        raise S3Error(
            "MethodNotAllowed",
            method=method,
            resource_type=scope if sub is None else f"{scope}?{sub}",
        )
    name = endpoint.name
    if name == "ListObjects":
        list_type = query.get("list-type")
        if list_type == "2":
            endpoint = LIST_OBJECTS_V2
        elif list_type not in (None, "1"):
            raise S3Error(
                "InvalidArgument", "Invalid list-type.", argument_name="list-type", argument_value=list_type
            )
    elif name == "PutObject":
        if headers.get("x-amz-copy-source") is not None:
            endpoint = COPY_OBJECT
    elif name == "UploadPart":
        if "partNumber" not in query:
            raise S3Error(
                "InvalidArgument", "partNumber is required with uploadId.", argument_name="partNumber"
            )
        if headers.get("x-amz-copy-source") is not None:
            endpoint = UPLOAD_PART_COPY
    return RoutedRequest(endpoint, bucket, key, query, vhost_bucket is not None)
