"""Versions through S3: object versions are commits.

* ``resolve_version_file`` (blocking) finds the file a GET/HEAD names: the
  branch head, a pinned commit (``<commit>.<branch>.<repo>``) and/or a
  ``versionId`` (a commit id on the bucket's lineage, ``HEAD``, ``HEAD^``,
  ``HEAD~3``, ``<commit>^2``, or ``null`` for the current file).  Errors, as S3
  answers them:

  - malformed version id: 400 ``InvalidArgument``;
  - unknown commit, another branch's commit, or stepping back past the first
    commit: 404 ``NoSuchVersion``;
  - the file did not exist at that commit: 404 ``NoSuchKey``;
  - the file's last change at that commit was a delete: 404 ``NoSuchKey``
    with ``x-amz-delete-marker: true``; when ``versionId`` *is* that delete
    (the delete marker's version id): 405 ``MethodNotAllowed`` with
    ``x-amz-delete-marker``, ``Last-Modified`` and ``Allow: DELETE``, as S3
    documents for a GET/HEAD of a delete marker by version id.
  - a pinned commit not on the named branch: 404 ``NoSuchBucket``.

* ``ListObjectVersions`` (``GET /bucket?versions``): one ``Version`` per
  commit that changed a key (``DeleteMarker`` for a delete), newest first,
  keys in UTF-8 byte order, ``IsLatest`` on the newest; prefix, delimiter,
  key-marker / version-id-marker, max-keys (versions and common prefixes
  together, at most 1000), encoding-type.  The plan is ``pfs.history``.
"""

from __future__ import annotations

from ...http import Request, Response
from ...pfs.history import FileDeleted, InvalidVersion
from ...pfs.model import FileInfo, NoSuchCommit
from .. import xml as s3xml
from ..dates import http_date
from ..errors import S3Error
from .service import OWNER, S3Service, operation

__all__ = ["resolve_version_file", "pinned_commit"]



def pinned_commit(svc: S3Service, ref) -> str | None:
    """Blocking: the commit a pinned bucket names, checked to be on its branch's lineage."""
    if ref.commit is None:
        return None
    svc.meta.get_branch(ref.repo, ref.branch)          # NoSuchBucket
    try:
        svc.meta.resolve_version(ref.repo, ref.branch, ref.commit)
    except NoSuchCommit:
        raise S3Error("NoSuchBucket", f"Commit {ref.commit} is not on branch {ref.branch} "
                                      f"of repo {ref.repo}.",
                      bucket_name=f"{ref.commit}.{ref.branch}.{ref.repo}") from None
    return ref.commit


def resolve_version_file(svc: S3Service, ref, key: str, version: str | None = None) -> FileInfo:
    """Blocking: the file a GET/HEAD (or copy source) designates; see the module doc."""
    meta = svc.meta
    pinned = pinned_commit(svc, ref)
    if version in (None, "", "null"):
        if pinned is None:
            return meta.stat(ref.repo, ref.branch, key)
        spec = pinned
    else:
        spec = version
    try:
        commit = meta.resolve_version(ref.repo, ref.branch, spec, pinned)
        assert commit is not None
        history = meta.history
        return history.stat_in(ref.repo, history.lineage(commit), key)
    except InvalidVersion:
        raise S3Error("InvalidArgument", "Invalid version id specified",
                      argument_name="versionId", argument_value=version) from None
    except NoSuchCommit:
        raise S3Error("NoSuchVersion", key=key, version_id=version) from None
    except FileDeleted as exc:
        headers = {"x-amz-delete-marker": "true", "x-amz-version-id": exc.commit_id,
                   "last-modified": http_date(exc.time_ns)}
        if version == exc.commit_id:
            headers["allow"] = "DELETE"
            raise S3Error("MethodNotAllowed", "The specified method is not allowed against "
                                              "this resource: the version is a delete marker.",
                          headers=headers, method="GET", resource_type="DeleteMarker") from None
        raise S3Error("NoSuchKey", key=key, headers=headers) from None


@operation("ListObjectVersions")
async def list_object_versions(svc: S3Service, req: Request, r) -> Response:
    from .listing import list_params  # listing imports this module
    ref, prefix, delimiter, max_keys, encoding = list_params(svc, r)
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
