"""Multipart upload operations: Create, UploadPart, Complete, Abort, ListParts, ListMultipartUploads.

Theory of operation
-------------------
* CreateMultipartUpload stages an upload in the metadata database
  (``pfs.uploads``): target key, the headers to store with the object and
  the checksum algorithm/type the client announced.  Nothing appears on the
  branch.
* UploadPart streams the body straight into the chunk store exactly like
  PutObject (``objects.receive_object``: ingest pipeline, Content-MD5,
  ``x-amz-checksum-*`` header or trailer, signed payload hash), then records
  the part (size, MD5 ETag, manifest, checksums) in one small transaction.
  Parts arrive in parallel and out of order; the same number again replaces
  the earlier part.  The upload's checksum algorithm is always computed for
  each part, verified when the client sent it, and stored.
* CompleteMultipartUpload plans the object from the part list (pure:
  ``s3.wire.parts.plan_completion``): manifests concatenated, no chunk read or
  written, so completing 100 GiB costs what 1 MiB does, plus ~44 bytes of
  manifest per chunk.  The commit and the removal of the upload's rows are
  one transaction (``commit(also=...)``): the object appears whole or not at
  all, and a concurrent second Complete or Abort of the same upload finds
  nothing (``NoSuchUpload``).
* Complete honours the conditional-write headers as PutObject does
  (``s3.wire.conditions.write_condition``): ``If-None-Match: *`` -> 412 when the
  key exists, ``If-Match: <etag>`` -> 412 when the current ETag differs, 404
  ``NoSuchKey`` when there is no object.  The condition is decided inside the
  commit's transaction, so no writer can slip in between check and commit;
  a failed condition rolls back the removal of the upload's rows too, so the
  upload stays: the client may Complete again (without the condition, or
  after the key changed) or Abort.  AWS documents 412 for the failure and
  asks for a new upload only after a 409 ConditionalRequestConflict (which
  s3gw never answers: its check is atomic with the commit).
* Abort deletes the rows; the parts' chunks are then garbage for GC.
  Abandoned uploads expire (``App.expire_uploads``).
"""

from __future__ import annotations

import functools
import hashlib
import urllib.parse

from ...http import Request, Response
from ...pfs.model import ObjectInfo, Put
from ...pfs.uploads import NoSuchUpload, PartChanged, PartInfo, UploadInfo
from ...store.manifest import Manifest
from ..context import OWNER, Context
from ..payload import read_small_body
from ..resolve import get_upload_for
from ..wire import conditions
from ..wire import xml_out as s3xml
from ..wire.errors import S3Error
from ..wire.names import BucketRef, validate_key
from ..wire.object_headers import content_md5, stored_headers
from ..wire.parts import (
    CHECKSUM_ALGORITHMS,
    MAX_PART_SIZE,
    checksum_type_for,
    parse_part_number,
    plan_completion,
)
from ..wire.xml_in import MAX_XML_BODY, parse_complete_multipart
from .put import receive_object

_XML = ("content-type", "application/xml")


