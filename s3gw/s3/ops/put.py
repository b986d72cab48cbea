"""PutObject: stream the body through the ingest pipeline, check every digest, commit.

Chunks land in the store as they are cut; every digest the client gave
(Content-MD5, ``x-amz-checksum-*`` header or trailer, a hex
``x-amz-content-sha256``) is checked before the commit: a failed write leaves
nothing visible.  A small body (declared length up to ``SMALL_BODY``) goes
through the batching writer (``ingest.smallputs``).  ``receive_object`` is
shared with UploadPart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time

from ...http import Request, Response
from ...ingest.pipeline import SMALL_BODY, ingest, ingest_small, inline_object, read_small
from ...pfs.model import MetadataBusy, NoSuchFile, ObjectInfo, Put
from ..context import Context
from ..payload import BodyReader
from ..resolve import stat_or_none
from ..wire import conditions
from ..wire.errors import S3Error
from ..wire.names import validate_key
from ..wire.object_headers import content_md5, stored_headers
from ..wire.parts import CHECKSUM_ALGORITHMS, CHECKSUM_SIZES

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# headers that ask for a digest check or a stored checksum (else: _SmallPut.prepare's
# short way)
_DIGEST_HEADERS = frozenset(("content-md5", "x-amz-sdk-checksum-algorithm",
                             *(f"x-amz-checksum-{a}" for a in CHECKSUM_ALGORITHMS)))


# -- PutObject --------------------------------------------------------------------------
async def put_object(svc: Context, req: Request, r) -> Response:
    ref = svc.writable(r.bucket)
    key = validate_key(r.key)
    condition = conditions.write_condition(req.headers)
    headers = dict(stored_headers(req.headers))
    try:
        reader = BodyReader(req)
    except S3Error:  # answered below, after the bucket check, as before
        reader = None
    size = reader.shape.decoded_length if reader is not None else None
    if size is not None and size <= SMALL_BODY:
        if "100-continue" in (req.headers.get("expect") or "").lower():
            # the client waits to hear a refusal before it sends the body: check
            # first (on the event loop when it can, else one worker call), then one
            # hop for everything else
            if condition is not None or not _branch_found_inline(svc, ref, key):
                await svc.run(_check_target, svc, ref, key, condition)
        return await _put_small(svc, req, reader, ref, key, condition, headers)
    await svc.run(_check_target, svc, ref, key, condition)  # NoSuchBucket before the body
    result, checksums = await receive_object(svc, req, reader=reader)
    obj = ObjectInfo(size=result.size, etag=result.digests["md5"].hex(),
                     manifest=result.manifest.pack(), headers=headers, checksums=checksums)
    commit = await svc.run(svc.meta.commit, ref.repo, ref.branch, [Put(key, obj)],
                           f"PUT /{key}", svc.clock(), condition)
    return _put_response(obj, svc.write_version_id(ref, commit.id), checksums)


def _check_target(svc: Context, ref, key: str, condition, seen: set | None = None) -> None:
    """Blocking: NoSuchBucket, and a write condition that already fails, before the
    body is read (the condition is decided again inside the commit).  ``seen``:
    branches already found in this small-PUT batch (the commit checks again)."""
    if seen is None or (ref.repo, ref.branch) not in seen:
        svc.meta.get_branch(ref.repo, ref.branch)
        if seen is not None:
            seen.add((ref.repo, ref.branch))
    if condition is not None:
        condition(key, stat_or_none(svc, ref, key))


def _branch_found_inline(svc: Context, ref, key: str) -> bool:
    """``_check_target`` without a condition, on the event loop as a small GET looks up
    its file (``stat_nowait``: one indexed read, no waiting; paused while such reads
    are slow): True when the branch exists; raises NoSuchBranch when it does not;
    False when it could not tell without waiting (a worker call checks).  Saves the
    thread hop of every small PUT with ``Expect: 100-continue`` (boto3, the aws cli)."""
    if not svc.inline_reads_now():
        return False
    t0 = time.perf_counter()
    try:
        svc.meta.stat_nowait(ref.repo, ref.branch, key)
    except NoSuchFile:
        pass
    except MetadataBusy:
        return False
    finally:
        svc.inline_read_took(time.perf_counter() - t0)
    return True


def _put_response(obj: ObjectInfo, version_id: str, checksums: dict[str, str]) -> Response:
    out = [("etag", f'"{obj.etag}"'), ("x-amz-version-id", version_id)]
    out.extend((f"x-amz-checksum-{a}", v) for a, v in checksums.items())
    return Response(200, out, b"")


async def _put_small(svc: Context, req: Request, reader: BodyReader, ref, key: str,
                     condition, headers: dict) -> Response:
    """A small PutObject (declared length <= SMALL_BODY): the body is read first
    (without ``Expect``, it is already in the socket buffer), then the small-PUT
    writer thread checks the bucket and the condition, hashes and stages the
    chunk, verifies the digests, makes the chunk durable and commits, batched
    with the other small PUTs queued meanwhile (``ingest.smallputs``).  Same checks
    in the same order, the same answers and the same crash order as the
    streamed path; only a missing bucket is found after the body arrived
    instead of before.  A body kept in its commit (up to ``inline_object_max``
    bytes, no write condition) has nothing to make durable first: it goes to the
    committer directly (``SmallPutWriter.commit``), which hashes and checks it
    (``_SmallPut.prepare``) and finds a missing bucket; one that fails a check has
    its bucket checked first, so NoSuchBucket still wins."""
    body = await read_small(reader.read)
    job = _SmallPut(svc, req, reader, ref, key, condition, headers, body)
    if condition is None and 0 < len(body) <= svc.inline_object_max:
        # kept in its commit: straight to the committer, which hashes and checks it
        # (``prepare``) and finds a missing bucket (NoSuchBranch)
        obj, commit, checksums = await svc.small_puts.commit(job)
    else:
        obj, commit, checksums = await svc.small_puts.run(job)
    return _put_response(obj, svc.write_version_id(ref, commit.id), checksums)


class _SmallPut:
    """One small PutObject's blocking steps, for the small-PUT writer thread."""

    def __init__(self, svc: Context, req: Request, reader: BodyReader, ref, key: str,
                 condition, headers: dict, body: bytes):
        self.svc, self.req, self.reader, self.ref, self.key = svc, req, reader, ref, key
        self.condition, self.headers, self.body = condition, headers, body
        self.result = self.checksums = self.obj = None

    def stage(self, seen: set):
        _check_target(self.svc, self.ref, self.key, self.condition, seen)
        return self.check()

    def check(self):
        """Hash and stage the body, verify every digest; the batch to make durable."""
        svc, req, reader = self.svc, self.req, self.reader
        md5_expected = content_md5(req.headers.get("content-md5"))
        wanted = checksum_algorithms(req, reader)
        algorithms = ["md5", *wanted]
        sha_hex = reader.payload_sha256
        if sha_hex is not None and "sha256" not in algorithms:
            algorithms.append("sha256")
        result = ingest_small(self.body, svc.store, algorithms=algorithms,
                              inline_max=svc.inline_object_max)
        try:
            self.checksums = _verify(req, reader, result, md5_expected, sha_hex, wanted)
        except BaseException:
            result.batch.discard()
            raise
        self.result = result
        return result.batch

    def prepare(self) -> None:
        """For an object kept in its commit, on the committer thread: hash and check
        it (``check``); one that fails a check has its bucket checked first, so
        NoSuchBucket still wins.  A plain body with no digest to check and no
        checksum to store (the usual small PUT) goes the short way: its MD5 and
        manifest only (``inline_object``), the same values."""
        reader = self.reader
        try:
            if (reader.decoder is None and reader.payload_sha256 is None
                    and not reader.trailer_names
                    and not self.req.headers.has_any(_DIGEST_HEADERS)):
                reader.finish()
                md5, manifest = inline_object(self.body)
                self.checksums = {}
                self.obj = ObjectInfo(size=len(self.body), etag=md5.hex(), manifest=manifest,
                                      headers=self.headers, checksums=self.checksums)
                return
            self.check()
        except S3Error:
            _check_target(self.svc, self.ref, self.key, None)
            raise
        self.synced()

    def synced(self) -> None:
        result = self.result
        self.obj = ObjectInfo(size=result.size, etag=result.digests["md5"].hex(),
                              manifest=result.manifest.pack(), headers=self.headers,
                              checksums=self.checksums)

    def discard(self) -> None:
        self.result.batch.discard()

    def commit_args(self) -> tuple:
        return (self.ref.repo, self.ref.branch, [Put(self.key, self.obj)], f"PUT /{self.key}",
                self.svc.clock(), self.condition)

    def answer(self, commit):
        return self.obj, commit, self.checksums


