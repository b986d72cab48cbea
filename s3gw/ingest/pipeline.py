"""The write pipeline: body pieces -> blocks -> (stream hashes | chunker -> chunk hashes -> store).

Theory of operation
-------------------
The trio task that owns the request pulls decoded body pieces (``read``)
and copies them into fixed blocks (``block_size``, 1 MiB) taken from a small
pool of preallocated buffers (no large temporary allocations: glibc's malloc
makes those slow and erratic).  A full block goes to two stages that run in
worker threads at the same time, one per core:

* the *stream* stage feeds the whole-stream hashers that must see every
  byte in order: MD5 (ETag, Content-MD5) -- the single-stream ceiling;
* the *chunk* stage runs the content-defined chunker, hashes each chunk
  (BLAKE3-256 address, XXH3-64 checksum), writes new chunks to the store,
  and feeds any further stream hashes the request asked for (SHA-256 of a
  signed payload, the ``x-amz-checksum-*`` algorithm).

Each stage has its own channel of capacity 1; a block returns to the pool
when both stages are done with it.  The reader waits for a free block, so
the socket is read only as fast as the slowest stage goes (back-pressure).

Memory per request: ``pool_blocks`` x ``block_size`` (4 MiB) + one chunk
accumulation buffer and ``WRITE_BUFFERS`` write buffers of the chunker's
max size (16 MiB) + the HTTP receive buffer: about 21 MiB, whatever the
body size.

Nothing here makes the data visible: new chunks are staged in temp files
(their writeback started at once, so disk I/O overlaps hashing); the caller
checks the digests, then ``keep()`` makes the chunks durable at their
addresses and commits the manifest; on any failure ``discard()`` (or an
error inside ``ingest``) removes the staged files: a failed upload leaves
no trace.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable

import trio

from ..store import chunker as chunker_mod
from ..store import hashing
from ..store.chunkstore import LocalChunkStore, WriteBatch
from ..store.ids import ChunkRef, Manifest

__all__ = ["IngestResult", "ingest", "BLOCK_SIZE", "ChunkStage", "BodyTooLong"]

BLOCK_SIZE = 1 << 20
POOL_BLOCKS = 4
WRITE_BUFFERS = 3
SMALL_CHUNK = 64 * 1024         # chunks up to this size are copied, not pooled
SMALL_BODY = 256 * 1024         # bodies up to this size are handled in one worker call
# Writer threads shared by all uploads (disk writes block in the kernel, GIL released).
_WRITERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="s3gw-chunk-writer")
STREAM_STAGE_ALGORITHMS = frozenset({"md5"})

Reader = Callable[[int], Awaitable[bytes]]


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


class ChunkStage:
    """Chunker + chunk hashing, fed block by block (blocking; one thread), with
    new chunks written by a shared pool of writer threads.

    Cut points depend only on the bytes: the scanner's state carries across
    blocks.  A chunk that lies inside one block is hashed from the block
    itself; one that spans blocks is gathered in ``_pending``.  A new chunk
    is copied into one of ``WRITE_BUFFERS`` preallocated buffers and written
    by a writer thread, so a slow disk (dirty-page throttling, fsync) runs
    in parallel with chunking and hashing; when every buffer is in flight
    the stage waits for the oldest write (back-pressure, bounded memory:
    ``WRITE_BUFFERS`` x max chunk size).
    """

    def __init__(self, batch: WriteBatch, params=None, algorithms: Iterable[str] = ()):
        p = params or chunker_mod.DEFAULT_PARAMS
        self._scanner = chunker_mod.Scanner(p.min_size, p.avg_size, p.max_size)
        self._max = p.max_size
        self._pending_view: memoryview | None = None   # allocated when a chunk spans blocks
        self._fill = 0
        self._batch = batch
        self._free: list[bytearray] = []
        self._buffers = 0                               # write buffers allocated so far
        self._inflight: deque = deque()
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
        """Emit the final partial chunk, wait for the writes; return this stage's digests."""
        if self._fill:
            self._emit(self._pending_view[:self._fill])
            self._fill = 0
        self._scanner.reset()
        self.drain()
        return self._hasher.digests() if self._hasher is not None else {}

    def drain(self) -> None:
        """Wait for every write in flight (errors propagate)."""
        while self._inflight:
            buf = self._wait_oldest()
            if buf is not None:
                self._free.append(buf)

    def abandon(self) -> None:
        """Wait for the writes in flight, ignoring their errors (the upload failed)."""
        while self._inflight:
            fut, buf = self._inflight.popleft()
            try:
                fut.result()
            except Exception:
                pass

    def _append(self, piece) -> None:
        n = len(piece)
        if self._pending_view is None:
            self._pending_view = memoryview(bytearray(self._max))
        self._pending_view[self._fill:self._fill + n] = piece
        self._fill += n

    def _emit(self, data) -> None:
        cid = hashing.chunk_id(data)
        n = len(data)
        self.refs.append(ChunkRef(cid, hashing.chunk_checksum(data), n))
        if not self._batch.claim(cid, n):
            return
        if n <= SMALL_CHUNK:
            buf = bytes(data)  # small: a copy is cheaper than a pooled buffer
            self._inflight.append((_WRITERS.submit(self._batch.write_claimed, cid, buf), None))
            return
        if self._free:
            buf = self._free.pop()
        elif self._buffers < WRITE_BUFFERS:
            buf = bytearray(self._max)
            self._buffers += 1
        else:
            buf = self._wait_oldest()
        view = memoryview(buf)[:n]
        view[:] = data
        self._inflight.append((_WRITERS.submit(self._batch.write_claimed, cid, view), buf))

    def _wait_oldest(self) -> bytearray:
        fut, buf = self._inflight.popleft()
        fut.result()
        return buf


