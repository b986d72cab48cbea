"""Server-side copy: CopyObject and UploadPartCopy.

Theory of operation
-------------------
* CopyObject is zero-copy: with ``x-amz-metadata-directive: COPY`` (the
  default) the destination file points at the source's object row; with
  ``REPLACE`` it gets a new row with the same manifest blob (same chunks,
  same ETag, checksums and part sizes) and the request's headers.  Either
  way no chunk is read or written, within a branch or across branches and
  repos (chunks are global).  A copy of the current version onto itself is
  allowed only with ``REPLACE`` (rclone updates mtimes that way), as S3
  rules.  A copy of another version of the key onto it (``versionId``
  naming an older commit) is S3's way to restore a previous version: a new
  commit whose object is that version's, also when the key is deleted at
  the head.  Which version is current is read before the commit, not in its
  transaction: commits only add versions, so a writer landing in between
  cannot make the source the current version again; it can only make a
  self-copy's refusal answer the state of a moment earlier.
* ``If-None-Match: *`` and ``If-Match`` apply to the destination, as on a
  PutObject (``s3.wire.conditions.write_condition``), decided inside the commit;
  the ``x-amz-copy-source-if-*`` headers apply to the source.
* The source may be pinned with ``?versionId=<commit>`` (or a commit-pinned
  source bucket): resolved by ``s3.resolve.resolve_file`` like a GET's
  versionId (any commit of the branch's lineage, ``null`` = the head).
* ``x-amz-copy-source-if-*`` are evaluated on the source (``s3.wire.parts``);
  a failure is ``412 PreconditionFailed``.
* UploadPartCopy makes a part from a byte range of the source: chunks that
  lie wholly inside the range are referenced as they are; a chunk the
  range cuts is read, its slice chunked and stored as new chunks (only the
  boundary chunks' bytes are written).  The part's ETag is the MD5 of its
  bytes, as in S3, so the range is read (verified, not written) to hash
  it -- except for a whole single-part source, whose MD5 is already known.
"""

from __future__ import annotations

import base64

from ...http import Request, Response
from ...ingest.pipeline import ChunkStage
from ...pfs.model import FileInfo, NoSuchFile, ObjectInfo, Put
from ...pfs.uploads import PartInfo
from ...store.hashing import StreamHasher
from ...store.manifest import Manifest
from ..context import Context
from ..resolve import get_upload_for, resolve_file
from ..wire import conditions
from ..wire import xml_out as s3xml
from ..wire.errors import S3Error
from ..wire.names import CopySource, parse_copy_source, validate_key
from ..wire.object_headers import stored_headers
from ..wire.parts import (
    CHECKSUM_ALGORITHMS,
    MAX_PART_SIZE,
    copy_preconditions,
    parse_copy_range,
    parse_part_number,
)

__all__ = ["copy_range", "resolve_source"]

_XML = ("content-type", "application/xml")
_SELF_COPY = ("This copy request is illegal because it is trying to copy an object to itself "
              "without changing the object's metadata, storage class, website redirect "
              "location or encryption attributes.")


def resolve_source(svc: Context, src: CopySource) -> FileInfo:
    """Blocking: the file a copy source names (branch head, pinned commit or version)."""
    ref = svc.bucket(src.bucket)
    key = validate_key(src.key)
    return resolve_file(svc, ref, key, src.version_id)


def _source(req: Request) -> CopySource:
    return parse_copy_source(req.headers.get("x-amz-copy-source") or "")


def _same_key(svc: Context, src: CopySource, dst, key: str) -> bool:
    """The source names the destination's key on the same branch (a commit-pinned
    source bucket is another bucket name, so never)."""
    src_ref = svc.bucket(src.bucket)
    return src_ref.commit is None and src.key == key \
        and (src_ref.repo, src_ref.branch) == (dst.repo, dst.branch)


def _is_current(svc: Context, dst, key: str, info: FileInfo) -> bool:
    """Blocking: True when ``info`` (a version of ``key``) is the key's current version.

    Versions compare by the file's last change (``commit_id``): ``HEAD``,
    ``null`` or a later commit that left the key alone name the current version
    too.  A key deleted at the head has none: restoring it is no self-copy.
    """
    try:
        current = svc.meta.stat(dst.repo, dst.branch, key)
    except NoSuchFile:
        return False
    return current.commit_id == info.commit_id


def _check_conditions(req: Request, info: FileInfo) -> None:
    failed = copy_preconditions(req.headers, info.object.etag, info.time_ns)
    if failed is not None:
        raise S3Error("PreconditionFailed", condition=failed)


def _digest_range(svc: Context, manifest: Manifest, start: int, end: int,
                  algorithms: list[str]) -> dict[str, bytes]:
    """Blocking: digests of bytes [start, end) of a manifest (verified reads, no writes)."""
    hasher = StreamHasher(algorithms)
    for ref, off, n in manifest.plan(start, end):
        hasher.update(svc.store.read(ref, off, n))
    return hasher.digests()


