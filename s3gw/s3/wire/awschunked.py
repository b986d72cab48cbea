"""aws-chunked request bodies: classify the body shape, decode incrementally.

Theory of operation
-------------------
A request body arrives in one of four shapes (CLIENTS.md 3.1), told apart by
``x-amz-content-sha256`` -- *not* by ``Content-Encoding``, which minio-go
leaves out:

================  ==========================================  ==============
kind              x-amz-content-sha256                        body
================  ==========================================  ==============
PLAIN             hex / ``UNSIGNED-PAYLOAD`` / absent         raw bytes
UNSIGNED_TRAILER  ``STREAMING-UNSIGNED-PAYLOAD-TRAILER``      aws-chunked
SIGNED            ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``      aws-chunked
SIGNED_TRAILER    ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`` aws-chunked
================  ==========================================  ==============

(``Content-Encoding: aws-chunked`` with a non-streaming hash is treated as
UNSIGNED_TRAILER, with a trailer only if ``x-amz-trailer`` names one.)
:func:`body_shape` returns that classification and the *decoded* length
(``x-amz-decoded-content-length`` for aws-chunked, ``Content-Length``
otherwise; the encoded ``Content-Length`` is never the object's size).

The aws-chunked framing is::

    hex-size[;chunk-signature=<64 hex>]\\r\\n <size bytes> \\r\\n
    ...
    0[;chunk-signature=…]\\r\\n
    [name:value\\r\\n]*          trailers, e.g. x-amz-checksum-crc32,
    \\r\\n                        x-amz-trailer-signature

:class:`AwsChunkedDecoder` is a sans-IO state machine (rule 1: the
``_TRANSITIONS`` table; any framing violation raises one error type,
:class:`S3Error`).  ``feed(data)`` returns the payload as ``memoryview``
slices *of the caller's buffer*: payload bytes are never copied, only the
small header and trailer lines are buffered (each capped), so a 1 MiB chunk
arriving in 256 KiB pieces costs four slices and no copies.  A returned
slice never spans two chunks.  The slices alias the buffer passed to
``feed``; consume them before reusing that buffer.

Chunk signatures are appended to ``chunk_signatures`` as
``ChunkSignature(signature, length)`` when each chunk header is parsed (the
final zero-length chunk included), in order.  The SigV4 streaming verifier
hashes the payload slices in order and cuts them at those lengths.  To keep
memory per request bounded, the consumer drains the list with
:meth:`AwsChunkedDecoder.take_signatures` after each ``feed``.

Errors (following S3, which answers ``IncompleteBody`` for any malformed or
truncated aws-chunked encoding): bad size line, missing CRLF, data after
the end, more or fewer bytes than ``x-amz-decoded-content-length``, stream
ended early -> ``IncompleteBody``; a trailer line without ``:``, trailers
too large, or a declared trailer missing -> ``MalformedTrailerError``.
Leniency: a stream that ends after complete trailer lines but without the
final empty line is accepted (the trailer values are still checked by the
caller).  Not enforced: S3's 8 KiB minimum for signed chunks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from .errors import S3Error

__all__ = [
    "PLAIN",
    "SIGNED",
    "SIGNED_TRAILER",
    "UNSIGNED_TRAILER",
    "AwsChunkedDecoder",
    "BodyShape",
    "ChunkSignature",
    "body_shape",
]

PLAIN = "PLAIN"
UNSIGNED_TRAILER = "UNSIGNED_TRAILER"
SIGNED = "SIGNED"
SIGNED_TRAILER = "SIGNED_TRAILER"

_STREAMING = {
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER": UNSIGNED_TRAILER,
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD": SIGNED,
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER": SIGNED_TRAILER,
}
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")


class ChunkSignature(NamedTuple):
    signature: str | None
    length: int


@dataclass(frozen=True, slots=True)
class BodyShape:
    """How to read a request body.

    Attributes:
        kind: PLAIN, UNSIGNED_TRAILER, SIGNED or SIGNED_TRAILER.
        decoded_length: the payload length, or ``None`` if unknown
            (``Transfer-Encoding: chunked`` without a decoded length).
        content_sha256: the lowercase hex payload hash when the client sent
            one (of the decoded payload, also under an ``aws-chunked``
            Content-Encoding), else ``None``.
        trailer_names: lowercase names listed in ``x-amz-trailer``.
    """

    kind: str
    decoded_length: int | None
    content_sha256: str | None = None
    trailer_names: tuple[str, ...] = ()

    @property
    def aws_chunked(self) -> bool:
        return self.kind != PLAIN

    @property
    def signed_chunks(self) -> bool:
        return self.kind in (SIGNED, SIGNED_TRAILER)

    @property
    def expect_trailer(self) -> bool:
        return self.kind == SIGNED_TRAILER or (self.kind == UNSIGNED_TRAILER and bool(self.trailer_names))

    def decoder(self) -> AwsChunkedDecoder | None:
        """A fresh decoder for this shape, or ``None`` for PLAIN."""
        if not self.aws_chunked:
            return None
        return AwsChunkedDecoder(
            self.signed_chunks, self.expect_trailer, decoded_length=self.decoded_length
        )


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    value = value.strip()
    if not value.isascii() or not value.isdigit():
        raise S3Error("InvalidArgument", f"Invalid {name} header.", argument_name=name, argument_value=value)
    return int(value)


def body_shape(headers: Mapping[str, str]) -> BodyShape:
    """Classify a request body from its headers.

    Args:
        headers: anything with ``.get(lowercase_name)``.

    Raises:
        S3Error: ``InvalidArgument`` for an unknown ``x-amz-content-sha256``
            value or a non-numeric length; ``NotImplemented`` for SigV4a
            (ECDSA) streaming.
    """
    sha = (headers.get("x-amz-content-sha256") or "").strip()
    encoding = headers.get("content-encoding") or ""
    chunked_ce = any(c.strip().lower() == "aws-chunked" for c in encoding.split(","))
    trailer_names = tuple(
        t.strip().lower() for t in (headers.get("x-amz-trailer") or "").split(",") if t.strip()
    )
    kind = _STREAMING.get(sha)
    if kind is None and sha.startswith("STREAMING-"):
        raise S3Error("NotImplemented", f"Payload type {sha} is not supported.")
    digest = None
    if kind is None and sha and sha != "UNSIGNED-PAYLOAD":
        if not _HEX64.fullmatch(sha):
            raise S3Error(
                "InvalidArgument",
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-… or a valid sha256 value.",
                argument_name="x-amz-content-sha256",
                argument_value=sha,
            )
        digest = sha.lower()  # checked against the decoded payload, whatever its framing
    if kind is None and chunked_ce:
        kind = UNSIGNED_TRAILER
    if kind is not None:
        return BodyShape(kind, _int_header(headers, "x-amz-decoded-content-length"), digest,
                         trailer_names)
    return BodyShape(PLAIN, _int_header(headers, "content-length"), digest, trailer_names)


# ----------------------------------------------------------------- decoder
SIZE_LINE = "SIZE_LINE"  # reading "hex[;ext]\r\n"
DATA = "DATA"  # inside a chunk's payload
DATA_END = "DATA_END"  # expecting the CRLF after a payload
TRAILERS = "TRAILERS"  # after the 0-chunk: "name:value\r\n" lines until an empty one
DONE = "DONE"

_TRANSITIONS: dict[str, dict[str, str]] = {
    SIZE_LINE: {"chunk": DATA, "last_chunk": TRAILERS},
    DATA: {"payload_end": DATA_END},
    DATA_END: {"crlf": SIZE_LINE},
    TRAILERS: {"trailer": TRAILERS, "empty_line": DONE},
    DONE: {},
}

_MAX_LINE = 4096
_MAX_TRAILERS = 16384


def _incomplete(why: str) -> S3Error:
    return S3Error("IncompleteBody", f"The request body terminated unexpectedly or is malformed: {why}.")


class AwsChunkedDecoder:
    """Incremental aws-chunked decoder (see the module docstring).

    Args:
        signed: chunks must carry ``chunk-signature`` (SIGNED shapes).
        expect_trailer: trailers must follow the final chunk.
        decoded_length: the declared ``x-amz-decoded-content-length``, or
            ``None`` to skip the length check.

    Attributes:
        chunk_signatures: ``ChunkSignature`` records not yet taken.
        trailers: ``{lowercase name: value}`` once the trailers were read.
        decoded: payload bytes returned so far.
    """

    def __init__(
        self, signed: bool, expect_trailer: bool, *, decoded_length: int | None = None
    ) -> None:
        self.signed = signed
        self.expect_trailer = expect_trailer
        self.decoded_length = decoded_length
        self.chunk_signatures: list[ChunkSignature] = []
        self.trailers: dict[str, str] = {}
        self.decoded = 0
        self.state = SIZE_LINE
        self._announced = 0  # sum of chunk sizes parsed so far
        self._remaining = 0  # payload bytes left in the current chunk
        self._crlf = 0  # bytes of the post-payload CRLF seen
        self._line = bytearray()
        self._trailer_bytes = 0

    def _go(self, event: str) -> None:
        nxt = _TRANSITIONS[self.state].get(event)
        if nxt is None:
            raise _incomplete(f"unexpected {event} in state {self.state}")
        self.state = nxt

    def take_signatures(self) -> list[ChunkSignature]:
        """Return and forget the chunk signatures recorded so far."""
        out, self.chunk_signatures = self.chunk_signatures, []
        return out

    def feed(self, data: bytes | bytearray | memoryview) -> list[memoryview]:
        """Decode the next piece of the encoded body.

        Returns:
            Payload slices (views of *data*, in order, possibly empty).

        Raises:
            S3Error: ``IncompleteBody`` / ``MalformedTrailerError`` on bad
                framing (the decoder is then unusable).
        """
        mv = data if isinstance(data, memoryview) else memoryview(data)
        if mv.format != "B" or mv.ndim != 1:
            mv = mv.cast("B")
        out: list[memoryview] = []
        pos, n = 0, len(mv)
        while pos < n:
            state = self.state
            if state is DATA:
                take = min(self._remaining, n - pos)
                out.append(mv[pos : pos + take])
                pos += take
                self._remaining -= take
                self.decoded += take
                if self._remaining == 0:
                    self._go("payload_end")
            elif state is DATA_END:
                if mv[pos] != b"\r\n"[self._crlf]:
                    raise _incomplete("chunk payload not followed by CRLF")
                pos += 1
                self._crlf += 1
                if self._crlf == 2:
                    self._crlf = 0
                    self._go("crlf")
            elif state is DONE:
                raise _incomplete("data after the final chunk")
            else:
                pos = self._read_line(mv, pos, n)
        return out

    def _read_line(self, mv: memoryview, pos: int, n: int) -> int:
        room = _MAX_LINE - len(self._line)
        window = bytes(mv[pos : min(n, pos + room + 1)])
        i = window.find(b"\n")
        if i < 0:
            if len(window) > room:
                raise _incomplete("header line too long")
            self._line += window
            return pos + len(window)
        self._line += window[:i]
        line = bytes(self._line)
        self._line.clear()
        if not line.endswith(b"\r"):
            raise _incomplete("line not terminated by CRLF")
        line = line[:-1]
        if self.state is SIZE_LINE:
            self._size_line(line)
        else:
            self._trailer_line(line)
        return pos + i + 1

    def _size_line(self, line: bytes) -> None:
        size_text, *exts = line.split(b";")
        if not _SIZE.fullmatch(size_text):
            raise _incomplete("invalid chunk size")
        size = int(size_text, 16)
        signature = None
        for ext in exts:
            name, _, value = ext.partition(b"=")
            if name.strip() == b"chunk-signature":
                signature = value.strip().decode("ascii", "replace")
        if self.signed and signature is None:
            raise _incomplete("chunk without chunk-signature")
        self.chunk_signatures.append(ChunkSignature(signature, size))
        self._announced += size
        if self.decoded_length is not None and self._announced > self.decoded_length:
            raise _incomplete("chunks exceed x-amz-decoded-content-length")
        if size:
            self._remaining = size
            self._go("chunk")
        else:
            self._go("last_chunk")

    def _trailer_line(self, line: bytes) -> None:
        if not line:
            self._go("empty_line")
            return
        self._trailer_bytes += len(line) + 2
        if self._trailer_bytes > _MAX_TRAILERS:
            raise S3Error("MalformedTrailerError", "Trailers too large.")
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise S3Error("MalformedTrailerError")
        self.trailers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        self._go("trailer")

    def finish(self) -> dict[str, str]:
        """Declare the end of the encoded body.

        Returns:
            The trailers (``{}`` when there were none).

        Raises:
            S3Error: ``IncompleteBody`` if the body ended early or its
                length differs from the declared decoded length;
                ``MalformedTrailerError`` if an expected trailer is missing.
        """
        lenient_end = self.state is TRAILERS and not self._line and self.trailers
        if self.state is not DONE and not lenient_end:
            raise _incomplete("body ended before the final chunk")
        if self.decoded_length is not None and self.decoded != self.decoded_length:
            raise _incomplete("decoded length differs from x-amz-decoded-content-length")
        if self.expect_trailer and not self.trailers:
            raise S3Error("MalformedTrailerError", "The declared trailer is missing.")
        self.state = DONE
        return self.trailers