class _BlockPool:
    """Preallocated blocks handed between the reader and the two stages."""

    def __init__(self, count: int, size: int):
        self._send, self._recv = trio.open_memory_channel(count)
        for _ in range(count):
            self._send.send_nowait(bytearray(size))
        self._refs: dict[int, int] = {}

    async def take(self) -> bytearray:
        return await self._recv.receive()

    def share(self, block: bytearray, users: int) -> None:
        self._refs[id(block)] = users

    def release(self, block: bytearray) -> None:
        key = id(block)
        self._refs[key] -= 1
        if self._refs[key] == 0:
            del self._refs[key]
            self._send.send_nowait(block)


async def ingest(read: Reader, store: LocalChunkStore, *, algorithms: Iterable[str] = ("md5",),
                 params=None, block_size: int = BLOCK_SIZE, pool_blocks: int = POOL_BLOCKS,
                 limiter: trio.CapacityLimiter | None = None,
                 size_hint: int | None = None) -> IngestResult:
    """Stream a body into the chunk store.

    Args:
        read: ``await read(max_bytes)`` returns the next decoded piece, b"" at the end.
            It raises (e.g. an S3 error) for a short or malformed body.
        store: where new chunks go.
        algorithms: whole-stream digests wanted (md5, sha256, sha1, crc32, crc32c).
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
    users = 2 if stream_hasher is not None else 1
    try:
        if size_hint is not None and size_hint <= SMALL_BODY:
            return await _run_small(read, stage, stream_hasher, limiter, batch)
        pool = _BlockPool(pool_blocks, block_size)
        return await _run(read, stage, stream_hasher, pool, users, block_size, limiter, batch)
    except BaseException:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(stage.abandon)
        await _discard(batch)
        raise


async def _run_small(read, stage, stream_hasher, limiter, batch) -> IngestResult:
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
    body = b"".join(pieces)

    def work():
        if stream_hasher is not None:
            stream_hasher.update(body)
        if body:
            stage.feed(body, final=True)
        digests = stage.finish()
        if stream_hasher is not None:
            digests.update(stream_hasher.digests())
        return digests

    digests = await trio.to_thread.run_sync(work, limiter=limiter)
    return IngestResult(size=size, manifest=Manifest(stage.refs), digests=digests, batch=batch,
                        new_chunks=batch.new_chunks, new_bytes=batch.new_bytes)


async def _run(read, stage, stream_hasher, pool, users, block_size, limiter, batch):
    size = 0

    async def run_stage(recv, fn):
        async with recv:
            async for block, n in recv:
                try:
                    await trio.to_thread.run_sync(fn, memoryview(block)[:n], limiter=limiter)
                finally:
                    pool.release(block)

    async with trio.open_nursery() as nursery:
        chunk_send, chunk_recv = trio.open_memory_channel(1)
        nursery.start_soon(run_stage, chunk_recv, stage.feed)
        hash_send = None
        if stream_hasher is not None:
            hash_send, hash_recv = trio.open_memory_channel(1)
            nursery.start_soon(run_stage, hash_recv, stream_hasher.update)
        try:
            done = False
            while not done:
                block = await pool.take()
                view = memoryview(block)
                n = 0
                while n < block_size:
                    piece = await read(block_size - n)
                    if not piece:
                        done = True
                        break
                    k = len(piece)
                    view[n:n + k] = piece
                    n += k
                if n == 0:
                    pool._send.send_nowait(block)
                    break
                size += n
                pool.share(block, users)
                await chunk_send.send((block, n))
                if hash_send is not None:
                    await hash_send.send((block, n))
        finally:
            await chunk_send.aclose()
            if hash_send is not None:
                await hash_send.aclose()

    digests = await trio.to_thread.run_sync(stage.finish, limiter=limiter)
    if stream_hasher is not None:
        digests.update(stream_hasher.digests())
    return IngestResult(size=size, manifest=Manifest(stage.refs), digests=digests, batch=batch,
                        new_chunks=batch.new_chunks, new_bytes=batch.new_bytes)