async def receive_object(svc: Context, req: Request, compute: tuple[str, ...] = (),
                         reader: BodyReader | None = None):
    """Stream the request body into the chunk store and verify every digest the client sent.

    ``compute``: checksum algorithms to compute (and return) even when the
    client sent none (a multipart upload's announced algorithm).
    Returns (IngestResult, checksums to store {algorithm: base64}).
    Raises S3Error (BadDigest, XAmzContentSHA256Mismatch, IncompleteBody, ...).
    """
    md5_expected = content_md5(req.headers.get("content-md5"))
    if reader is None:
        reader = BodyReader(req)
    wanted = checksum_algorithms(req, reader)
    wanted += [a for a in compute if a not in wanted]
    algorithms = ["md5", *wanted]
    sha_hex = reader.payload_sha256
    if sha_hex is not None and "sha256" not in algorithms:
        algorithms.append("sha256")
    result = await ingest(reader.read, svc.store, algorithms=algorithms, limiter=svc.limiter,
                          size_hint=reader.shape.decoded_length, read_into=_reader_into(req, reader))
    try:
        checksums = _verify(req, reader, result, md5_expected, sha_hex, wanted, compute)
        await result.keep(svc.limiter)
    except BaseException:
        await result.discard()
        raise
    return result, checksums


