"""Versions: ListObjectVersions, Get/PutBucketVersioning, deleting a version by id.

The mapping from S3 versions to commits is docs/versioning.md.  Which file a
``versionId`` names is ``s3.resolve.resolve_file``.

* ``Get/PutBucketVersioning``: a bucket (branch) is ``Enabled`` by default or
  ``Suspended`` (``pfs.versioning``).  ``MfaDelete=Enabled`` (or an
  ``x-amz-mfa`` header) is ``501 NotImplemented``: s3gw has no MFA device.
* ``delete_version`` (DeleteObject ``?versionId=``, DeleteObjects
  ``<VersionId>``): an expunge (``SqliteMetadata.expunge_version``); a
  version id that is neither 32 hex digits nor ``null`` is ``400
  InvalidArgument``; one that names no version of the key is a no-op.

* ``ListObjectVersions`` (``GET /bucket?versions``): one ``Version`` per
  version of a key (``DeleteMarker`` for a delete), newest first,
  keys in UTF-8 byte order, ``IsLatest`` on the newest; prefix, delimiter,
  key-marker / version-id-marker, max-keys (versions and common prefixes
  together, at most 1000), encoding-type.  The plan is ``pfs.history``.
"""

from __future__ import annotations

import re

from ...http import Request, Response
from ...pfs.history import InvalidVersion
from ..context import OWNER, PRINCIPAL, Context
from ..payload import read_small_body
from ..resolve import existing_bucket, pinned_commit
from ..wire import xml_out as s3xml
from ..wire.errors import S3Error
from ..wire.listing import list_params
from ..wire.xml_in import MAX_XML_BODY, parse_versioning

_VERSION_ID = re.compile(r"[0-9a-f]{32}")


async def list_object_versions(svc: Context, req: Request, r) -> Response:
    ref = svc.bucket(r.bucket)
    prefix, delimiter, max_keys, encoding = list_params(r.query)
    q = r.query
    key_marker = q.get("key-marker", "")
    version_marker = q.get("version-id-marker", "")
    if version_marker and not key_marker:
        raise S3Error("InvalidArgument", "A version-id marker cannot be specified without "
                                         "a key marker.",
                      argument_name="version-id-marker", argument_value=version_marker)
    pinned = await svc.run(pinned_commit, svc, ref)
    if pinned is None:
        await svc.run(svc.meta.get_branch, ref.repo, ref.branch)
    try:
        page = await svc.run(lambda: svc.meta.versions(
            ref.repo, ref.branch, prefix, key_marker or None,
            None if version_marker in ("", "null") else version_marker, max_keys,
            delimiter=delimiter, pinned=pinned))
    except InvalidVersion:
        raise S3Error("InvalidArgument", "Invalid version id specified",
                      argument_name="version-id-marker", argument_value=version_marker) from None
    entries = [
        s3xml.VersionEntry(key=v.path, version_id=v.s3_id, is_latest=v.is_latest,
                           last_modified_ns=v.time_ns,
                           etag=v.object.etag if v.object else "",
                           size=v.object.size if v.object else 0,
                           delete_marker=v.object is None)
        for v in page.versions]
    doc = s3xml.list_object_versions(
        r.bucket, entries, page.prefixes, prefix=prefix, key_marker=key_marker,
        version_id_marker=version_marker, next_key_marker=page.next_key_marker,
        next_version_id_marker=page.next_version_marker, delimiter=delimiter,
        max_keys=max_keys, is_truncated=page.truncated, encoding_type=encoding, owner=OWNER)
    return Response(200, [("content-type", "application/xml")], doc)


# -- Get/PutBucketVersioning ------------------------------------------------------------
async def get_bucket_versioning(svc: Context, req: Request, r) -> Response:
    ref = await svc.run(existing_bucket, svc, r.bucket)
    status = await svc.run(svc.meta.get_versioning, ref.repo, ref.branch)
    return Response(200, [("content-type", "application/xml")],
                    s3xml.versioning_configuration(status))


async def put_bucket_versioning(svc: Context, req: Request, r) -> Response:
    ref = svc.writable(r.bucket)
    body = await read_small_body(req, limit=MAX_XML_BODY)
    if not body:
        raise S3Error("MissingRequestBodyError")
    status, mfa = parse_versioning(body)
    if mfa == "Enabled" or "x-amz-mfa" in req.headers:
        raise S3Error("NotImplemented", "MFA Delete is not supported by s3gw.")
    await svc.run(svc.meta.get_branch, ref.repo, ref.branch)       # NoSuchBucket
    if status is not None:
        await svc.run(svc.meta.set_versioning, ref.repo, ref.branch, status, svc.clock())
        svc.suspended = await svc.run(svc.meta.suspended_branches)
    return Response(200, [], b"")


# -- deleting a version -----------------------------------------------------------------
def check_version_id(version: str) -> None:
    """A version id a delete may name: 32 hex digits or ``null`` (no relative specs)."""
    if version != "null" and not _VERSION_ID.fullmatch(version):
        raise S3Error("InvalidArgument", "Invalid version id specified",
                      argument_name="versionId", argument_value=version)


def caller() -> str | None:
    """The user name an expunge is recorded with (None: auth is off)."""
    principal = PRINCIPAL.get()
    return principal.user if principal is not None else None


def delete_version(svc: Context, ref, key: str, version: str, user: str | None):
    """Blocking: expunge one version of ``key`` through bucket ``ref`` (``pfs``'s
    ``ExpungeResult``), recorded with ``user``."""
    return svc.meta.expunge_version(ref.repo, ref.branch, key, version, svc.clock(), user)
