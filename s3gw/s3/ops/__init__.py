"""The S3 operations (async): one module per resource, one function per AWS operation.

``HANDLERS`` is the one table from an endpoint's AWS operation name
(``s3.wire.endpoints``) to its handler ``async (svc, request, routed) -> Response``.
An endpoint the router can produce is either here or marked
``implemented=False`` (answered ``NotImplemented``); ``tests/unit/test_dispatch.py``
holds both ways.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from ...http import Request, Response
from ..context import Context
from . import acl, buckets, copy, delete, get, listing, multipart, preflight, put, versions

__all__ = ["HANDLERS", "Handler"]

Handler = Callable[[Context, Request, object], Awaitable[Response]]

HANDLERS: dict[str, Handler] = {
    "ListBuckets": buckets.list_buckets,
    "CreateBucket": buckets.create_bucket,
    "HeadBucket": buckets.head_bucket,
    "DeleteBucket": buckets.delete_bucket,
    "GetBucketLocation": buckets.get_bucket_location,
    "GetBucketVersioning": versions.get_bucket_versioning,
    "PutBucketVersioning": versions.put_bucket_versioning,
    "GetBucketAcl": acl.get_bucket_acl,
    "PutBucketAcl": acl.put_bucket_acl,
    "GetObjectAcl": acl.get_object_acl,
    "PutObjectAcl": acl.put_object_acl,
    "ListObjects": listing.list_objects,
    "ListObjectsV2": listing.list_objects_v2,
    "ListObjectVersions": versions.list_object_versions,
    "PutObject": put.put_object,
    "GetObject": get.get_object,
    "HeadObject": get.head_object,
    "DeleteObject": delete.delete_object,
    "DeleteObjects": delete.delete_objects,
    "CopyObject": copy.copy_object,
    "CreateMultipartUpload": multipart.create_multipart_upload,
    "UploadPart": multipart.upload_part,
    "UploadPartCopy": copy.upload_part_copy,
    "CompleteMultipartUpload": multipart.complete_multipart_upload,
    "AbortMultipartUpload": multipart.abort_multipart_upload,
    "ListParts": multipart.list_parts,
    "ListMultipartUploads": multipart.list_multipart_uploads,
    "OptionsBucket": preflight.options_bucket,
    "OptionsObject": preflight.options_object,
}
