"""One frozen :class:`Endpoint` per S3 operation, named as AWS names it.

Theory of operation
-------------------
An S3 request is identified by (method, scope, subresource): the *scope* is
the service (``/``), a bucket (``/b``) or an object (``/b/k``); the
*subresource* is the one query parameter that selects a different resource
(``?acl``, ``?uploads``, ``?uploadId=…``, ``?location`` …).  A few
operations are further told apart by a header or a parameter value
(``x-amz-copy-source`` -> CopyObject / UploadPartCopy, ``list-type=2`` ->
ListObjectsV2); :mod:`s3gw.s3.wire.router` applies those refinements.

``TABLE`` maps ``(method, scope, subresource)`` to the endpoint.  Each
endpoint carries:

* ``access``: the auth class -- ``READ`` (no change to any branch) or
  ``WRITE`` (moves a branch head or changes upload state; refused on
  read-only commit buckets by the operation layer).
* ``body``: what the request body is -- ``NONE`` (ignored), ``XML`` (a small
  document, read whole with a cap) or ``DATA`` (object bytes, streamed).
* ``implemented``: False for operations s3gw knows but does not support.
  The router still returns them (so authentication runs first); the
  operation layer answers ``NotImplemented`` (501), never a 500 and never a
  silent success.

Known-but-unsupported subresources are generated from ``_UNSUPPORTED``
(``cors`` -> GetBucketCors / PutBucketCors / DeleteBucketCors …).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BUCKET",
    "COPY_OBJECT",
    "DATA",
    "LIST_OBJECTS_V2",
    "NONE",
    "OBJECT",
    "READ",
    "SERVICE",
    "SUBRESOURCES",
    "TABLE",
    "UPLOAD_PART_COPY",
    "WRITE",
    "XML",
    "Endpoint",
    "by_name",
]

SERVICE, BUCKET, OBJECT = "SERVICE", "BUCKET", "OBJECT"
READ, WRITE = "READ", "WRITE"
NONE, XML, DATA = "NONE", "XML", "DATA"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One S3 operation.

    Attributes:
        name: the AWS operation name (``ListObjectsV2``).
        method: HTTP method.
        scope: SERVICE, BUCKET or OBJECT.
        subresource: the selecting query parameter, or ``None``.
        access: READ or WRITE (the auth class).
        body: NONE, XML or DATA.
        implemented: False -> the operation layer answers 501.
    """

    name: str
    method: str
    scope: str
    subresource: str | None
    access: str
    body: str = NONE
    implemented: bool = True


def _e(
    name: str, method: str, scope: str, sub: str | None, access: str, body: str = NONE, impl: bool = True
) -> Endpoint:
    return Endpoint(name, method, scope, sub, access, body, impl)


_IMPLEMENTED = [
    _e("ListBuckets", "GET", SERVICE, None, READ),
    _e("CreateBucket", "PUT", BUCKET, None, WRITE, XML),
    _e("DeleteBucket", "DELETE", BUCKET, None, WRITE),
    _e("HeadBucket", "HEAD", BUCKET, None, READ),
    _e("ListObjects", "GET", BUCKET, None, READ),
    _e("GetBucketLocation", "GET", BUCKET, "location", READ),
    _e("GetBucketVersioning", "GET", BUCKET, "versioning", READ),
    _e("PutBucketVersioning", "PUT", BUCKET, "versioning", WRITE, XML),
    _e("ListObjectVersions", "GET", BUCKET, "versions", READ),
    _e("ListMultipartUploads", "GET", BUCKET, "uploads", READ),
    _e("DeleteObjects", "POST", BUCKET, "delete", WRITE, XML),
    _e("GetBucketAcl", "GET", BUCKET, "acl", READ),
    _e("PutBucketAcl", "PUT", BUCKET, "acl", WRITE, XML),
    _e("PutObject", "PUT", OBJECT, None, WRITE, DATA),
    _e("GetObject", "GET", OBJECT, None, READ),
    _e("HeadObject", "HEAD", OBJECT, None, READ),
    _e("DeleteObject", "DELETE", OBJECT, None, WRITE),
    _e("GetObjectAcl", "GET", OBJECT, "acl", READ),
    _e("PutObjectAcl", "PUT", OBJECT, "acl", WRITE, XML),
    _e("CreateMultipartUpload", "POST", OBJECT, "uploads", WRITE),
    _e("UploadPart", "PUT", OBJECT, "uploadId", WRITE, DATA),
    _e("CompleteMultipartUpload", "POST", OBJECT, "uploadId", WRITE, XML),
    _e("AbortMultipartUpload", "DELETE", OBJECT, "uploadId", WRITE),
    _e("ListParts", "GET", OBJECT, "uploadId", READ),
    # CORS preflight (AWS's "OPTIONS object"), answered as for a bucket without CORS
    _e("OptionsBucket", "OPTIONS", BUCKET, None, READ),
    _e("OptionsObject", "OPTIONS", OBJECT, None, READ),
]

