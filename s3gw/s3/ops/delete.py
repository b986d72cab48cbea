"""DeleteObject and DeleteObjects: one commit per request on the branch head.

A ``versionId`` deletes that version for good (an expunge, ``ops.versions``,
docs/versioning.md): each one its own transaction.  DeleteObjects entries with
conditions s3gw does not evaluate (``<Size>``, ``<LastModifiedTime>``) are
refused per key (``NotImplemented``), never deleted unconditionally.
"""

from __future__ import annotations

import hashlib

from ...http import Request, Response
from ...pfs.model import ConditionFailed, Delete, FileInfo, NoSuchFile
from ..context import Context
from ..payload import read_small_body
from ..resolve import stat_or_none
from ..wire import conditions
from ..wire import xml_out as s3xml
from ..wire.errors import S3Error
from ..wire.names import validate_key
from ..wire.object_headers import content_md5
from ..wire.xml_in import parse_delete_entries
from . import versions


# -- DeleteObject(s) --------------------------------------------------------------------
async def delete_object(svc: Context, req: Request, r) -> Response:
    ref = svc.writable(r.bucket)
    key = validate_key(r.key)
    condition = _delete_condition(req.headers)
    version = r.query.get("versionId")
    if version:
        versions.check_version_id(version)
        if condition is not None:
            raise S3Error("NotImplemented", "If-Match with a versionId is not supported.")
        await svc.run(svc.meta.get_branch, ref.repo, ref.branch)       # NoSuchBucket
        res = await svc.run(versions.delete_version, svc, ref, key, version, versions.caller())
        headers = [("x-amz-version-id", version)]
        if res.delete_marker:
            headers.append(("x-amz-delete-marker", "true"))
        return Response(204, headers, b"")
    commit = await svc.run(svc.meta.commit, ref.repo, ref.branch, [Delete(key)],
                           f"DELETE /{key}", svc.clock(), condition)
    headers = []
    if commit is not None:   # the key existed: its delete is a version, a delete marker
        headers += [("x-amz-version-id", svc.write_version_id(ref, commit.id)),
                    ("x-amz-delete-marker", "true")]
    return Response(204, headers, b"")


async def delete_objects(svc: Context, req: Request, r) -> Response:
    ref = svc.writable(r.bucket)
    body = await read_small_body(req, limit=2 * 1024 * 1024)
    md5 = content_md5(req.headers.get("content-md5"))
    if md5 is not None and hashlib.md5(body).digest() != md5:
        raise S3Error("BadDigest")
    quiet, objects = parse_delete_entries(body)
    errors, wanted, order, by_version = [], {}, [], []
    for entry in objects:
        key, version, etag = entry.key, entry.version_id, entry.etag
        try:
            validate_key(key)
            if entry.unsupported:
                raise S3Error("NotImplemented", f"{' and '.join(entry.unsupported)} conditions "
                                                "apply to directory buckets only.")
            if version:
                versions.check_version_id(version)
                if etag is not None:
                    raise S3Error("NotImplemented", "ETag conditions with a VersionId are "
                                                    "not supported.")
        except S3Error as exc:
            errors.append(s3xml.DeleteError(key=key, code=exc.code, message=exc.message,
                                            version_id=version))
            continue
        if version:
            by_version.append((key, version))
            continue
        wanted.setdefault(key, (version, etag))
        order.append((key, version))
    commit = None
    if wanted or by_version:
        await svc.run(svc.meta.get_branch, ref.repo, ref.branch)
    deleted = []
    user = versions.caller()
    for key, version in by_version:        # each its own transaction
        res = await svc.run(versions.delete_version, svc, ref, key, version, user)
        deleted.append(s3xml.Deleted(key=key, version_id=version,
                                     delete_marker=res.delete_marker,
                                     delete_marker_version_id=version if res.delete_marker
                                     else None))
    if wanted:
        commit = await svc.run(_delete_many, svc, ref, wanted, errors)
    marker = svc.write_version_id(ref, commit.id) if commit is not None else None
    deleted += [s3xml.Deleted(key=key, version_id=version, delete_marker=marker is not None,
                              delete_marker_version_id=marker)
                for key, version in order if key in wanted]
    doc = s3xml.delete_result(errors if quiet else deleted + errors)
    headers = [("content-type", "application/xml")]
    if commit is not None:
        headers.append(("x-amz-version-id", commit.id))
    return Response(200, headers, doc)


def _delete_condition(headers) -> conditions.WriteCondition | None:
    """A DeleteObject's ``If-Match`` (AWS conditional deletes): the key must exist
    (404 NoSuchKey) and, unless the value is ``*``, have that ETag (412); decided
    inside the commit.  The size and time conditions AWS offers for directory
    buckets only are refused, not ignored."""
    if "x-amz-if-match-size" in headers or "x-amz-if-match-last-modified-time" in headers:
        raise S3Error("NotImplemented", "x-amz-if-match-size and x-amz-if-match-last-modified-"
                                        "time apply to directory buckets only.")
    if_match = headers.get("if-match")
    return None if if_match is None else conditions.WriteCondition(if_match, False)


def _delete_many(svc: Context, ref, wanted: dict, errors: list):
    """Blocking: DeleteObjects' commit.  A key with an ``<ETag>`` is deleted only if it
    exists with that ETag (``*``: exists); one that does not qualify is reported in
    ``errors`` and removed from ``wanted`` (it fails alone), and the commit checks
    the rest again atomically.  A concurrent write that changes a checked key between
    the two checks makes the commit fail; the batch is then decided again (at most
    three times, then the commit's error stands)."""
    for attempt in range(3):
        expected = {key: etag for key, (_, etag) in wanted.items() if etag is not None}
        for key, etag in expected.items():
            try:
                conditions.WriteCondition(etag, False)(key, stat_or_none(svc, ref, key))
            except (NoSuchFile, ConditionFailed) as exc:
                code = "NoSuchKey" if isinstance(exc, NoSuchFile) else "PreconditionFailed"
                errors.append(s3xml.DeleteError(key=key, code=code, message=_DELETE_FAILED[code],
                                                version_id=wanted.pop(key)[0]))
        if not wanted:
            return None
        condition = _EtagsCondition(expected) if expected else None
        try:
            return svc.meta.commit(ref.repo, ref.branch, [Delete(key) for key in wanted],
                                   f"DELETE {len(wanted)} objects", svc.clock(), condition)
        except (NoSuchFile, ConditionFailed):
            if attempt == 2:
                raise


_DELETE_FAILED = {"NoSuchKey": "The specified key does not exist.",
                  "PreconditionFailed": "At least one of the pre-conditions you specified "
                                        "did not hold"}


class _EtagsCondition:
    """``condition(path, current)`` for a commit of several deletes, each with its own
    expected ETag (or none)."""

    def __init__(self, expected: dict[str, str]):
        self._checks = {key: conditions.WriteCondition(etag, False)
                        for key, etag in expected.items()}

    def __call__(self, path: str, current: FileInfo | None) -> None:
        check = self._checks.get(path)
        if check is not None:
            check(path, current)