def _reader_into(req: Request, reader: BodyReader):
    """``read_into`` for a plain (not aws-chunked) body: the socket reads land in
    the ingest pipeline's blocks directly (``http.Body.receive_into``), no copy.
    ``reader.received`` is kept up to date, so ``reader.finish()`` checks the
    length as for ``reader.read``.  None for aws-chunked bodies (decoded by the
    reader)."""
    if reader.decoder is not None:
        return None
    receive_into = getattr(req.body, "receive_into", None)
    if receive_into is None:
        return None

    async def read_into(view) -> int:
        n = await receive_into(view)
        reader.received += n
        return n

    return read_into


def _verify(req, reader, result, md5_expected, sha_hex, wanted,
            computed_anyway=()) -> dict[str, str]:
    reader.finish()
    digests = result.digests
    if md5_expected is not None and md5_expected != digests["md5"]:
        raise S3Error("BadDigest")
    if sha_hex is not None and digests["sha256"].hex() != sha_hex:
        raise S3Error("XAmzContentSHA256Mismatch",
                      "The provided 'x-amz-content-sha256' header does not match what was computed.")
    checksums = {}
    for algo in wanted:
        given = req.headers.get(f"x-amz-checksum-{algo}") or reader.trailers.get(
            f"x-amz-checksum-{algo}")
        actual = base64.b64encode(digests[algo]).decode()
        if given is None:
            if algo in computed_anyway:
                checksums[algo] = actual
            continue
        if given != actual:
            raise S3Error("BadDigest", f"The {algo.upper()} you specified did not match the "
                                       "calculated checksum.")
        checksums[algo] = actual
    return checksums


def checksum_algorithms(req: Request, reader: BodyReader) -> list[str]:
    """The x-amz-checksum-* algorithms this request carries (header or announced trailer)."""
    out = []
    for algo in CHECKSUM_ALGORITHMS:
        value = req.headers.get(f"x-amz-checksum-{algo}")
        if value is not None:
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != CHECKSUM_SIZES[algo]:
                raise S3Error("InvalidRequest",
                              f"Value for x-amz-checksum-{algo} header is invalid.")
            out.append(algo)
    for name in reader.trailer_names:
        if name.startswith("x-amz-checksum-"):
            algo = name[len("x-amz-checksum-"):]
            if algo not in CHECKSUM_ALGORITHMS:
                raise S3Error("InvalidRequest", f"Unsupported trailing checksum {name}.")
            if algo not in out:
                out.append(algo)
    sdk = req.headers.get("x-amz-sdk-checksum-algorithm")
    if sdk and sdk.lower() not in CHECKSUM_ALGORITHMS:
        raise S3Error("InvalidRequest", "Invalid value for x-amz-sdk-checksum-algorithm.")
    return out
