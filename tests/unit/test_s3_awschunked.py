"""aws-chunked: body shapes, incremental decoding in random splits, framing errors."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3gw.s3.wire.awschunked import (
    PLAIN,
    SIGNED,
    SIGNED_TRAILER,
    UNSIGNED_TRAILER,
    AwsChunkedDecoder,
    ChunkSignature,
    body_shape,
)
from s3gw.s3.wire.errors import S3Error

SIG = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def encode(chunks, *, signed=False, trailers=(), sig=SIG):
    out = bytearray()
    for c in [*chunks, b""]:
        ext = f";chunk-signature={sig}" if signed else ""
        out += f"{len(c):x}{ext}\r\n".encode() + c
        if c:
            out += b"\r\n"
    for name, value in trailers:
        out += f"{name}:{value}\r\n".encode()
    out += b"\r\n"
    return bytes(out)


def decode(body, splits, **kw):
    dec = AwsChunkedDecoder(**kw)
    got = bytearray()
    sigs = []
    prev = 0
    for cut in [*sorted(splits), len(body)]:
        for piece in dec.feed(body[prev:cut]):
            assert isinstance(piece, memoryview)
            got += piece
        sigs += dec.take_signatures()
        prev = cut
    return bytes(got), sigs, dec.finish()


# ------------------------------------------------------------ body_shape
@pytest.mark.parametrize(
    "headers,kind,length,sha,trailer",
    [
        ({"content-length": "5", "x-amz-content-sha256": SHA.upper()}, PLAIN, 5, SHA, False),
        ({"content-length": "5", "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}, PLAIN, 5, None, False),
        ({"content-length": "5"}, PLAIN, 5, None, False),  # SigV2 / anonymous
        ({}, PLAIN, None, None, False),
        (  # botocore over https: Transfer-Encoding chunked, no Content-Length
            {"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "content-encoding": "aws-chunked",
             "x-amz-decoded-content-length": "11", "x-amz-trailer": "x-amz-checksum-crc32"},
            UNSIGNED_TRAILER, 11, None, True,
        ),
        (  # minio-go over http: no Content-Encoding
            {"x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "content-length": "300",
             "x-amz-decoded-content-length": "100"},
            SIGNED, 100, None, False,
        ),
        (
            {"x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
             "x-amz-decoded-content-length": "0", "x-amz-trailer": "x-amz-checksum-crc32c"},
            SIGNED_TRAILER, 0, None, True,
        ),
        (  # aws-chunked without a streaming hash
            {"content-encoding": "gzip, aws-chunked", "x-amz-decoded-content-length": "3",
             "x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
            UNSIGNED_TRAILER, 3, None, False,
        ),
    ],
)
def test_body_shape(headers, kind, length, sha, trailer):
    shape = body_shape(headers)
    assert (shape.kind, shape.decoded_length, shape.content_sha256, shape.expect_trailer) == \
        (kind, length, sha, trailer)
    assert shape.aws_chunked == (kind != PLAIN)
    assert (shape.decoder() is None) == (kind == PLAIN)


@pytest.mark.parametrize(
    "headers,code",
    [
        ({"x-amz-content-sha256": "nope"}, "InvalidArgument"),
        ({"x-amz-content-sha256": "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"}, "NotImplemented"),
        ({"content-length": "-1"}, "InvalidArgument"),
        ({"x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
          "x-amz-decoded-content-length": "x"}, "InvalidArgument"),
    ],
)
def test_body_shape_errors(headers, code):
    with pytest.raises(S3Error) as ei:
        body_shape(headers)
    assert ei.value.code == code


# ------------------------------------------------------------ decoding
def test_unsigned_trailer_botocore_shape():
    body = encode([b"hello world"], trailers=[("x-amz-checksum-crc32", "DUoRhQ==")])
    assert body == b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n"
    data, sigs, trailers = decode(body, [], signed=False, expect_trailer=True, decoded_length=11)
    assert data == b"hello world"
    assert sigs == [ChunkSignature(None, 11), ChunkSignature(None, 0)]
    assert trailers == {"x-amz-checksum-crc32": "DUoRhQ=="}


def test_signed_chunks_record_signatures_in_order():
    body = encode([b"a" * 65536, b"b" * 1024], signed=True)
    data, sigs, trailers = decode(body, [7, 70000], signed=True, expect_trailer=False, decoded_length=66560)
    assert data == b"a" * 65536 + b"b" * 1024
    assert sigs == [ChunkSignature(SIG, 65536), ChunkSignature(SIG, 1024), ChunkSignature(SIG, 0)]
    assert trailers == {}


def test_signed_trailer():
    body = encode([b"xyz"], signed=True, trailers=[("x-amz-checksum-crc32c", "AAAA"), ("x-amz-trailer-signature", SIG)])
    data, sigs, trailers = decode(body, [], signed=True, expect_trailer=True)
    assert data == b"xyz" and len(sigs) == 2
    assert trailers == {"x-amz-checksum-crc32c": "AAAA", "x-amz-trailer-signature": SIG}


def test_empty_payload():
    assert decode(b"0\r\n\r\n", [], signed=False, expect_trailer=False, decoded_length=0)[0] == b""


def test_missing_final_blank_line_after_trailers_is_tolerated():
    body = b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAA\r\n"
    assert decode(body, [], signed=False, expect_trailer=True)[2] == {"x-amz-checksum-crc32": "AAAA"}


@settings(max_examples=200, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=300), max_size=6),
    signed=st.booleans(),
    with_trailer=st.booleans(),
    data=st.data(),
)
def test_random_splits(chunks, signed, with_trailer, data):
    trailers = [("x-amz-checksum-crc32", "q83vEg==")] if with_trailer else []
    body = encode(chunks, signed=signed, trailers=trailers)
    splits = data.draw(st.lists(st.integers(0, len(body)), max_size=20))
    payload = b"".join(chunks)
    got, sigs, tr = decode(body, splits, signed=signed, expect_trailer=with_trailer, decoded_length=len(payload))
    assert got == payload
    assert [s.length for s in sigs] == [len(c) for c in chunks] + [0]
    assert tr == dict(trailers)


def test_pieces_are_views_of_the_input_without_copies():
    mib = 1 << 20
    payload = bytes(range(256)) * (4 * mib // 256)
    chunks = [payload[i : i + mib] for i in range(0, len(payload), mib)]
    body = encode(chunks, signed=True)
    dec = AwsChunkedDecoder(signed=True, expect_trailer=False, decoded_length=len(payload))
    out = []
    step = 256 * 1024
    for i in range(0, len(body), step):
        piece_in = body[i : i + step]
        for piece in dec.feed(piece_in):
            assert piece.obj is piece_in  # a slice of the caller's buffer
            out.append(bytes(piece))
    dec.finish()
    assert b"".join(out) == payload
    assert len(dec.take_signatures()) == 5
    assert dec.take_signatures() == []


def test_feed_accepts_memoryview_and_bytearray():
    body = encode([b"abc"])
    dec = AwsChunkedDecoder(signed=False, expect_trailer=False)
    got = [bytes(p) for p in dec.feed(memoryview(bytearray(body)))]
    dec.finish()
    assert b"".join(got) == b"abc"


def _error(body, *, splits=(), **kw):
    kw.setdefault("signed", False)
    kw.setdefault("expect_trailer", False)
    with pytest.raises(S3Error) as ei:
        decode(body, list(splits), **kw)
    return ei.value.code


@pytest.mark.parametrize(
    "body,kw,code",
    [
        (b"3\r\nabc\r\n", {}, "IncompleteBody"),  # no final chunk
        (b"3\r\nab", {}, "IncompleteBody"),  # truncated payload
        (b"", {}, "IncompleteBody"),
        (b"3\r\nabcX\r\n0\r\n\r\n", {}, "IncompleteBody"),  # payload longer than announced
        (b"3\r\nabc\r\r0\r\n\r\n", {}, "IncompleteBody"),
        (b"zz\r\nabc\r\n0\r\n\r\n", {}, "IncompleteBody"),  # bad hex
        (b"-3\r\nabc\r\n0\r\n\r\n", {}, "IncompleteBody"),
        (b" 3\r\nabc\r\n0\r\n\r\n", {}, "IncompleteBody"),
        (b"3\nabc\r\n0\r\n\r\n", {}, "IncompleteBody"),  # LF only
        (b"11111111111111111\r\n", {}, "IncompleteBody"),  # 17 hex digits
        (b"3" * 5000, {}, "IncompleteBody"),  # endless size line
        (b"0\r\n\r\nextra", {}, "IncompleteBody"),  # data after the end
        (b"0\r\n", {}, "IncompleteBody"),  # no blank line, no trailers
        (b"3\r\nabc\r\n0\r\n\r\n", {"decoded_length": 4}, "IncompleteBody"),
        (b"5\r\nabcde\r\n0\r\n\r\n", {"decoded_length": 4}, "IncompleteBody"),
        (b"3\r\nabc\r\n0\r\n\r\n", {"signed": True}, "IncompleteBody"),  # no chunk-signature
        (b"3\r\nabc\r\n0\r\n\r\n", {"expect_trailer": True}, "MalformedTrailerError"),
        (b"0\r\nno-colon\r\n\r\n", {}, "MalformedTrailerError"),
        (b"0\r\n:value\r\n\r\n", {}, "MalformedTrailerError"),
        (b"0\r\n" + b"x-a:" + b"v" * 20000 + b"\r\n\r\n", {}, "IncompleteBody"),  # line cap
        (b"0\r\nx-amz-checksum-crc32:AAAA", {}, "IncompleteBody"),  # cut inside a trailer
    ],
)
def test_framing_errors(body, kw, code):
    assert _error(body, **kw) == code
    assert _error(body, splits=range(len(body)), **kw) == code  # byte by byte


def test_trailer_size_cap():
    lines = b"".join(b"x-amz-t%d:%s\r\n" % (i, b"v" * 1000) for i in range(20))
    assert _error(b"0\r\n" + lines + b"\r\n") == "MalformedTrailerError"
