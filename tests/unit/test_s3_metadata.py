import base64
import hashlib

import pytest

from s3gw.s3.wire.errors import S3Error
from s3gw.s3.wire.object_headers import content_md5, stored_headers, strip_aws_chunked


def test_stored_headers_pick_and_order():
    headers = [
        ("X-Amz-Meta-Mtime", "1700000000.5"),
        ("Content-Type", "text/csv"),
        ("Content-Encoding", "aws-chunked,gzip"),
        ("x-amz-meta-a", "1"),
        ("x-amz-meta-a", "2"),
        ("Authorization", "AWS4-HMAC-SHA256 …"),
        ("x-amz-acl", "private"),
        ("Cache-Control", "no-cache"),
        ("Expires", "Mon, 23 Nov 2026 08:50:40 GMT"),
        ("Content-Disposition", "attachment"),
        ("Content-Language", "en"),
        ("Content-Length", "5"),
        ("x-amz-meta-", "nameless is not metadata"),
    ]
    assert stored_headers(headers) == [
        ("content-type", "text/csv"),
        ("content-disposition", "attachment"),
        ("cache-control", "no-cache"),
        ("content-encoding", "gzip"),
        ("content-language", "en"),
        ("expires", "Mon, 23 Nov 2026 08:50:40 GMT"),
        ("x-amz-meta-a", "1,2"),
        ("x-amz-meta-mtime", "1700000000.5"),
    ]


def test_stored_headers_mapping_and_aws_chunked_only():
    assert stored_headers({"content-encoding": "aws-chunked"}) == []
    assert stored_headers({}) == []


def test_strip_aws_chunked():
    assert strip_aws_chunked(None) is None
    assert strip_aws_chunked("aws-chunked") is None
    assert strip_aws_chunked("gzip, AWS-CHUNKED") == "gzip"
    assert strip_aws_chunked("deflate, gzip") == "deflate, gzip"       # byte for byte
    assert strip_aws_chunked("aws-chunked, deflate, gzip") == "deflate, gzip"
    assert strip_aws_chunked("gzip,br") == "gzip,br"


def test_metadata_limit():
    ok = {"x-amz-meta-" + "k" * 24: "v" * 2024}  # 24 + 2024 = 2048 bytes
    assert len(stored_headers(ok)) == 1
    with pytest.raises(S3Error) as ei:
        stored_headers({"x-amz-meta-" + "k" * 24: "v" * 2025})
    assert (ei.value.code, ei.value.status) == ("MetadataTooLarge", 400)


def test_acl_values():
    for acl in ("private", "public-read", "bucket-owner-full-control"):
        stored_headers({"x-amz-acl": acl})
    with pytest.raises(S3Error) as ei:
        stored_headers({"x-amz-acl": "everyone"})
    assert ei.value.code == "InvalidArgument"


def test_content_md5():
    digest = hashlib.md5(b"hello").digest()
    assert content_md5(None) is None
    assert content_md5(base64.b64encode(digest).decode()) == digest
    assert content_md5(" " + base64.b64encode(digest).decode() + " ") == digest
    for bad in ("", "not base64!", base64.b64encode(b"short").decode(), digest.hex(), "\u00fc"):
        with pytest.raises(S3Error) as ei:
            content_md5(bad)
        assert (ei.value.code, ei.value.status) == ("InvalidDigest", 400)


def test_metadata_limit_counts_wire_octets():
    value = ("\u00fc" * 1000).encode("utf-8").decode("latin-1")  # 2000 octets as latin-1 text
    assert stored_headers({"x-amz-meta-k": value}) == [("x-amz-meta-k", value)]
    with pytest.raises(S3Error):
        stored_headers({"x-amz-meta-k": value + "x" * 48})
