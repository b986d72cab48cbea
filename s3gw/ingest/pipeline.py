"""The write pipeline: body -> blocks -> (stream hashes | chunker -> chunk hashes -> store).

Theory of operation
-------------------
The trio task that owns the request fills fixed blocks (``block_size``,
4 MiB) with the body: straight from the socket when the caller gives a
``read_into`` (a plain Content-Length body: one kernel copy, nothing else),
else by copying decoded pieces from ``read``.  Blocks come from a small
per-upload pool (at most ``pool_blocks``, allocated on demand from a
process-wide spare list: no large temporary allocations, which glibc's
malloc makes slow and erratic).  A full block goes to two stages, each in
its own worker thread for the whole upload, fed through a queue (no trio
task and no ``to_thread`` round trip per block), one per core:

* the *stream* stage feeds the whole-stream hashers that must see every
  byte in order: MD5 (ETag, Content-MD5) -- the single-stream ceiling;
* the *chunk* stage runs the content-defined chunker, hashes each chunk
  (BLAKE3-256 address, XXH3-64 checksum), writes each new chunk to its temp
  file straight from the block (no copy, no writer thread: measured cheaper
  in CPU per GB than handing copies to a writer pool), and feeds any further
  stream hashes the request asked for (SHA-256 of a signed payload, the
  ``x-amz-checksum-*`` algorithm).

A block returns to the pool when both stages are done with it (the last one
hands it back with one ``run_sync_soon``).  The reader waits for a free
block, so the socket is read only as fast as the slowest stage goes
(back-pressure).

Memory per request: ``pool_blocks`` x ``block_size`` (16 MiB) + one chunk
accumulation buffer (a block, for chunks that span blocks) + the HTTP
receive buffer: about 21 MiB, whatever the body size.  Spare blocks kept
for the next uploads: at most ``SPARE_BLOCKS``.

Nothing here makes the data visible: new chunks are staged in temp files
(their writeback started at once, so disk I/O overlaps hashing); the caller
checks the digests, then ``keep()`` makes the chunks durable at their
addresses and commits the manifest; on any failure ``discard()`` (or an
error inside ``ingest``) removes the staged files: a failed upload leaves
no trace.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable

import trio

from .. import settings
from ..store import chunker as chunker_mod
from ..store import hashing
from ..store.chunkstore import ChunkStore, WriteBatch
from ..store.manifest import ChunkRef, Manifest

__all__ = ["IngestResult", "ingest", "ingest_small", "read_small", "BLOCK_SIZE", "SMALL_BODY",
           "ChunkStage", "BodyTooLong"]

BLOCK_SIZE = 4 << 20            # = the chunker's max size: most chunks lie inside one block
POOL_BLOCKS = 4
SPARE_BLOCKS = 5                # blocks kept for later uploads (process-wide): one upload's worth
SMALL_BODY = 256 * 1024         # bodies up to this size are handled in one worker call
STREAM_STAGE_ALGORITHMS = frozenset({"md5"})

Reader = Callable[[int], Awaitable[bytes]]
ReaderInto = Callable[[memoryview], Awaitable[int]]


class BodyTooLong(Exception):
    """The body went on well past the length its request declared."""


@dataclass
class IngestResult:
    """What ``ingest`` received.  The new chunks are staged, not yet durable:
    call ``await result.keep(limiter)`` once every check passed (before the
    commit), or ``await result.discard()`` to leave no trace."""

    size: int
    manifest: Manifest
    digests: dict[str, bytes]
    batch: WriteBatch
    new_chunks: int = 0
    new_bytes: int = 0

    async def keep(self, limiter: trio.CapacityLimiter | None = None) -> None:
        await trio.to_thread.run_sync(self.batch.sync, limiter=limiter)

    async def discard(self) -> None:
        await _discard(self.batch)


async def _discard(batch: WriteBatch) -> None:
    with trio.CancelScope(shield=True):
        with trio.move_on_after(30):
            await trio.to_thread.run_sync(batch.discard)


class _Spares:
    """Process-wide spare buffers of one size (thread-safe), so an upload does not
    allocate (and zero) its blocks each time."""

    def __init__(self, size: int, keep: int):
        self.size = size
        self._keep = keep
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def take(self, size: int) -> bytearray:
        if size == self.size:
            with self._lock:
                if self._free:
                    return self._free.pop()
        return bytearray(size)

    def give(self, buf: bytearray) -> None:
        if len(buf) == self.size:
            with self._lock:
                if len(self._free) < self._keep:
                    self._free.append(buf)


_SPARES = _Spares(BLOCK_SIZE, SPARE_BLOCKS)


class _Budget:
    """The blocks all streamed uploads together may hold (process-wide; the trio
    thread only).  An upload's first block waits for room; its further blocks
    (up to ``POOL_BLOCKS``) are taken only when there is room, else the upload
    goes on with the blocks it has (slower, never stuck).  So in-flight upload
    memory stays under ``limit`` blocks (env ``S3GW_UPLOAD_MEMORY_MIB``, default
    512 MiB = 128 blocks: 32 uploads at full speed, 128 at one block each)."""

    def __init__(self, limit: int):
        self.limit = max(1, limit)
        self.used = 0
        self._room: trio.Event | None = None

    def try_take(self) -> bool:
        if self.used < self.limit:
            self.used += 1
            return True
        return False

    async def take(self) -> None:
        while not self.try_take():
            if self._room is None:
                self._room = trio.Event()
            await self._room.wait()

    def give(self, n: int) -> None:
        self.used -= n
        if self._room is not None:
            self._room.set()
            self._room = None


_upload_budget: _Budget | None = None


def upload_budget() -> _Budget:
    """The process's in-flight upload memory budget (``settings.upload_memory_mib``, read
    at the first upload)."""
    global _upload_budget
    if _upload_budget is None:
        _upload_budget = _Budget(settings.current().upload_memory_mib * (1 << 20) // BLOCK_SIZE)
    return _upload_budget


def trim_spares() -> None:
    """Drop the spare blocks kept for later uploads (the server is idle)."""
    with _SPARES._lock:
        _SPARES._free.clear()


class ChunkStage:
    """Chunker + chunk hashing + staging of new chunks, fed block by block
    (blocking; one thread at a time).

    Cut points depend only on the bytes: the scanner's state carries across
    blocks.  A chunk that lies inside one block is hashed and written from
    the block itself; one that spans blocks is gathered in ``_pending`` (one
    buffer of the chunker's max size).  New chunks are written synchronously
    to their temp files (``WriteBatch.write_claimed``, writeback started at
    once), so nothing refers to a block after ``feed`` returns.
    """

    def __init__(self, batch: WriteBatch, params=None, algorithms: Iterable[str] = ()):
        p = params or chunker_mod.DEFAULT_PARAMS
        self._scanner = chunker_mod.Scanner(p.min_size, p.avg_size, p.max_size)
        self._max = p.max_size
        self._pending: bytearray | None = None     # taken when a chunk spans blocks
        self._pending_view: memoryview | None = None
        self._fill = 0
        self._batch = batch
        self.refs: list[ChunkRef] = []
        algos = list(algorithms)
        self._hasher = hashing.StreamHasher(algos) if algos else None

    def feed(self, block, final: bool = False) -> None:
        """Chunk the next block; ``final`` says it ends the stream (its tail is the last chunk)."""
        view = memoryview(block)
        if self._hasher is not None:
            self._hasher.update(view)
        pos = 0
        end = len(view)
        scan = self._scanner.scan
        while pos < end:
            cut = scan(view, pos)
            if cut < 0:
                if final and not self._fill:
                    self._emit(view[pos:])
                else:
                    self._append(view[pos:])
                return
            if self._fill:
                self._append(view[pos:cut])
                self._emit(self._pending_view[:self._fill])
                self._fill = 0
            else:
                self._emit(view[pos:cut])
            pos = cut

    def finish(self) -> dict[str, bytes]:
        """Emit the final partial chunk; return this stage's digests."""
        if self._fill:
            self._emit(self._pending_view[:self._fill])
            self._fill = 0
        self._scanner.reset()
        self._release_pending()
        return self._hasher.digests() if self._hasher is not None else {}

    def drain(self) -> None:
        """Nothing to wait for: chunks are written as they are cut (kept for callers)."""

    def abandon(self) -> None:
        """Forget the stage's buffers (the upload failed; the batch is discarded)."""
        self._fill = 0
        self._release_pending()

    def _release_pending(self) -> None:
        if self._pending is not None:
            _SPARES.give(self._pending)
            self._pending = self._pending_view = None

    def _append(self, piece) -> None:
        n = len(piece)
        if self._pending is None:
            self._pending = _SPARES.take(max(self._max, BLOCK_SIZE))
            self._pending_view = memoryview(self._pending)
        self._pending_view[self._fill:self._fill + n] = piece
        self._fill += n

    def _emit(self, data) -> None:
        cid = hashing.chunk_id(data)
        n = len(data)
        checksum = hashing.chunk_checksum(data)
        self.refs.append(ChunkRef(cid, checksum, n))
        if self._batch.claim(cid, n, checksum):
            self._batch.write_claimed(cid, data)


class _BlockPool:
    """Preallocated blocks handed between the reader (trio) and the stage threads.

    ``release`` may be called from any thread: the last stage done with a
    block hands it back to the trio side with one ``run_sync_soon`` (the only
    cross-thread wake-up per block).
    """

    def __init__(self, count: int, size: int):
        self._send, self._recv = trio.open_memory_channel(count)
        self._size = size
        self._unmade = count                 # blocks not allocated yet (made on demand)
        self._made: list[bytearray] = []
        self._refs: dict[int, int] = {}
        self._lock = threading.Lock()
        self._token = trio.lowlevel.current_trio_token()

    async def take(self) -> bytearray:
        if self._unmade:
            try:
                return self._recv.receive_nowait()
            except trio.WouldBlock:
                await trio.lowlevel.checkpoint()
                if not self._made:
                    await upload_budget().take()          # the first block: wait for room
                elif not upload_budget().try_take():      # more: only if there is room
                    return await self._recv.receive()
                self._unmade -= 1
                block = _SPARES.take(self._size)
                self._made.append(block)
                return block
        return await self._recv.receive()

    def close(self) -> None:
        """Give the blocks to the spare list (all stages are done with them)."""
        upload_budget().give(len(self._made))
        for block in self._made:
            _SPARES.give(block)
        self._made.clear()

    def put_back(self, block: bytearray) -> None:
        """Return an unused block (trio thread)."""
        self._send.send_nowait(block)

    def share(self, block: bytearray, users: int) -> None:
        with self._lock:
            self._refs[id(block)] = users

    def release(self, block: bytearray) -> None:
        key = id(block)
        with self._lock:
            self._refs[key] -= 1
            last = self._refs[key] == 0
            if last:
                del self._refs[key]
        if last:
            self._token.run_sync_soon(self._send.send_nowait, block)


class _StageThread:
    """One stage of one upload in its own worker thread (trio's thread cache),
    fed blocks through a queue: no trio task and no ``to_thread`` round trip
    per block.

    ``fn(view)`` runs for every block; ``final()`` once after the last one,
    and its result is the stage's outcome.  After an error the stage skips
    the remaining blocks (still releasing them, so the reader never waits on
    a dead stage) and its outcome is the error; the reader checks ``error``
    before each block.  ``abort()`` makes it skip the rest too.
    """

    def __init__(self, fn, final, release):
        self._fn = fn
        self._final = final
        self._release = release
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.aborted = False
        self.done = trio.Event()
        self.outcome = None

    def start(self) -> None:
        token = trio.lowlevel.current_trio_token()

        def deliver(outcome) -> None:  # in the worker thread
            token.run_sync_soon(self._finished, outcome)

        trio.lowlevel.start_thread_soon(self._loop, deliver)

    def _finished(self, outcome) -> None:
        self.outcome = outcome
        self.done.set()

    def put(self, block, n: int) -> None:
        self._queue.put((block, n))

    def end(self, abort: bool = False) -> None:
        if abort:
            self.aborted = True
        self._queue.put(None)

    def _loop(self):
        fn = self._fn
        get = self._queue.get
        release = self._release
        while True:
            item = get()
            if item is None:
                break
            block, n = item
            try:
                if self.error is None and not self.aborted:
                    fn(memoryview(block)[:n])
            except BaseException as exc:  # noqa: BLE001 - handed to the reader through the outcome
                self.error = exc
            finally:
                release(block)
        if self.error is not None:
            raise self.error
        if self.aborted:
            return None
        return self._final()


async def ingest(read: Reader, store: ChunkStore, *, algorithms: Iterable[str] = ("md5",),
                 params=None, block_size: int = BLOCK_SIZE, pool_blocks: int = POOL_BLOCKS,
                 limiter: trio.CapacityLimiter | None = None,
                 size_hint: int | None = None,
                 read_into: ReaderInto | None = None) -> IngestResult:
    """Stream a body into the chunk store.

    Args:
        read: ``await read(max_bytes)`` returns the next decoded piece, b"" at the end.
            It raises (e.g. an S3 error) for a short or malformed body.
        store: where new chunks go.
        algorithms: whole-stream digests wanted (md5, sha256, sha1, crc32, crc32c).
        read_into: optional ``await read_into(view)``: fills 1..len(view) bytes of
            ``view``, returns the count (0 at the end).  When given, blocks are
            filled with it (no piece objects, no copy) instead of ``read``.
        size_hint: the declared body length, if known.  A small body (up to
            ``SMALL_BODY``) is gathered and processed in a single worker call:
            for 4 KiB objects the per-block pipeline would cost more than the work.
    Returns:
        the size, the manifest and the requested digests (raw bytes).
    Raises:
        whatever ``read`` raises; OSError from the store.  The chunks staged
        before the failure are removed.
    """
    algorithms = list(dict.fromkeys(algorithms))
    stream_algos = [a for a in algorithms if a in STREAM_STAGE_ALGORITHMS]
    chunk_algos = [a for a in algorithms if a not in STREAM_STAGE_ALGORITHMS]
    stream_hasher = hashing.StreamHasher(stream_algos) if stream_algos else None
    batch = store.batch()
    stage = ChunkStage(batch, params, chunk_algos)
    try:
        if size_hint is not None and size_hint <= SMALL_BODY:
            return await _run_small(read, stage, stream_hasher, limiter, batch)
        pool = _BlockPool(pool_blocks, block_size)
        try:
            return await _run(read, read_into, stage, stream_hasher, pool, block_size, batch)
        finally:
            pool.close()
    except BaseException:
        stage.abandon()
        await _discard(batch)
        raise


async def read_small(read: Reader) -> bytes:
    """Gather a small body (declared at most ``SMALL_BODY``) on the trio side.

    Raises:
        BodyTooLong: far more arrived than a small body may have.
    """
    pieces = []
    size = 0
    while True:
        piece = await read(SMALL_BODY)
        if not piece:
            break
        pieces.append(piece)
        size += len(piece)
        if size > 2 * SMALL_BODY:  # far more than declared
            raise BodyTooLong("body longer than its declared length")
    return b"".join(pieces)


def ingest_small(body, store: ChunkStore, *, algorithms: Iterable[str] = ("md5",),
                 params=None, inline_max: int = 0) -> IngestResult:
    """Blocking: hash, chunk and stage a whole (small) body in the calling thread.

    Same result as ``ingest`` for the same bytes; the caller runs it in a
    worker thread, possibly together with the rest of its request's blocking
    work (one thread hop for a whole small PUT).  On error the staged chunks
    are removed.

    A body of 1 to ``inline_max`` bytes becomes one inline chunk (``ChunkRef``
    with its data, see ``store.manifest``): nothing is staged in the store, and the
    caller's commit makes it durable.
    """
    algorithms = list(dict.fromkeys(algorithms))
    if 0 < len(body) <= inline_max:
        return _inline_small(body, store, algorithms)
    stream_algos = [a for a in algorithms if a in STREAM_STAGE_ALGORITHMS]
    chunk_algos = [a for a in algorithms if a not in STREAM_STAGE_ALGORITHMS]
    batch = store.batch()
    stage = ChunkStage(batch, params, chunk_algos)
    try:
        digests = _small_work(body, stage, hashing.StreamHasher(stream_algos) if stream_algos
                              else None)
    except BaseException:
        stage.abandon()
        batch.discard()
        raise
    return IngestResult(size=len(body), manifest=Manifest(stage.refs), digests=digests,
                        batch=batch, new_chunks=batch.new_chunks, new_bytes=batch.new_bytes)


def inline_object(body) -> tuple[bytes, bytes]:
    """(MD5, packed manifest) of a body kept in its commit (1 to ``inline_max``
    bytes) when no other digest is wanted: the same values ``ingest_small`` gives,
    without its general machinery (the common small PUT; its committer runs this)."""
    data = bytes(body)
    ref = ChunkRef(hashing.chunk_id(data), hashing.chunk_checksum(data), len(data), data)
    return hashing.md5(data), Manifest((ref,)).pack()


def _inline_small(body, store: ChunkStore, algorithms: list[str]) -> IngestResult:
    data = bytes(body)
    ref = ChunkRef(hashing.chunk_id(data), hashing.chunk_checksum(data), len(data), data)
    hasher = hashing.StreamHasher(algorithms)
    hasher.update(data)
    return IngestResult(size=len(data), manifest=Manifest((ref,)), digests=hasher.digests(),
                        batch=store.batch(), new_chunks=0, new_bytes=0)


def _small_work(body, stage: ChunkStage, stream_hasher) -> dict[str, bytes]:
    if stream_hasher is not None:
        stream_hasher.update(body)
    if body:
        stage.feed(body, final=True)
    digests = stage.finish()
    if stream_hasher is not None:
        digests.update(stream_hasher.digests())
    return digests


async def _run_small(read, stage, stream_hasher, limiter, batch) -> IngestResult:
    body = await read_small(read)
    digests = await trio.to_thread.run_sync(_small_work, body, stage, stream_hasher,
                                            limiter=limiter)
    return IngestResult(size=len(body), manifest=Manifest(stage.refs), digests=digests,
                        batch=batch, new_chunks=batch.new_chunks, new_bytes=batch.new_bytes)


async def _run(read, read_into, stage, stream_hasher, pool, block_size, batch):
    # One thread per stage for the whole upload (see _StageThread).  These threads
    # do not take the limiter's tokens (a token held for a whole upload would
    # starve short metadata calls): each upload's work is bounded by its block
    # pool, and there are two such threads per upload in progress.
    stages = [_StageThread(stage.feed, stage.finish, pool.release)]
    if stream_hasher is not None:
        stages.append(_StageThread(stream_hasher.update, stream_hasher.digests, pool.release))
    for st in stages:
        st.start()
    size = 0
    failed = True
    try:
        done = False
        while not done:
            block = await pool.take()
            if any(st.error is not None for st in stages):
                pool.put_back(block)
                break
            view = memoryview(block)
            n = 0
            if read_into is not None:
                while n < block_size:
                    k = await read_into(view[n:])
                    if not k:
                        done = True
                        break
                    n += k
            else:
                while n < block_size:
                    piece = await read(block_size - n)
                    if not piece:
                        done = True
                        break
                    k = len(piece)
                    view[n:n + k] = piece
                    n += k
            if n == 0:
                pool.put_back(block)
                break
            size += n
            pool.share(block, len(stages))
            for st in stages:
                st.put(block, n)
        failed = False
    finally:
        for st in stages:
            st.end(abort=failed)
        with trio.CancelScope(shield=True):
            for st in stages:
                await st.done.wait()
    digests = stages[0].outcome.unwrap()
    if stream_hasher is not None:
        digests.update(stages[1].outcome.unwrap())
    return IngestResult(size=size, manifest=Manifest(stage.refs), digests=digests, batch=batch,
                        new_chunks=batch.new_chunks, new_bytes=batch.new_bytes)
