"""SigV4 streaming: the chunk signature chain of ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]``.

Split from :mod:`s3gw.s3.auth.sigv4`; both use :mod:`.signing`.  Pure: fed the
decoder's chunk signatures and payload slices, it checks each chunk's
signature when its last byte arrives and raises ``SignatureDoesNotMatch`` on
the first bad chunk or trailer signature.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import deque
from collections.abc import Iterable, Mapping

from ..wire.errors import S3Error
from .signing import chunk_string_to_sign, sign, signature_mismatch, trailer_string_to_sign

__all__ = ["ChunkVerifier", "trailer_bytes"]

def trailer_bytes(trailers: Mapping[str, str]) -> bytes:
    """The signed form of trailing headers: ``name:value\\n`` each, in order,
    without ``x-amz-trailer-signature`` (values as received, latin-1 wire)."""
    return "".join(
        f"{n.lower()}:{v.strip()}\n"
        for n, v in trailers.items()
        if n.lower() != "x-amz-trailer-signature"
    ).encode("latin-1")


class ChunkVerifier:
    """Verify a ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`` chain.

    Usage with :class:`s3gw.s3.wire.awschunked.AwsChunkedDecoder`::

        v = ChunkVerifier(identity.signing_key, identity.timestamp,
                          identity.scope, identity.seed_signature)
        for data in body:
            slices = decoder.feed(data)
            v.add_signatures(decoder.take_signatures())   # headers come first
            for s in slices:
                v.feed(s)
        v.finish(decoder.finish() if trailer else None)

    Each chunk is checked as soon as its last byte arrives (the final
    zero-length chunk as soon as it is announced), so a bad chunk stops the
    upload before anything after it is accepted.  Memory: one SHA-256 state
    plus the queue of announced-but-unfinished chunks (at most the chunks
    whose headers share one ``feed`` buffer).

    Raises (from every method): ``SignatureDoesNotMatch`` on the first bad
    chunk or trailer signature; ``IncompleteBody`` when data or chunks do
    not line up (a caller or framing bug).
    """

    def __init__(
        self,
        signing_key: bytes,
        timestamp: str,
        scope: str,
        seed_signature: str,
        *,
        access_key: str = "",
    ) -> None:
        self._key = signing_key
        self._timestamp = timestamp
        self._scope = scope
        self._prev = seed_signature.lower()
        self._access_key = access_key
        self._pending: deque[tuple[str | None, int]] = deque()
        self._hash = hashlib.sha256()
        self._got = 0
        self.done = False  # the final zero-length chunk verified
        self.chunks = 0  # chunks verified (the final one included)

    def add_signature(self, signature: str | None, length: int) -> None:
        """Announce the next chunk: its declared signature and length."""
        if self.done:
            raise S3Error("IncompleteBody", "Data after the final chunk.")
        self._pending.append((signature, length))
        self._advance()

    def add_signatures(self, sigs: Iterable[tuple[str | None, int]]) -> None:
        """Announce several chunks (``ChunkSignature`` tuples)."""
        for sig, length in sigs:
            self.add_signature(sig, length)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Hash payload bytes of the announced chunks, in order."""
        mv = memoryview(data)
        while len(mv):
            if not self._pending:
                raise S3Error("IncompleteBody", "Chunk data without a chunk header.")
            need = self._pending[0][1] - self._got
            take = mv[:need]
            self._hash.update(take)
            self._got += len(take)
            mv = mv[len(take):]
            self._advance()

    def _advance(self) -> None:
        while self._pending and self._got == self._pending[0][1]:
            sig, length = self._pending.popleft()
            sts = chunk_string_to_sign(
                self._prev, self._timestamp, self._scope, self._hash.hexdigest()
            )
            self._verify(sts, sig)
            self._hash = hashlib.sha256()
            self._got = 0
            self.chunks += 1
            if length == 0:
                if self._pending:
                    raise S3Error("IncompleteBody", "Data after the final chunk.")
                self.done = True

    def _verify(self, sts: str, provided: str | None) -> None:
        expected = sign(self._key, sts)
        if provided is None or not hmac.compare_digest(expected, provided.lower()):
            raise signature_mismatch(self._access_key, sts, provided or "")
        self._prev = expected

    def finish(self, trailers: Mapping[str, str] | None = None) -> None:
        """Check the chain is complete; with *trailers*, verify their signature.

        Args:
            trailers: the trailing headers (lowercase names) including
                ``x-amz-trailer-signature``, for the ``-TRAILER`` variant.
        """
        if not self.done:
            raise S3Error("IncompleteBody", "The final zero-length chunk is missing.")
        if trailers is None:
            return
        lower = {k.lower(): v for k, v in trailers.items()}
        provided = lower.get("x-amz-trailer-signature")
        digest = hashlib.sha256(trailer_bytes(trailers)).hexdigest()
        sts = trailer_string_to_sign(self._prev, self._timestamp, self._scope, digest)
        self._verify(sts, None if provided is None else provided.strip())
