"""GetObject and HeadObject: resolve the file, evaluate conditions, stream the range.

GetObject plans the byte range over the manifest (pure) and streams the
chunk slices (verified reads in a worker thread, one chunk read ahead of the
socket so disk and network overlap).
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import trio

from ...http import Request, Response
from ...pfs.model import FileInfo, MetadataBusy
from ...store.manifest import Manifest
from ...store.piecepool import PiecePool
from ..context import OUTPUTS_RECHECK, Context
from ..damage import checked_body
from ..resolve import resolve_file
from ..wire import conditions
from ..wire.dates import http_date
from ..wire.errors import S3Error
from ..wire.names import validate_key
from ..wire.parts import parse_part_number, part_range
from ..wire.ranges import content_range, parse_range

_READ_AHEAD = ThreadPoolExecutor(max_workers=8, thread_name_prefix="s3gw-read")


# -- GetObject / HeadObject -------------------------------------------------------------
async def get_object(svc: Context, req: Request, r) -> Response:
    return await read_object(svc, req, r, head=False)


async def head_object(svc: Context, req: Request, r) -> Response:
    return await read_object(svc, req, r, head=True)


async def read_object(svc: Context, req: Request, r, *, head: bool) -> Response:
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
            body = await checked_body.start(stream_object(svc, Manifest.unpack(obj.manifest), 0, size),
                                            svc.store, r, req.id)
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
    # the first piece is read (its chunks verified) before the headers: see s3/damage.py
    body = await checked_body.start(stream_object(svc, Manifest.unpack(obj.manifest), start, end),
                                    svc.store, r, req.id)
    return Response(status, headers, body, content_length=length)


SMALL_GET = 256 * 1024
_CONDITIONAL_READ_HEADERS = ("range", "if-match", "if-none-match", "if-modified-since",
                             "if-unmodified-since")


def _resolve_and_read_small(svc: Context, ref, key: str, version: str | None,
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


def _resolve_and_read_cached(svc: Context, ref, key: str,
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
            stored[header] = _override_value(param, query[param])
    headers = [("etag", f'"{obj.etag}"'), ("last-modified", http_date(info.time_ns)),
               ("accept-ranges", "bytes"), ("x-amz-version-id", info.commit_id)]
    headers.extend(stored.items())
    if obj.parts and "partNumber" in query:   # as S3: only for a request of one part
        headers.append(("x-amz-mp-parts-count", str(len(obj.parts))))
    return headers


def _override_value(param: str, value: str) -> str:
    """A ``response-*`` override as a header value: a control character (CR/LF would
    split the header) is ``InvalidArgument``; non-ASCII text goes out as its UTF-8
    bytes (as S3 does), not as an error."""
    if any(ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F for c in value):
        raise S3Error("InvalidArgument", f"{param} contains a control character.",
                      argument_name=param)
    if not value.isascii():
        try:
            value = value.encode("utf-8").decode("latin-1")
        except UnicodeEncodeError:      # a lone surrogate: no bytes to send
            raise S3Error("InvalidArgument", f"{param} is not valid UTF-8.",
                          argument_name=param) from None
    return value.strip(" \t")


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
    """RFC 9110 section 13.2.2 order, as S3 applies it to GET/HEAD (``s3.wire.conditions``).

    Returns None to proceed, 412 for PreconditionFailed or 304 for Not Modified.
    """
    return conditions.evaluate_read(headers, etag, time_ns)


def _failed_condition(headers) -> str:
    return conditions.failed_condition(headers)


async def stream_object(svc: Context, manifest: Manifest, start: int, end: int):
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
