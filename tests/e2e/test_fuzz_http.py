"""A hypothesis fuzz run against a live server (issue 23, slow): at least 10,000
generated requests -- methods in any case, hostile paths and keys, S3 subresources
with odd values, S3 headers with odd values, XML and binary bodies, chunked
framing -- each on its own connection.  A failure is a 5xx, a hang (no complete
answer within 10 s) or an XML answer that is not well-formed; all are counted and
the first ones printed (``-s``), then asserted zero.
"""

from __future__ import annotations

import os
import socket
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ServerProcess, make_client

REQUESTS = int(os.environ.get("S3GW_FUZZ_REQUESTS", "10000"))
BUCKETS = ["master.fz", "fz", "other.fz", "nosuch", "x" * 70, "A_b", ""]
SUBRESOURCES = ["acl", "uploads", "uploadId", "partNumber", "versions", "versionId", "delete",
                "list-type", "prefix", "delimiter", "marker", "max-keys", "encoding-type",
                "continuation-token", "start-after", "location", "versioning", "tagging", "policy",
                "response-content-type", "response-content-disposition", "key-marker", "max-uploads",
                "x-id", "website", "cors", "lifecycle", "select", "restore", "attributes"]
HEADERS = ["content-md5", "x-amz-content-sha256", "x-amz-copy-source", "x-amz-copy-source-range",
           "range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since",
           "x-amz-acl", "x-amz-grant-read", "x-amz-meta-a", "content-type", "x-amz-checksum-crc32",
           "x-amz-sdk-checksum-algorithm", "x-amz-decoded-content-length", "content-encoding",
           "x-amz-storage-class", "x-amz-tagging", "x-amz-checksum-mode", "authorization",
           "x-amz-date", "x-amz-mp-parts-count", "expect", "x-amz-bucket-object-lock-enabled"]
TEXT = st.one_of(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30),
    st.sampled_from(["", "0", "-1", "99999999999999999999", "bytes=0-", "bytes=5-1", "bytes=-0",
                     "url", "true", "2", "*", '"abc"', "x/y", "../..", "%00", "%ZZ", "a%0Db",
                     "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "UNSIGNED-PAYLOAD", "aws-chunked",
                     "AWS4-HMAC-SHA256 Credential=x", "public-read", "id=\"u\"", "100-continue",
                     "fz/k", "/master.fz/k", "Mon, 01 Jan 2000 00:00:00 GMT", "crc32", "ENABLED"]),
)
PATH_CHARS = st.sampled_from(["a", "b", "/", "%2F", "%00", "%07", "%0D%0A", "..", "%C3%A9", "%FF",
                              "%", "+", " ", "~", "k", "?", "#", "%E2%98%83", "//", "%2e%2e"])
METHODS = st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD", "get", "put", "delete", "Post",
                           "OPTIONS", "PATCH", "TRACE", "CONNECT", "FOO"])
BODIES = st.one_of(
    st.just(b""),
    st.binary(max_size=300),
    st.sampled_from([b"<Delete><Object><Key>k</Key></Object></Delete>",
                     b"<Delete><Object><Key>a\x07b</Key></Object></Delete>",
                     b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag>"
                     b"</Part></CompleteMultipartUpload>",
                     b"<CreateBucketConfiguration><LocationConstraint>us-east-1</LocationConstraint>"
                     b"</CreateBucketConfiguration>",
                     b"<AccessControlPolicy><Owner><ID>x</ID></Owner></AccessControlPolicy>",
                     b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><Delete>&a;</Delete>",
                     b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>",
                     b"a;chunk-signature=x\r\nhello\r\n0\r\n\r\n"]),
)


@st.composite
def requests(draw) -> bytes:
    method = draw(METHODS)
    bucket = draw(st.sampled_from(BUCKETS))
    key = "".join(draw(st.lists(PATH_CHARS, max_size=8)))
    path = "/" + bucket + ("/" + key if draw(st.booleans()) else "")
    params = draw(st.lists(st.tuples(st.sampled_from(SUBRESOURCES), TEXT), max_size=3))
    query = "&".join(k if draw(st.booleans()) and not v else f"{k}={v}" for k, v in params)
    headers = draw(st.lists(st.tuples(st.sampled_from(HEADERS), TEXT), max_size=4))
    body = draw(BODIES)
    chunked = draw(st.booleans()) and method.upper() in ("PUT", "POST")
    head = f"{method} {path}{'?' + query if query else ''} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers if k != "expect")
    if chunked:
        framed = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
        head += "Transfer-Encoding: chunked\r\n"
    else:
        framed = body
        head += f"Content-Length: {len(body)}\r\n"
    head += "Connection: close\r\n\r\n"
    return head.encode("latin-1", "replace") + framed


class Tally:
    def __init__(self):
        self.requests = self.server_errors = self.hangs = self.bad_xml = 0
        self.examples: list[str] = []

    def fail(self, what: str, request: bytes, detail: str) -> None:
        if len(self.examples) < 10:
            self.examples.append(f"{what}: {request[:300]!r} -> {detail[:300]}")


def exchange(port: int, request: bytes) -> tuple[int | None, bytes, bytes]:
    """(status, head, body); status None: no complete answer in time."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(request)
        except OSError:
            pass             # the server may answer and close before reading it all
        data = b""
        try:
            while True:
                piece = sock.recv(65536)
                if not piece:
                    break
                data += piece
        except socket.timeout:
            return None, data, b""
        except OSError:
            pass
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"HTTP/1.1 "):
        return None, data, b""
    return int(head.split()[1]), head, body


@pytest.mark.slow
def test_fuzzed_requests_never_get_500_hang_or_bad_xml(tmp_path):
    srv = ServerProcess(str(tmp_path / "data")).start()
    tally = Tally()
    try:
        s3 = make_client(srv.endpoint)
        s3.create_bucket(Bucket="master.fz")
        s3.create_bucket(Bucket="other.fz")
        s3.put_object(Bucket="master.fz", Key="k", Body=b"hello")
        s3.put_object(Bucket="master.fz", Key="a/b", Body=b"x" * 100_000)

        @settings(max_examples=REQUESTS, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(requests())
        def run(request: bytes) -> None:
            tally.requests += 1
            status, head, body = exchange(srv.port, request)
            if status is None:
                tally.hangs += 1
                tally.fail("hang", request, repr(head[:200]))
                return
            if status >= 500 and status not in (501,):
                tally.server_errors += 1
                tally.fail(f"{status}", request, body.decode("utf-8", "replace"))
            if body and b"xml" in head.lower():
                try:
                    ET.fromstring(body)
                except ET.ParseError as exc:
                    tally.bad_xml += 1
                    tally.fail("bad xml", request, f"{exc}: {body[:200]!r}")

        run()
    finally:
        srv.stop()
    print(f"\nfuzz requests {tally.requests}; 5xx {tally.server_errors}; hangs {tally.hangs}; "
          f"ill-formed XML {tally.bad_xml}")
    for line in tally.examples:
        print(line)
    assert "Traceback" not in srv.log()
    assert tally.requests >= min(REQUESTS, 10_000) * 0.95
    assert tally.server_errors == tally.hangs == tally.bad_xml == 0
