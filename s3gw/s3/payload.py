"""Request bodies as the ingest pipeline reads them: HTTP body -> (aws-chunked decode) -> pieces.

``BodyReader.read(max_bytes)`` returns the next payload piece (at most
``max_bytes``), ``b""`` at the end.  It classifies the body once
(``s3.wire.awschunked.body_shape``: plain, or aws-chunked signed/unsigned with or
without trailers) and decodes aws-chunked framing incrementally, holding at
most one socket read of decoded views.  ``finish()`` checks the declared
length; the trailers (aws-chunked or HTTP chunked) are then in ``trailers``.

With auth on, a streaming-signed body (``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``
and its ``-TRAILER`` form) has every chunk signature checked as the chunk's
last byte is decoded (``ChunkVerifier``, seeded by the request's SigV4
header signature); a bad chunk raises ``SignatureDoesNotMatch`` from
``read`` before its data reaches the pipeline, so nothing is committed.
With auth off the chunk signatures are ignored (no secret to check them).
"""

from __future__ import annotations

import hashlib
from collections import deque

from ..http import Request
from .auth.sigv4_stream import ChunkVerifier
from .context import PRINCIPAL
from .wire.awschunked import body_shape
from .wire.errors import S3Error

__all__ = ["BodyReader", "read_small_body"]

RECEIVE_SIZE = 256 * 1024


class BodyReader:
    def __init__(self, req: Request):
        self._body = req.body
        self.shape = body_shape(req.headers)
        self.decoder = self.shape.decoder()
        self.payload_sha256 = self.shape.content_sha256
        self.trailer_names = self.shape.trailer_names
        self.trailers: dict[str, str] = {}
        self.received = 0
        self._queue: deque = deque()
        self._ended = False
        if req.headers.get("content-length") is None and \
                "chunked" not in (req.headers.get("transfer-encoding") or "").lower():
            raise S3Error("MissingContentLength")
        self.verifier = self._chunk_verifier()

    def _chunk_verifier(self) -> ChunkVerifier | None:
        principal = PRINCIPAL.get()
        if principal is None or not self.shape.signed_chunks:
            return None
        ident = principal.sigv4
        if ident is None or not ident.payload_hash.startswith("STREAMING-AWS4-HMAC-SHA256"):
            raise S3Error("AccessDenied", "A body of signed chunks needs a SigV4 Authorization "
                                          "header signing that payload.")
        return ChunkVerifier(ident.signing_key, ident.timestamp, ident.scope,
                             ident.seed_signature, access_key=ident.access_key)

    async def read(self, max_bytes: int):
        if self.decoder is None:
            piece = await self._body.receive_some(max_bytes)
            if not piece:
                self._end()
            self.received += len(piece)
            return piece
        while not self._queue:
            if self._ended:
                return b""
            data = await self._body.receive_some(RECEIVE_SIZE)
            if not data:
                trailers = self.decoder.finish()
                if self.verifier is not None:
                    self.verifier.finish(trailers if self.shape.expect_trailer else None)
                self.trailers.update(trailers)
                self._end()
                return b""
            slices = self.decoder.feed(data)
            signatures = self.decoder.take_signatures()  # drained always: bounded memory
            if self.verifier is not None:
                self.verifier.add_signatures(signatures)
                for piece in slices:
                    self.verifier.feed(piece)
            self._queue.extend(p for p in slices if len(p))
        piece = self._queue[0]
        if len(piece) > max_bytes:
            self._queue[0] = piece[max_bytes:]
            piece = piece[:max_bytes]
        else:
            self._queue.popleft()
        self.received += len(piece)
        return piece

    def _end(self) -> None:
        self._ended = True
        for name, value in self._body.trailers:
            self.trailers.setdefault(name, value)

    def finish(self) -> None:
        """Check the payload length against what the client declared."""
        expected = self.shape.decoded_length
        if expected is not None and self.received != expected:
            raise S3Error("IncompleteBody")


async def read_small_body(req: Request, limit: int) -> bytes:
    """Read a whole (XML) request body of at most ``limit`` decoded bytes."""
    if req.body.length == 0:
        return b""
    reader = BodyReader(req)
    parts = []
    total = 0
    while True:
        piece = await reader.read(RECEIVE_SIZE)
        if not piece:
            break
        total += len(piece)
        if total > limit:
            raise S3Error("EntityTooLarge" if limit > 65536 else "MalformedXML",
                          "The request body is too large.")
        parts.append(bytes(piece))
    reader.finish()
    body = b"".join(parts)
    if reader.payload_sha256 is not None and \
            hashlib.sha256(body).hexdigest() != reader.payload_sha256:
        raise S3Error("XAmzContentSHA256Mismatch",
                      "The provided 'x-amz-content-sha256' header does not match what was computed.")
    return body
