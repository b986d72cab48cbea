"""Blocking lookups of what a request names: the pinned commit of a bucket, the file a
GET/HEAD (or a copy source) designates, the upload an UploadPart names.

* ``resolve_file`` finds the file a GET/HEAD names: the branch head, a pinned
  commit (``<commit>.<branch>.<repo>``) and/or a ``versionId`` (a commit id on
  the bucket's lineage, ``HEAD``, ``HEAD^``, ``HEAD~3``, ``<commit>^2``, or
  ``null`` for the current file).  Errors, as S3 answers them:

  - malformed version id: 400 ``InvalidArgument``;
  - unknown commit, another branch's commit, or stepping back past the first
    commit: 404 ``NoSuchVersion``;
  - the file did not exist at that commit: 404 ``NoSuchKey``;
  - the file's last change at that commit was a delete: 404 ``NoSuchKey``
    with ``x-amz-delete-marker: true``; when ``versionId`` *is* that delete
    (the delete marker's version id): 405 ``MethodNotAllowed`` with
    ``x-amz-delete-marker``, ``Last-Modified`` and ``Allow: DELETE``, as S3
    documents for a GET/HEAD of a delete marker by version id.
  - a pinned commit not on the named branch: 404 ``NoSuchBucket``;
  - a version deleted by id (expunged, docs/versioning.md): 404 ``NoSuchVersion``
    when ``versionId`` names it, else 404 ``NoSuchKey`` (the key is absent at
    every commit where that version was its content);
  - ``versionId=null``: the key's ``null`` version (written while the bucket's
    versioning was Suspended), or the current file when it has none.

Every function blocks (SQLite reads): operations call them through ``svc.run``.
"""

from __future__ import annotations

from ..pfs.history import FileDeleted, InvalidVersion, VersionExpunged
from ..pfs.model import FileInfo, NoSuchCommit, NoSuchFile
from ..pfs.uploads import NoSuchUpload, UploadInfo
from .context import Context
from .wire.dates import http_date
from .wire.errors import S3Error
from .wire.names import BucketRef

__all__ = ["existing_bucket", "pinned_commit", "resolve_file", "stat_or_none", "get_upload_for"]


def pinned_commit(svc: Context, ref) -> str | None:
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


def resolve_file(svc: Context, ref, key: str, version: str | None = None) -> FileInfo:
    """Blocking: the file a GET/HEAD (or copy source) designates; see the module doc."""
    meta = svc.meta
    pinned = pinned_commit(svc, ref)
    if version == "null":
        found = _null_version(svc, ref, key, pinned)
        if found is not None:
            return found
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
    except VersionExpunged as exc:
        if version == exc.commit_id:     # that version was deleted by id
            raise S3Error("NoSuchVersion", key=key, version_id=version) from None
        raise S3Error("NoSuchKey", key=key) from None
    except FileDeleted as exc:
        headers = {"x-amz-delete-marker": "true", "x-amz-version-id": exc.commit_id,
                   "last-modified": http_date(exc.time_ns)}
        if version == exc.commit_id:
            headers["allow"] = "DELETE"
            raise S3Error("MethodNotAllowed", "The specified method is not allowed against "
                                              "this resource: the version is a delete marker.",
                          headers=headers, method="GET", resource_type="DeleteMarker") from None
        raise S3Error("NoSuchKey", key=key, headers=headers) from None


def _null_version(svc: Context, ref, key: str, pinned: str | None) -> FileInfo | None:
    """Blocking: the key's visible ``null`` version (docs/versioning.md), or None when
    it has none (then ``null`` reads the current file, as before Suspended existed).
    A ``null`` delete marker answers 405 as any delete marker read by version id."""
    v = svc.meta.history.null_version(ref.repo, ref.branch, key, pinned)
    if v is None:
        return None
    if v.object is None:
        raise S3Error("MethodNotAllowed", "The specified method is not allowed against this "
                                          "resource: the version is a delete marker.",
                      headers={"x-amz-delete-marker": "true", "x-amz-version-id": "null",
                               "last-modified": http_date(v.time_ns), "allow": "DELETE"},
                      method="GET", resource_type="DeleteMarker")
    info = svc.meta.history.file_of(ref.repo, v)
    return FileInfo(info.path, info.object, "null", info.time_ns)


def stat_or_none(svc: Context, ref, key: str) -> FileInfo | None:
    """Blocking: the file at the branch head, or None."""
    try:
        return svc.meta.stat(ref.repo, ref.branch, key)
    except NoSuchFile:
        return None


def get_upload_for(svc: Context, ref: BucketRef, key: str, upload_id: str | None) -> UploadInfo:
    """Blocking: the upload ``upload_id`` if it targets this bucket and key, else NoSuchUpload."""
    if not upload_id:
        raise NoSuchUpload("")
    info = svc.meta.uploads.get(upload_id)
    if (info.repo, info.branch, info.key) != (ref.repo, ref.branch, key):
        raise NoSuchUpload(upload_id)
    return info


def existing_bucket(svc: Context, name: str | None) -> BucketRef:
    """Blocking: the bucket ``name`` names, checked to exist (its branch, and its
    pinned commit if any): ``NoSuchBucket`` / ``NoSuchVersion`` otherwise."""
    ref = svc.bucket(name)
    svc.meta.get_branch(ref.repo, ref.branch)
    if ref.commit is not None:
        svc.meta.get_commit(ref.commit)
    return ref
