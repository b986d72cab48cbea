"""Objects whose stored data is damaged: the answer, the log line, the count.

A chunk the store finds corrupt or missing (``store.chunkstore.ChunkError``;
the store has already quarantined a corrupt one) makes the request fail with
``DataDamaged`` (503, an S3 XML error: clients retry a few times, then
report it).  The object's bucket and key and the chunk id are logged once per
chunk (not once per request: a client retrying a damaged object must not
flood the log), and ``store.faults.damaged_responses`` counts the answers.

GET reads the first piece of a streamed body (up to 4 MiB: a whole chunk, or
the whole range of most ranged reads) before its headers go out
(``checked_body``), so damage there is a clean error.  A chunk further into
a long body can only be found when it is read: the connection is then
closed short of the Content-Length (the client sees an incomplete body and
retries), and the same log line and counter record it.
"""

from __future__ import annotations

import logging

from ..http import BodyAborted
from ..store.chunkstore import ChunkError, ChunkMissing
from .wire.errors import S3Error

__all__ = ["damaged", "checked_body"]

log = logging.getLogger("s3gw.s3.damage")

_LOGGED: set[bytes] = set()
_LOGGED_MAX = 10_000      # chunk ids remembered for "log once" (then forgotten wholesale)


def damaged(store, exc: ChunkError, routed, request_id: str) -> S3Error:
    """Count and log (once per chunk) a damaged chunk met by a request; the S3 error."""
    faults = getattr(store, "faults", None)
    if faults is not None:
        faults.damaged_responses += 1
    chunk_id = getattr(exc, "chunk_id", b"")
    if chunk_id not in _LOGGED:
        if len(_LOGGED) >= _LOGGED_MAX:
            _LOGGED.clear()
        _LOGGED.add(chunk_id)
        bucket = getattr(routed, "bucket", None) or "-"
        key = getattr(routed, "key", None) or "-"
        what = "missing" if isinstance(exc, ChunkMissing) else "damaged"
        log.error("stored data damaged: bucket %s key %s chunk %s %s (%s); request %s; "
                  "run `s3gw fsck` to list every object affected", bucket, key,
                  chunk_id.hex() if chunk_id else "?", what, exc, request_id)
    return S3Error("DataDamaged")


class checked_body:
    """A response body whose first piece was read (and its chunks verified) before
    the response starts: ``body = await checked_body.start(pieces, ...)``.  A
    damaged chunk later in the body is logged and counted, then ends the body
    with ``BodyAborted`` (the server drops the connection without a traceback)."""

    def __init__(self, pieces, first, store, routed, request_id: str):
        self._pieces = pieces
        self._first = first
        self._store = store
        self._routed = routed
        self._request_id = request_id

    @classmethod
    async def start(cls, pieces, store, routed, request_id: str) -> "checked_body":
        """Read the first piece; a ``ChunkError`` there propagates (before the headers)."""
        try:
            first = await pieces.__anext__()
        except StopAsyncIteration:
            first = None
        except BaseException:
            await pieces.aclose()
            raise
        return cls(pieces, first, store, routed, request_id)

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._first is not None:
            first, self._first = self._first, None
            return first
        try:
            return await self._pieces.__anext__()
        except ChunkError as exc:
            damaged(self._store, exc, self._routed, self._request_id)
            raise BodyAborted(f"stored data damaged: {exc}") from None

    async def aclose(self) -> None:
        self._first = None
        await self._pieces.aclose()
