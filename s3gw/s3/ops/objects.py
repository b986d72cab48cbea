"""Object operations: PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects, ACLs.

PutObject streams the body through the ingest pipeline (chunks land in the
store as they are cut), checks every digest the client gave (Content-MD5,
``x-amz-checksum-*`` header or trailer, a hex ``x-amz-content-sha256``) and
only then commits: a failed write leaves nothing visible.

GetObject plans the byte range over the manifest (pure) and streams the
chunk slices (verified reads in a worker thread, one chunk read ahead of the
socket so disk and network overlap).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import trio

from ...http import Request, Response
from ...ingest.pipeline import SMALL_BODY, ingest, ingest_small, read_small
from ...pfs.model import (ConditionFailed, Delete, FileInfo, MetadataBusy, NoSuchFile,
                          ObjectInfo, Put)
from ...store.ids import Manifest
from .. import xml as s3xml
from ..xmlparse import parse_delete
from ..dates import http_date
from ..errors import S3Error
from ..metadata import content_md5, stored_headers
from .. import conditions
from ..names import validate_key
from ..parts import parse_part_number, part_range
from ..ranges import content_range, parse_range
from .body import BodyReader, read_small_body
from .piecepool import PiecePool
from .service import OUTPUTS_RECHECK, OWNER, S3Service, operation
from .versions import resolve_version_file

__all__ = ["stream_object", "check_preconditions", "object_headers"]

CHECKSUM_ALGORITHMS = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")
CHECKSUM_SIZES = {"crc32": 4, "crc32c": 4, "crc64nvme": 8, "sha1": 20, "sha256": 32}
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_READ_AHEAD = ThreadPoolExecutor(max_workers=8, thread_name_prefix="s3gw-read")


# -- PutObject --------------------------------------------------------------------------
@operation("PutObject")
async def put_object(svc: S3Service, req: Request, r) -> Response:
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
            # the client waits to hear a refusal before it sends the body: one
            # hop to check first, then one for everything else (not four)
            await svc.run(_check_target, svc, ref, key, condition)
        return await _put_small(svc, req, reader, ref, key, condition, headers)
    await svc.run(_check_target, svc, ref, key, condition)  # NoSuchBucket before the body
    result, checksums = await receive_object(svc, req, reader=reader)
    obj = ObjectInfo(size=result.size, etag=result.digests["md5"].hex(),
                     manifest=result.manifest.pack(), headers=headers, checksums=checksums)
    commit = await svc.run(svc.meta.commit, ref.repo, ref.branch, [Put(key, obj)],
                           f"PUT /{key}", svc.clock(), condition)
    return _put_response(obj, commit, checksums)


def _check_target(svc: S3Service, ref, key: str, condition, seen: set | None = None) -> None:
    """Blocking: NoSuchBucket, and a write condition that already fails, before the
    body is read (the condition is decided again inside the commit).  ``seen``:
    branches already found in this small-PUT batch (the commit checks again)."""
    if seen is None or (ref.repo, ref.branch) not in seen:
        svc.meta.get_branch(ref.repo, ref.branch)
        if seen is not None:
            seen.add((ref.repo, ref.branch))
    if condition is not None:
        condition(key, _stat_or_none(svc, ref, key))


def _put_response(obj: ObjectInfo, commit, checksums: dict[str, str]) -> Response:
    out = [("etag", f'"{obj.etag}"'), ("x-amz-version-id", commit.id)]
    out.extend((f"x-amz-checksum-{a}", v) for a, v in checksums.items())
    return Response(200, out, b"")


async def _put_small(svc: S3Service, req: Request, reader: BodyReader, ref, key: str,
                     condition, headers: dict) -> Response:
    """A small PutObject (declared length <= SMALL_BODY): the body is read first
    (without ``Expect``, it is already in the socket buffer), then the small-PUT
    writer thread checks the bucket and the condition, hashes and stages the
    chunk, verifies the digests, makes the chunk durable and commits, batched
    with the other small PUTs queued meanwhile (``ops.smallputs``).  Same checks
    in the same order, the same answers and the same crash order as the
    streamed path; only a missing bucket is found after the body arrived
    instead of before.  A body kept in its commit (up to ``inline_object_max``
    bytes, no write condition) has nothing to make durable first: it is hashed
    and checked here and goes to the committer directly (``SmallPutWriter.commit``),
    which finds a missing bucket; one that fails a check has its bucket checked
    first, so NoSuchBucket still wins."""
    body = await read_small(reader.read)
    job = _SmallPut(svc, req, reader, ref, key, condition, headers, body)
    if condition is None and 0 < len(body) <= svc.inline_object_max:
        # kept in its commit: hashed and checked here (microseconds), then straight
        # to the committer, which finds a missing bucket (NoSuchBranch)
        try:
            job.check()
        except S3Error:
            await svc.run(_check_target, svc, ref, key, None)   # NoSuchBucket comes first
            raise
        job.synced()
        obj, commit, checksums = await svc.small_puts.commit(job)
    else:
        obj, commit, checksums = await svc.small_puts.run(job)
    return _put_response(obj, commit, checksums)


class _SmallPut:
    """One small PutObject's blocking steps, for the small-PUT writer thread."""

    def __init__(self, svc: S3Service, req: Request, reader: BodyReader, ref, key: str,
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


async def receive_object(svc: S3Service, req: Request, compute: tuple[str, ...] = (),
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


# -- GetObject / HeadObject -------------------------------------------------------------
@operation("GetObject")
async def get_object(svc: S3Service, req: Request, r) -> Response:
    return await read_object(svc, req, r, head=False)


@operation("HeadObject")
async def head_object(svc: S3Service, req: Request, r) -> Response:
    return await read_object(svc, req, r, head=True)


async def read_object(svc: S3Service, req: Request, r, *, head: bool) -> Response:
    ref = svc.bucket(r.bucket)
    key = validate_key(r.key)
    # A plain GET of a small object at a branch head is looked up and read on the event
    # loop when nothing has to wait for the disk (_resolve_and_read_cached), otherwise
    # in one worker call (_resolve_and_read_small); a conditional or ranged one reads
    # only what it needs.
    want_data = not head and "partNumber" not in r.query and not any(
        h in req.headers for h in _CONDITIONAL_READ_HEADERS)
    found = None
    if "versionId" not in r.query and ref.commit is None and svc.inline_reads_now():
        try:
            found = _resolve_and_read_cached(svc, ref, key, want_data)
        except MetadataBusy:  # a locked database: a worker thread waits for it
            pass
    info, data = found or await svc.run(_resolve_and_read_small, svc, ref, key,
                                        r.query.get("versionId"), want_data)
    obj = info.object
    preconditions = check_preconditions(req.headers, obj.etag, info.time_ns)
    if preconditions is not None:
        status, headers = preconditions, [("etag", f'"{obj.etag}"'),
                                          ("last-modified", http_date(info.time_ns)),
                                          ("x-amz-version-id", info.commit_id)]
        if status == 304:
            return Response(304, headers, None, content_length=0)
        raise S3Error("PreconditionFailed", condition=_failed_condition(req.headers))
    size = obj.size
    rng = None
    if "range" in req.headers and conditions.if_range_holds(req.headers, obj.etag, info.time_ns):
        rng = parse_range(req.headers.get("range"), size)
    headers = object_headers(info, r.query)
    if svc.output_repos is not None and ref.repo in svc.output_repos(OUTPUTS_RECHECK):
        headers.extend(provenance_headers(await svc.run(svc.meta.provenance_of,
                                                        info.commit_id)))
    if "partNumber" in r.query:
        # One part of a multipart object: a 206 of that part's bytes, no checksum.
        # A single-part object has one part, the whole object (200).
        if rng is not None:
            raise S3Error("InvalidRequest", "Cannot specify both Range header and partNumber "
                                            "query parameter.")
        first, stop = part_range(obj.parts, size, parse_part_number(r.query["partNumber"]))
        if obj.parts and stop > first:
            rng = (first, stop - 1)
        elif obj.parts:
            start, end, status = first, stop, 206
            headers.append(("content-range", f"bytes */{size}"))
            if head:
                return Response(status, headers, None, content_length=0)
            return Response(status, headers, b"")
        else:
            start, end, status = 0, size, 200
            if head:
                return Response(status, headers, None, content_length=size)
            body = stream_object(svc, Manifest.unpack(obj.manifest), 0, size)
            return Response(status, headers, body, content_length=size)
    if rng is None:
        start, end, status = 0, size, 200
        if req.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
            headers.extend((f"x-amz-checksum-{a}", v) for a, v in obj.checksums.items())
    else:
        start, end, status = rng[0], rng[1] + 1, 206
        headers.append(("content-range", content_range(rng[0], rng[1], size)))
    length = end - start
    if head:
        return Response(status, headers, None, content_length=length)
    if data is not None:
        return Response(status, headers, data[start:end], content_length=length)
    body = stream_object(svc, Manifest.unpack(obj.manifest), start, end)
    return Response(status, headers, body, content_length=length)


SMALL_GET = 256 * 1024
_CONDITIONAL_READ_HEADERS = ("range", "if-match", "if-none-match", "if-modified-since",
                             "if-unmodified-since")


def _resolve_and_read_small(svc: S3Service, ref, key: str, version: str | None,
                            want_data: bool) -> tuple[FileInfo, memoryview | None]:
    """Blocking: the file, and for a small object (up to ``SMALL_GET``) its whole
    content, read and verified (each chunk's XXH3) in the same worker call: one
    thread hop for a small GET instead of two, and the answer goes out in one send."""
    info = resolve_file(svc, ref, key, version)
    obj = info.object
    if not want_data or obj.size > SMALL_GET:
        return info, None
    manifest = Manifest.unpack(obj.manifest)
    if len(manifest.chunks) == 1:
        return info, memoryview(svc.store.read(manifest.chunks[0]))
    return info, memoryview(b"".join(svc.store.read(c) for c in manifest.chunks))


def _resolve_and_read_cached(svc: S3Service, ref, key: str,
                             want_data: bool) -> tuple[FileInfo, memoryview | None]:
    """On the event loop: the file at the branch head, and a small object's content
    when the page cache holds all of it (``read_cached``: never waits for the disk).

    A small GET's thread hop costs more than its work (two thread switches,
    the GIL handed over twice and a wakeup of the event loop: about a third of
    the server's CPU per 4 KiB GET).  The head lookup is one indexed SQLite
    read; if one takes long (a cold database), ``S3Service.inline_reads_now``
    sends lookups back to worker threads for a while.  Content the cache lacks
    (``data is None``) is streamed by ``stream_object``, read in its read-ahead
    thread.
    """
    t0 = time.perf_counter()
    info = svc.meta.stat_nowait(ref.repo, ref.branch, key)
    svc.inline_read_took(time.perf_counter() - t0)
    obj = info.object
    if not want_data or obj.size > SMALL_GET:
        return info, None
    chunks = Manifest.unpack(obj.manifest).chunks
    if len(chunks) == 1:
        return info, svc.store.read_cached(chunks[0])
    if not chunks:
        return info, memoryview(b"")
    return info, None


def resolve_file(svc: S3Service, ref, key: str, version: str | None = None) -> FileInfo:
    """Blocking: the file at the bucket's branch head (or pinned commit), or at
    ``version`` (a versionId: see ``ops.versions``)."""
    return resolve_version_file(svc, ref, key, version)


def _stat_or_none(svc: S3Service, ref, key: str) -> FileInfo | None:
    try:
        return svc.meta.stat(ref.repo, ref.branch, key)
    except NoSuchFile:
        return None


_OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-language": "content-language",
    "response-expires": "expires",
    "response-cache-control": "cache-control",
    "response-content-disposition": "content-disposition",
    "response-content-encoding": "content-encoding",
}


def object_headers(info: FileInfo, query: dict[str, str]) -> list[tuple[str, str]]:
    """Response headers of a GET/HEAD: ETag, Last-Modified, stored headers, overrides."""
    obj = info.object
    stored = dict(obj.headers)
    stored.setdefault("content-type", "binary/octet-stream")
    for param, header in _OVERRIDES.items():
        if param in query:
            stored[header] = query[param]
    headers = [("etag", f'"{obj.etag}"'), ("last-modified", http_date(info.time_ns)),
               ("accept-ranges", "bytes"), ("x-amz-version-id", info.commit_id)]
    headers.extend(stored.items())
    if obj.parts and "partNumber" in query:   # as S3: only for a request of one part
        headers.append(("x-amz-mp-parts-count", str(len(obj.parts))))
    return headers


def provenance_headers(provenance: dict | None) -> list[tuple[str, str]]:
    """Where an output file came from: the job, the pipeline spec version, and the input
    commits (``x-s3gw-provenance: <name>=<repo>@<branch>/<commit>, ...``)."""
    if not provenance:
        return []
    inputs = ", ".join(f"{i['name']}={i['repo']}@{i['branch']}/{i['commit']}"
                       for i in provenance.get("inputs", ()))
    return [("x-s3gw-job", str(provenance.get("job", ""))),
            ("x-s3gw-pipeline", f"{provenance.get('pipeline')}@v{provenance.get('spec_version')}"),
            ("x-s3gw-provenance", inputs)]


def check_preconditions(headers, etag: str, time_ns: int) -> int | None:
    """RFC 9110 section 13.2.2 order, as S3 applies it to GET/HEAD (``s3.conditions``).

    Returns None to proceed, 412 for PreconditionFailed or 304 for Not Modified.
    """
    return conditions.evaluate_read(headers, etag, time_ns)


def _failed_condition(headers) -> str:
    return conditions.failed_condition(headers)


async def stream_object(svc: S3Service, manifest: Manifest, start: int, end: int):
    """Yield the bytes [start, end) in pieces of up to ``_PIECE`` bytes, each chunk verified.

    Consecutive whole chunks are read into one buffer and go out as one piece
    (fewer, bigger sends: the per-piece work on the trio thread is most of
    what a GET costs it).  The next piece is read (and its chunks' checksums
    checked) by a read-ahead thread while the current one is sent.  Waiting
    for it costs no thread hop: when the read is already done (the usual
    case: a warm read takes a fraction of the time its send does) the piece
    is yielded at once, otherwise the read's completion wakes this task
    (``run_sync_soon``).  A corrupt chunk raises ChunkCorrupt: the response
    is cut short (the client sees a truncated body and retries), never
    completed with bad bytes.

    Memory: two buffers of the biggest piece (at most ``_PIECE`` or one
    chunk, + 1 byte), whatever the object's size.
    """
    groups = _group(manifest.plan(start, end))
    if not groups:
        return
    # _AHEAD + 1 buffers: the next pieces are read into the others while one is
    # being sent (the HTTP layer has finished sending a piece before it asks for
    # the next).
    size = max(sum(n for _, _, n in g) if len(g) > 1 else g[0][0].length for g in groups)
    nbuf = min(len(groups), _AHEAD + 1)
    read_group = partial(_read_group, svc.store.read_into)
    prefetch = svc.store.prefetch
    pending: deque = deque()
    buffers = _PIECES.take(nbuf, size + 1)

    def submit(j: int, buf) -> None:
        # The read of piece j also hints the kernel about piece j + _PREFETCH (the
        # first read about all of 1.._PREFETCH): each piece is hinted once, ahead.
        ahead: list = []
        if len(groups) > 2:
            ahead = groups[1:1 + _PREFETCH] if j == 0 else groups[j + _PREFETCH:j + _PREFETCH + 1]
        pending.append((_READ_AHEAD.submit(read_group, groups[j], buf, prefetch, ahead), buf))

    try:
        for i in range(min(len(groups), _AHEAD)):
            submit(i, buffers[i])
        for i in range(len(groups)):
            fut = pending[0][0]
            if not fut.done():
                await _wait_future(fut)
            pending.popleft()
            data = fut.result()
            j = i + _AHEAD
            if j < len(groups):
                submit(j, buffers[j % nbuf])
            yield data
    finally:
        # a read still running (the client went away) keeps its buffer out of the pool
        busy = [buf for fut, buf in pending if not fut.done()]
        _PIECES.give_back([b for b in buffers if not any(b is x for x in busy)])


_PIECE = 4 << 20
_AHEAD = 1   # pieces read ahead of the socket (2 measured no better)
# pieces after the one being read whose chunk files the kernel is asked to start
# reading (POSIX_FADV_WILLNEED): a GET of data no longer in the page cache then has
# several disk reads in flight instead of one at a time
_PREFETCH = 4
# a piece is at most _PIECE bytes or one chunk (max 4 MiB), + 1 spare byte for read_into
_PIECES = PiecePool(_PIECE + 1)


def _group(plan: list) -> list[list]:
    """Split a read plan into pieces: runs of whole chunks up to ``_PIECE`` bytes;
    a partial chunk (the ends of a range) is a piece of its own."""
    groups: list[list] = []
    run: list = []
    total = 0
    for item in plan:
        ref, off, n = item
        if off or n != ref.length:
            if run:
                groups.append(run)
                run, total = [], 0
            groups.append([item])
            continue
        if run and total + n > _PIECE:
            groups.append(run)
            run, total = [], 0
        run.append(item)
        total += n
    if run:
        groups.append(run)
    return groups


def _read_group(read_into, group: list, buf: bytearray, prefetch=None,
                ahead=()) -> memoryview:
    """Blocking: read (and verify) a piece's chunks into ``buf``; a view of the piece.
    First asks ``prefetch`` to start reading the chunks of the pieces ``ahead``."""
    if ahead:
        prefetch([ref for g in ahead for ref, _, _ in g])
    if len(group) == 1:
        ref, off, n = group[0]
        return read_into(ref, buf, off, n)
    view = memoryview(buf)
    pos = 0
    for ref, _, n in group:
        read_into(ref, view[pos:pos + n + 1])
        pos += n
    return view[:pos]


async def _wait_future(fut) -> None:
    """Wait for a concurrent.futures.Future without a worker thread."""
    token = trio.lowlevel.current_trio_token()
    event = trio.Event()

    def wake(_fut) -> None:  # in the executor's thread
        try:
            token.run_sync_soon(event.set)
        except trio.RunFinishedError:  # pragma: no cover - the server is gone
            pass

    fut.add_done_callback(wake)
    await event.wait()


# -- DeleteObject(s) --------------------------------------------------------------------
@operation("DeleteObject")
async def delete_object(svc: S3Service, req: Request, r) -> Response:
    ref = svc.writable(r.bucket)
    key = validate_key(r.key)
    if r.query.get("versionId") not in (None, "", "null"):
        raise S3Error("InvalidRequest", "History is immutable: a commit's version of an "
                                        "object cannot be deleted.")
    commit = await svc.run(svc.meta.commit, ref.repo, ref.branch, [Delete(key)],
                           f"DELETE /{key}", svc.clock(), _delete_condition(req.headers))
    headers = []
    if commit is not None:   # the key existed: its delete is a version, a delete marker
        headers += [("x-amz-version-id", commit.id), ("x-amz-delete-marker", "true")]
    return Response(204, headers, b"")


@operation("DeleteObjects")
async def delete_objects(svc: S3Service, req: Request, r) -> Response:
    ref = svc.writable(r.bucket)
    body = await read_small_body(req, limit=2 * 1024 * 1024)
    md5 = content_md5(req.headers.get("content-md5"))
    if md5 is not None and hashlib.md5(body).digest() != md5:
        raise S3Error("BadDigest")
    quiet, objects = parse_delete(body)
    errors, wanted, order = [], {}, []
    for key, version, etag in objects:
        try:
            validate_key(key)
            if version not in (None, "", "null"):
                raise S3Error("InvalidRequest", "History is immutable.")
        except S3Error as exc:
            errors.append(s3xml.DeleteError(key=key, code=exc.code, message=exc.message,
                                            version_id=version))
            continue
        wanted.setdefault(key, (version, etag))
        order.append((key, version))
    commit = None
    if wanted:
        await svc.run(svc.meta.get_branch, ref.repo, ref.branch)
        commit = await svc.run(_delete_many, svc, ref, wanted, errors)
    deleted = [s3xml.Deleted(key=key, version_id=version) for key, version in order
               if key in wanted]
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


def _delete_many(svc: S3Service, ref, wanted: dict, errors: list):
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
                conditions.WriteCondition(etag, False)(key, _stat_or_none(svc, ref, key))
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


# -- ACLs: canned, no effect ------------------------------------------------------------
@operation("GetObjectAcl")
async def get_object_acl(svc: S3Service, req: Request, r) -> Response:
    ref = svc.bucket(r.bucket)
    await svc.run(resolve_file, svc, ref, validate_key(r.key))
    return Response(200, [("content-type", "application/xml")], s3xml.access_control_policy(OWNER))


@operation("PutObjectAcl")
async def put_object_acl(svc: S3Service, req: Request, r) -> Response:
    ref = svc.bucket(r.bucket)
    await read_small_body(req, limit=64 * 1024)
    stored_headers(req.headers)  # validates a canned x-amz-acl
    await svc.run(resolve_file, svc, ref, validate_key(r.key))
    return Response(200, [], b"")