# Refinements chosen by the router (not reachable from TABLE directly).
LIST_OBJECTS_V2 = _e("ListObjectsV2", "GET", BUCKET, None, READ)
COPY_OBJECT = _e("CopyObject", "PUT", OBJECT, None, WRITE)
UPLOAD_PART_COPY = _e("UploadPartCopy", "PUT", OBJECT, "uploadId", WRITE)

# subresource -> (bucket-level AWS name stem, object-level stem); methods GET/PUT/DELETE.
_UNSUPPORTED: dict[str, tuple[str | None, str | None]] = {
    "cors": ("BucketCors", None),
    "policy": ("BucketPolicy", None),
    "tagging": ("BucketTagging", "ObjectTagging"),
    "lifecycle": ("BucketLifecycleConfiguration", None),
    "website": ("BucketWebsite", None),
    "logging": ("BucketLogging", None),
    "notification": ("BucketNotificationConfiguration", None),
    "replication": ("BucketReplication", None),
    "encryption": ("BucketEncryption", None),
    "requestPayment": ("BucketRequestPayment", None),
    "ownershipControls": ("BucketOwnershipControls", None),
    "publicAccessBlock": ("PublicAccessBlock", None),
    "object-lock": ("ObjectLockConfiguration", None),
    "retention": (None, "ObjectRetention"),
    "legal-hold": (None, "ObjectLegalHold"),
    "accelerate": ("BucketAccelerateConfiguration", None),
    "analytics": ("BucketAnalyticsConfiguration", None),
    "metrics": ("BucketMetricsConfiguration", None),
    "inventory": ("BucketInventoryConfiguration", None),
    "intelligent-tiering": ("BucketIntelligentTieringConfiguration", None),
}
# Operations with their own shape.
_UNSUPPORTED_EXTRA = [
    _e("GetBucketPolicyStatus", "GET", BUCKET, "policyStatus", READ, NONE, False),
    _e("PostObject", "POST", BUCKET, None, WRITE, DATA, False),
    _e("GetObjectTorrent", "GET", OBJECT, "torrent", READ, NONE, False),
    _e("RestoreObject", "POST", OBJECT, "restore", WRITE, XML, False),
    _e("SelectObjectContent", "POST", OBJECT, "select", READ, XML, False),
    _e("GetObjectAttributes", "GET", OBJECT, "attributes", READ, NONE, False),
]


def _build() -> dict[tuple[str, str, str | None], Endpoint]:
    table: dict[tuple[str, str, str | None], Endpoint] = {}
    endpoints = list(_IMPLEMENTED) + list(_UNSUPPORTED_EXTRA)
    for sub, stems in _UNSUPPORTED.items():
        for scope, stem in zip((BUCKET, OBJECT), stems):
            if stem is None:
                continue
            verbs = (("Get", "GET", READ), ("Put", "PUT", WRITE), ("Delete", "DELETE", WRITE))
            for verb, method, access in verbs:
                body = XML if method == "PUT" else NONE
                endpoints.append(_e(verb + stem, method, scope, sub, access, body, False))
    for ep in endpoints:
        key = (ep.method, ep.scope, ep.subresource)
        assert key not in table, key
        table[key] = ep
    return table


TABLE: dict[tuple[str, str, str | None], Endpoint] = _build()

# Subresource parameters per scope, in the order the router checks them.
SUBRESOURCES: dict[str, tuple[str, ...]] = {
    scope: tuple(
        dict.fromkeys(sub for (_m, s, sub) in TABLE if s == scope and sub is not None)
    )
    for scope in (SERVICE, BUCKET, OBJECT)
}

_BY_NAME = {ep.name: ep for ep in TABLE.values()}
for _ep in (LIST_OBJECTS_V2, COPY_OBJECT, UPLOAD_PART_COPY):
    _BY_NAME[_ep.name] = _ep
del _ep


def by_name(name: str) -> Endpoint:
    """The endpoint called *name* (``KeyError`` if none)."""
    return _BY_NAME[name]