def _algorithm(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    algo = value.strip().lower()
    if algo not in CHECKSUM_ALGORITHMS:
        raise S3Error("InvalidRequest", "Checksum algorithm provided is unsupported. Please try "
                                        "again with any of the valid types: [CRC32, CRC32C, "
                                        "CRC64NVME, SHA1, SHA256]")
    return algo


def _checksum_headers(upload: UploadInfo) -> list[tuple[str, str]]:
    if upload.checksum_algorithm is None:
        return []
    return [("x-amz-checksum-algorithm", upload.checksum_algorithm.upper()),
            ("x-amz-checksum-type", upload.checksum_type or "COMPOSITE")]


def _int_param(query, name: str, default: int, maximum: int | None = None) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    if not text.isascii() or not text.isdigit():
        raise S3Error("InvalidArgument", f"Provided {name} not an integer or within integer "
                                         "range", argument_name=name, argument_value=text)
    value = int(text)
    return min(value, maximum) if maximum is not None else value


# -- CreateMultipartUpload --------------------------------------------------------------
async def create_multipart_upload(svc: Context, req: Request, r) -> Response:
    ref = svc.writable(r.bucket)
    key = validate_key(r.key)
    headers = dict(stored_headers(req.headers))
    algo = _algorithm(req.headers.get("x-amz-checksum-algorithm"))
    ctype = checksum_type_for(algo, req.headers.get("x-amz-checksum-type"))
    await svc.run(svc.meta.get_branch, ref.repo, ref.branch)  # NoSuchBucket
    upload = await svc.run(functools.partial(
        svc.meta.uploads.create, ref.repo, ref.branch, key, headers, svc.clock(),
        checksum_algorithm=algo, checksum_type=ctype))
    doc = s3xml.initiate_multipart_upload_result(r.bucket, key, upload.id)
    return Response(200, [_XML, *_checksum_headers(upload)], doc)


# -- UploadPart -------------------------------------------------------------------------
async def upload_part(svc: Context, req: Request, r) -> Response:
    ref = svc.writable(r.bucket)
    key = validate_key(r.key)
    number = parse_part_number(r.query.get("partNumber"))
    length = req.body.length
    if length is not None and req.headers.get("x-amz-decoded-content-length") is None \
            and length > MAX_PART_SIZE:
        raise S3Error("EntityTooLarge", proposed_size=length, max_size_allowed=MAX_PART_SIZE)
    upload = await svc.run(get_upload_for, svc, ref, key, r.query.get("uploadId"))
    compute = (upload.checksum_algorithm,) if upload.checksum_algorithm else ()
    result, checksums = await receive_object(svc, req, compute)
    if result.size > MAX_PART_SIZE:
        raise S3Error("EntityTooLarge", proposed_size=result.size,
                      max_size_allowed=MAX_PART_SIZE)
    part = PartInfo(number, result.size, result.digests["md5"].hex(), result.manifest.pack(),
                    checksums, svc.clock())
    await svc.run(svc.meta.uploads.put_part, upload.id, part)
    out = [("etag", f'"{part.etag}"')]
    out.extend((f"x-amz-checksum-{a}", v) for a, v in checksums.items())
    return Response(200, out, b"")


# -- CompleteMultipartUpload ------------------------------------------------------------
async def complete_multipart_upload(svc: Context, req: Request, r) -> Response:
    ref = svc.writable(r.bucket)
    key = validate_key(r.key)
    condition = conditions.write_condition(req.headers)   # If-None-Match: * / If-Match
    body = await read_small_body(req, limit=MAX_XML_BODY)
    md5 = content_md5(req.headers.get("content-md5"))
    if md5 is not None and hashlib.md5(body).digest() != md5:
        raise S3Error("BadDigest")
    upload_id = r.query.get("uploadId")
    try:
        upload = await svc.run(get_upload_for, svc, ref, key, upload_id)
    except NoSuchUpload:
        return await _completed_again(svc, req, r, ref, key, upload_id)
    requested = parse_complete_multipart(body)
    upload, stored = await svc.run(svc.meta.uploads.get_with_parts, upload.id)
    plan = plan_completion(requested, stored, checksum_algorithm=upload.checksum_algorithm,
                           checksum_type=upload.checksum_type)
    _check_whole_object_headers(req, plan)
    obj = ObjectInfo(size=plan.size, etag=plan.etag, manifest=Manifest.concat_packed(plan.part_manifests),
                     headers=upload.headers, checksums=plan.checksums, parts=plan.parts)
    try:
        commit = await svc.run(functools.partial(
            svc.meta.commit, ref.repo, ref.branch, [Put(key, obj)],
            f"PUT /{key} (multipart, {len(plan.parts)} parts)", svc.clock(), condition,
            also=svc.meta.uploads.remove_in(upload.id, plan.expected)))
    except PartChanged as exc:
        raise S3Error("InvalidPart", part_number=exc.number) from None
    except NoSuchUpload:       # a concurrent Complete of the same upload won
        return await _completed_again(svc, req, r, ref, key, upload_id)
    result = {"etag": plan.etag, "checksums": plan.checksums,
              "checksum_type": (upload.checksum_type or "COMPOSITE")
              if upload.checksum_algorithm else None,
              "version_id": svc.write_version_id(ref, commit.id)}
    await svc.run(svc.meta.uploads.record_completion, upload.id, ref.repo, ref.branch, key,
                  result, svc.clock())
    return _completed(req, r, key, result)


def _completed(req: Request, r, key: str, result: dict) -> Response:
    """CompleteMultipartUpload's answer from its ``result`` (the first or a retry)."""
    host = req.headers.get("host") or "localhost"
    location = f"http://{host}/{r.bucket}/{urllib.parse.quote(key, safe='/~')}"
    doc = s3xml.complete_multipart_upload_result(location, r.bucket, key, result["etag"],
                                                 result["checksums"], result["checksum_type"])
    headers = [_XML, ("x-amz-version-id", result["version_id"])]
    if result["checksum_type"]:
        headers.append(("x-amz-checksum-type", result["checksum_type"]))
    return Response(200, headers, doc)


async def _completed_again(svc: Context, req: Request, r, ref, key: str,
                           upload_id: str | None) -> Response:
    """A Complete of an upload that already completed (a client retrying after a
    timeout) answers 200 with the same result, as AWS does; else NoSuchUpload."""
    result = None
    if upload_id:
        result = await svc.run(svc.meta.uploads.completion, upload_id, ref.repo, ref.branch,
                               key)
    if result is None:
        raise NoSuchUpload(upload_id or "")
    return _completed(req, r, key, result)


def _check_whole_object_headers(req: Request, plan) -> None:
    """Complete may carry the whole object's checksum and size (minio-go, newer SDKs)."""
    for algo in CHECKSUM_ALGORITHMS:
        given = req.headers.get(f"x-amz-checksum-{algo}")
        if given is None:
            continue
        have = plan.checksums.get(algo)
        if have is not None and given.strip() != have and \
                given.strip().split("-")[0] != have.split("-")[0]:
            raise S3Error("BadDigest", f"The {algo.upper()} you specified for the object did "
                                       "not match the calculated checksum.")
    size = req.headers.get("x-amz-mp-object-size")
    if size is not None and size.strip() != str(plan.size):
        raise S3Error("InvalidRequest", "The provided x-amz-mp-object-size does not match the "
                                        "size of the parts.")


# -- AbortMultipartUpload ---------------------------------------------------------------
async def abort_multipart_upload(svc: Context, req: Request, r) -> Response:
    ref = svc.writable(r.bucket)
    key = validate_key(r.key)
    upload = await svc.run(get_upload_for, svc, ref, key, r.query.get("uploadId"))
    await svc.run(svc.meta.uploads.abort, upload.id)
    return Response(204, [], b"")


# -- ListParts --------------------------------------------------------------------------
async def list_parts(svc: Context, req: Request, r) -> Response:
    ref = svc.bucket(r.bucket)
    key = validate_key(r.key)
    upload = await svc.run(get_upload_for, svc, ref, key, r.query.get("uploadId"))
    max_parts = _int_param(r.query, "max-parts", 1000, 1000)
    marker = _int_param(r.query, "part-number-marker", 0)
    parts = await svc.run(svc.meta.uploads.list_parts, upload.id, marker, max_parts + 1)
    truncated = len(parts) > max_parts
    parts = parts[:max_parts]
    entries = [s3xml.PartEntry(p.number, p.time_ns, p.etag, p.size, p.checksums) for p in parts]
    doc = s3xml.list_parts_result(
        r.bucket, key, upload.id, entries, part_number_marker=marker,
        next_part_number_marker=parts[-1].number if parts else 0, max_parts=max_parts,
        is_truncated=truncated, owner=OWNER, checksum_algorithm=upload.checksum_algorithm,
        checksum_type=(upload.checksum_type or "COMPOSITE") if upload.checksum_algorithm
        else None)
    return Response(200, [_XML, *_checksum_headers(upload)], doc)


# -- ListMultipartUploads ---------------------------------------------------------------
_AFTER_ALL = 1 << 62


async def list_multipart_uploads(svc: Context, req: Request, r) -> Response:
    ref = svc.bucket(r.bucket)
    q = r.query
    encoding = s3xml.check_encoding_type(q.get("encoding-type"))
    prefix = q.get("prefix", "")
    delimiter = q.get("delimiter") or None
    key_marker = q.get("key-marker", "")
    id_marker = q.get("upload-id-marker", "") if key_marker else ""
    max_uploads = _int_param(q, "max-uploads", 1000, 1000)
    await svc.run(svc.meta.get_branch, ref.repo, ref.branch)
    uploads, prefixes, truncated, next_key, next_id = await svc.run(
        _list_uploads, svc, ref, prefix, delimiter, key_marker, id_marker, max_uploads)
    entries = [s3xml.UploadEntry(u.key, u.id, u.initiated_ns) for u in uploads]
    doc = s3xml.list_multipart_uploads_result(
        r.bucket, entries, prefixes, key_marker=key_marker, upload_id_marker=id_marker,
        next_key_marker=next_key, next_upload_id_marker=next_id, prefix=prefix,
        delimiter=delimiter, max_uploads=max_uploads, is_truncated=truncated,
        encoding_type=encoding, owner=OWNER)
    return Response(200, [_XML], doc)


def _list_uploads(svc: Context, ref: BucketRef, prefix: str, delimiter: str | None,
                  key_marker: str, id_marker: str, max_uploads: int):
    """Blocking: walk the branch's uploads in (key, initiated, id) order, rolling
    keys up to common prefixes at the delimiter; each upload or prefix counts."""
    from ...pfs.keys import prefix_upper_bound
    staging = svc.meta.uploads
    after = None
    if key_marker:
        after = (key_marker, _AFTER_ALL, "")
        if id_marker:
            try:
                marked = staging.get(id_marker)
            except NoSuchUpload:
                marked = None
            if marked is not None and marked.key == key_marker:
                after = (key_marker, marked.initiated_ns, marked.id)
        elif delimiter and key_marker.startswith(prefix) and key_marker.endswith(delimiter):
            upper = prefix_upper_bound(key_marker)
            after = (upper, -1, "") if upper is not None else None
            if upper is None:
                return [], [], False, "", ""
    uploads: list[UploadInfo] = []
    prefixes: list[str] = []
    last_key, last_id = "", ""
    count = 0
    while count < max_uploads:
        batch = staging.list_uploads(ref.repo, ref.branch, prefix, after, limit=max_uploads + 1)
        if not batch:
            return uploads, prefixes, False, last_key, last_id
        for u in batch:
            if count >= max_uploads:
                break
            if delimiter:
                rest = u.key[len(prefix):]
                i = rest.find(delimiter)
                if i >= 0:
                    cp = prefix + rest[:i + len(delimiter)]
                    prefixes.append(cp)
                    count += 1
                    last_key, last_id = cp, ""
                    upper = prefix_upper_bound(cp)
                    if upper is None:
                        return uploads, prefixes, False, last_key, last_id
                    after = (upper, -1, "")
                    break
            uploads.append(u)
            count += 1
            last_key, last_id = u.key, u.id
            after = (u.key, u.initiated_ns, u.id)
    more = bool(staging.list_uploads(ref.repo, ref.branch, prefix, after, limit=1))
    if not more:
        return uploads, prefixes, False, last_key, last_id
    return uploads, prefixes, True, last_key, last_id