# -- CopyObject -------------------------------------------------------------------------
async def copy_object(svc: Context, req: Request, r) -> Response:
    dst = svc.writable(r.bucket)
    key = validate_key(r.key)
    src = _source(req)
    if "x-amz-copy-source-range" in req.headers:
        raise S3Error("InvalidArgument", "x-amz-copy-source-range is only allowed with "
                                         "UploadPartCopy.",
                      argument_name="x-amz-copy-source-range")
    directive = (req.headers.get("x-amz-metadata-directive") or "COPY").strip().upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "Unknown metadata directive.",
                      argument_name="x-amz-metadata-directive", argument_value=directive)
    new_headers = dict(stored_headers(req.headers))   # validates x-amz-acl, metadata size
    condition = conditions.write_condition(req.headers)  # the destination's, as PutObject's
    algo = req.headers.get("x-amz-checksum-algorithm")
    algo = algo.strip().lower() if algo else None
    if algo is not None and algo not in CHECKSUM_ALGORITHMS:
        raise S3Error("InvalidRequest", "Checksum algorithm provided is unsupported.")
    await svc.run(svc.meta.get_branch, dst.repo, dst.branch)   # NoSuchBucket (destination)
    info: FileInfo = await svc.run(resolve_source, svc, src)
    _check_conditions(req, info)
    if directive == "COPY" and _same_key(svc, src, dst, key):
        # without a versionId the source is the current object; with one, it may be
        # an older version: copying that is how S3 restores a previous version
        if src.version_id in (None, "") or await svc.run(_is_current, svc, dst, key, info):
            raise S3Error("InvalidRequest", _SELF_COPY)
    obj = info.object
    checksums = dict(obj.checksums)
    if algo is not None and algo not in checksums:
        digests = await svc.run(_digest_range, svc, Manifest.unpack(obj.manifest), 0, obj.size,
                                [algo])
        checksums = {algo: base64.b64encode(digests[algo]).decode()}
    if directive == "COPY" and checksums == obj.checksums:
        new = obj        # the same object row: zero-copy, zero new metadata
    else:
        new = ObjectInfo(size=obj.size, etag=obj.etag, manifest=obj.manifest,
                         headers=new_headers if directive == "REPLACE" else dict(obj.headers),
                         checksums=checksums, parts=obj.parts)
    commit = await svc.run(svc.meta.commit, dst.repo, dst.branch, [Put(key, new)],
                           f"COPY /{src.bucket}/{src.key} -> /{key}", svc.clock(), condition)
    headers = [_XML, ("x-amz-version-id", svc.write_version_id(dst, commit.id)),
               ("x-amz-copy-source-version-id", info.commit_id)]
    headers.extend((f"x-amz-checksum-{a}", v) for a, v in checksums.items() if "-" not in v)
    return Response(200, headers, s3xml.copy_object_result(obj.etag, commit.time_ns))


# -- UploadPartCopy ---------------------------------------------------------------------
def copy_range(svc: Context, manifest: Manifest, start: int, end: int,
               algorithms: list[str]) -> tuple[Manifest, dict[str, bytes]]:
    """Blocking: a manifest for bytes [start, end) of ``manifest`` and their digests.

    Whole chunks are referenced (zero-copy); a chunk the range cuts has its
    slice chunked and written as new chunk(s), made durable before this
    returns.  Memory: one chunk read at a time plus one ChunkStage.
    """
    hasher = StreamHasher(algorithms) if algorithms else None
    batch = svc.store.batch()
    refs = []
    try:
        for ref, off, n in manifest.plan(start, end):
            whole = off == 0 and n == ref.length
            if whole and hasher is None:
                refs.append(ref)
                continue
            data = svc.store.read(ref, off, n)
            if hasher is not None:
                hasher.update(data)
            if whole:
                refs.append(ref)
                continue
            stage = ChunkStage(batch)
            try:
                stage.feed(data)
                stage.finish()
            except BaseException:
                stage.abandon()
                raise
            refs.extend(stage.refs)
        batch.sync()
    except BaseException:
        batch.discard()
        raise
    return Manifest(refs), (hasher.digests() if hasher is not None else {})


async def upload_part_copy(svc: Context, req: Request, r) -> Response:
    dst = svc.writable(r.bucket)
    key = validate_key(r.key)
    number = parse_part_number(r.query.get("partNumber"))
    src = _source(req)
    upload = await svc.run(get_upload_for, svc, dst, key, r.query.get("uploadId"))
    info: FileInfo = await svc.run(resolve_source, svc, src)
    _check_conditions(req, info)
    obj = info.object
    start, end = parse_copy_range(req.headers.get("x-amz-copy-source-range"), obj.size)
    if end - start > MAX_PART_SIZE:
        raise S3Error("InvalidRequest", "The specified copy source is larger than the maximum "
                                        "allowable size for a copy source: 5368709120")
    algo = upload.checksum_algorithm
    whole_single = start == 0 and end == obj.size and not obj.parts and "-" not in obj.etag
    if whole_single and (algo is None or algo in obj.checksums):
        # The whole of a single-part object: its MD5 and checksum are known, nothing to read.
        manifest, etag = obj.manifest, obj.etag
        checksums = {algo: obj.checksums[algo]} if algo else {}
    else:
        algorithms = ["md5"] + ([algo] if algo else [])
        new_manifest, digests = await svc.run(copy_range, svc, Manifest.unpack(obj.manifest),
                                              start, end, algorithms)
        manifest, etag = new_manifest.pack(), digests["md5"].hex()
        checksums = {algo: base64.b64encode(digests[algo]).decode()} if algo else {}
    now = svc.clock()
    part = PartInfo(number, end - start, etag, manifest, checksums, now)
    await svc.run(svc.meta.uploads.put_part, upload.id, part)
    headers = [_XML, ("x-amz-copy-source-version-id", info.commit_id)]
    headers.extend((f"x-amz-checksum-{a}", v) for a, v in checksums.items())
    return Response(200, headers, s3xml.copy_part_result(etag, now))
