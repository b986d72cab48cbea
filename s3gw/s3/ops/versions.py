"""ListObjectVersions: object versions are commits.

Which file a ``versionId`` names is ``s3.resolve.resolve_file``.

* ``ListObjectVersions`` (``GET /bucket?versions``): one ``Version`` per
  commit that changed a key (``DeleteMarker`` for a delete), newest first,
  keys in UTF-8 byte order, ``IsLatest`` on the newest; prefix, delimiter,
  key-marker / version-id-marker, max-keys (versions and common prefixes
  together, at most 1000), encoding-type.  The plan is ``pfs.history``.
"""

from __future__ import annotations

from ...http import Request, Response
from ...pfs.history import InvalidVersion
from ..context import OWNER, Context
from ..resolve import pinned_commit
from ..wire import xml_out as s3xml
from ..wire.errors import S3Error
from ..wire.listing import list_params


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
        s3xml.VersionEntry(key=v.path, version_id=v.commit_id, is_latest=v.is_latest,
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
