"""The HTTP front's edges (issue 23), against a real server: every error reaches the
client as a well-formed S3 answer, and nothing malformed changes anything."""

from __future__ import annotations

import socket
import time
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import ServerProcess, make_client
from tests.e2e.rawhttp import read_response


def raw(port: int, request: bytes, timeout: float = 10) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        return read_response(sock)


def error_code(body: bytes) -> str:
    return ET.fromstring(body).findtext("Code")


def test_head_with_an_oversized_head_gets_its_431(server):
    big = b"x-pad: " + b"a" * (70 * 1024) + b"\r\n"
    for method in (b"GET", b"HEAD"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(method + b" /b/k HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
            data = b""
            while True:             # the server closes after answering
                piece = sock.recv(65536)
                if not piece:
                    break
                data += piece
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 431 "), head[:100]
        if method == b"HEAD":
            assert body == b""
        else:
            assert error_code(body) == "RequestHeaderSectionTooLarge"


@pytest.mark.parametrize("param", ["response-content-type", "response-content-disposition"])
@pytest.mark.parametrize("value", ["a%0D%0AX-Injected:%201", "a%0Ab", "a%00b"])
def test_control_characters_in_response_overrides_are_invalid_argument(s3, bucket, server, param, value):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    for method in ("GET", "HEAD"):
        status, headers, body = raw(server.port, f"{method} /{bucket}/k?{param}={value} HTTP/1.1\r\n"
                                                 "Host: x\r\nConnection: close\r\n\r\n".encode())
        assert status == 400 and "x-injected" not in headers
        if method == "GET":
            assert error_code(body) == "InvalidArgument"


def test_non_ascii_response_override_is_sent_as_utf8(s3, bucket, server):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    status, headers, body = raw(server.port, f"GET /{bucket}/k?response-content-disposition="
                                             "attachment%3B%20filename%3D%E2%98%83 HTTP/1.1\r\n"
                                             "Host: x\r\nConnection: close\r\n\r\n".encode())
    assert status == 200 and body == b"data"
    assert headers["content-disposition"].encode("latin-1").decode("utf-8") == "attachment; filename=\u2603"


@pytest.mark.parametrize("method", ["delete", "get", "Put", "head"])
def test_methods_are_case_sensitive(s3, bucket, server, method):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    status, _, body = raw(server.port, f"{method} /{bucket}/k HTTP/1.1\r\nHost: x\r\n"
                                       "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
    assert status == 501 and error_code(body) == "NotImplemented"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"


@pytest.mark.parametrize("body", [b"<AccessControlPolicy><Owner>", b"not xml at all",
                                  b"<AccessControlPolicy><AccessControlList><Grant><Grantee>"
                                  b"</Grantee></Grant></AccessControlList></AccessControlPolicy>"])
def test_put_bucket_acl_with_a_malformed_body_is_refused_with_auth_off(s3, bucket, server, body):
    status, _, answer = raw(server.port, f"PUT /{bucket}?acl HTTP/1.1\r\nHost: x\r\n"
                                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                                         .encode() + body)
    assert status == 400, answer
    assert error_code(answer) in ("MalformedACLError", "MalformedXML", "InvalidArgument")


def test_keys_with_control_characters_round_trip(s3, bucket, server):
    """boto3 (which lists with encoding-type=url) sees the exact keys; a multipart
    upload of such a key completes (its answers are well-formed XML) and leaves no
    upload behind; a raw listing without encoding-type is well-formed too."""
    key = "a\x07b\x1bc\x01"
    s3.put_object(Bucket=bucket, Key=key, Body=b"one")
    up = s3.create_multipart_upload(Bucket=bucket, Key=key + "mp")
    part = s3.upload_part(Bucket=bucket, Key=key + "mp", UploadId=up["UploadId"], PartNumber=1,
                          Body=b"two")
    s3.complete_multipart_upload(Bucket=bucket, Key=key + "mp", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]) == [key, key + "mp"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert s3.get_object(Bucket=bucket, Key=key + "mp")["Body"].read() == b"two"
    for query in ("", "?list-type=2", "?versions", "?uploads", "?prefix=a%07"):
        status, _, body = raw(server.port, f"GET /{bucket}{query} HTTP/1.1\r\nHost: x\r\n"
                                           "Connection: close\r\n\r\n".encode())
        assert status == 200
        ET.fromstring(body)        # well-formed
    status, _, body = raw(server.port, f"GET /{bucket}/nothing%07here HTTP/1.1\r\nHost: x\r\n"
                                       "Connection: close\r\n\r\n".encode())
    assert status == 404 and error_code(body) == "NoSuchKey"


def test_a_body_trickling_in_is_answered_request_timeout(tmp_path):
    srv = ServerProcess(str(tmp_path / "data"), extra_args=["--body-rate-grace", "2",
                                                            "--body-min-rate", "1024"]).start()
    try:
        s3 = make_client(srv.endpoint)
        s3.create_bucket(Bucket="master.slow")
        socks = []
        for i in range(5):
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            sock.sendall(f"PUT /master.slow/k{i} HTTP/1.1\r\nHost: x\r\n"
                         f"Content-Length: 1000000\r\n\r\n".encode())
            socks.append(sock)
        started = time.monotonic()
        answers = []
        for _ in range(15):               # one byte per second each, bounded
            for sock in socks:
                try:
                    sock.sendall(b"x")
                except OSError:
                    pass
            time.sleep(1)
            if time.monotonic() - started > 4:
                break
        for sock in socks:
            status, _, body = read_response(sock)
            answers.append((status, error_code(body)))
            sock.close()
        assert answers == [(400, "RequestTimeout")] * 5
        assert "k0" not in str(s3.list_objects_v2(Bucket="master.slow").get("Contents", []))
        s3.put_object(Bucket="master.slow", Key="fast", Body=b"x" * 100_000)   # still serving
    finally:
        srv.stop()
