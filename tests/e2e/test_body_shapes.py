"""The four request body shapes of CLIENTS.md 3.1, sent raw to a real server, plus 100-continue."""

import base64
import hashlib
import socket
import zlib

import pytest

from tests.e2e.rawhttp import read_response


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def aws_chunks(data: bytes, size: int, signed: bool, trailer: str | None) -> bytes:
    out = []
    sig = ";chunk-signature=" + "0" * 64 if signed else ""
    for i in range(0, len(data), size):
        piece = data[i:i + size]
        out.append(f"{len(piece):x}{sig}\r\n".encode() + piece + b"\r\n")
    out.append(f"0{sig}\r\n".encode())
    if trailer:
        out.append(trailer.encode() + b"\r\n")
        if signed:
            out.append(b"x-amz-trailer-signature:" + b"0" * 64 + b"\r\n")
    out.append(b"\r\n")
    return b"".join(out)


def http_chunked(body: bytes, size: int = 7000) -> bytes:
    out = [f"{len(body[i:i + size]):x}\r\n".encode() + body[i:i + size] + b"\r\n"
           for i in range(0, len(body), size)]
    return b"".join(out) + b"0\r\n\r\n"


def send(port, method, path, headers: dict, body: bytes = b""):
    with socket.create_connection(("127.0.0.1", port)) as s:
        headers = dict(headers)
        host = headers.pop("host", "127.0.0.1")
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        s.sendall(head.encode() + body)
        return read_response(s)


DATA = bytes(range(256)) * 400  # 102400 bytes


@pytest.mark.parametrize("shape", ["unsigned-trailer-te", "unsigned-trailer-cl", "signed",
                                   "signed-trailer", "signed-no-content-encoding"])
def test_aws_chunked_shapes_store_decoded_bytes(server, s3, bucket, shape):
    trailer = f"x-amz-checksum-crc32:{crc32_b64(DATA)}"
    headers = {"x-amz-decoded-content-length": str(len(DATA))}
    if shape.startswith("unsigned"):
        encoded = aws_chunks(DATA, 65536, False, trailer)
        headers.update({"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                        "content-encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32"})
    elif shape == "signed-trailer":
        encoded = aws_chunks(DATA, 8192, True, trailer)
        headers.update({"x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
                        "content-encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32"})
    else:
        encoded = aws_chunks(DATA, 8192, True, None)
        headers["x-amz-content-sha256"] = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
        if shape == "signed":
            headers["content-encoding"] = "aws-chunked,gzip"
    if shape == "unsigned-trailer-te":
        headers["transfer-encoding"] = "chunked"
        body = http_chunked(encoded)
    else:
        headers["content-length"] = str(len(encoded))
        body = encoded
    status, resp_headers, resp_body = send(server.port, "PUT", f"/{bucket}/{shape}", headers, body)
    assert status == 200, resp_body
    assert resp_headers["etag"] == f'"{hashlib.md5(DATA).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key=shape)
    assert got["Body"].read() == DATA
    assert got["ContentLength"] == len(DATA)
    if shape == "signed":
        assert got["ContentEncoding"] == "gzip"  # stored without the aws-chunked token


def test_bad_trailer_checksum_is_bad_digest_and_leaves_nothing(server, s3, bucket):
    encoded = aws_chunks(DATA, 65536, False, "x-amz-checksum-crc32:AAAAAA==")
    status, _, body = send(server.port, "PUT", f"/{bucket}/bad", {
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "content-encoding": "aws-chunked",
        "x-amz-trailer": "x-amz-checksum-crc32", "x-amz-decoded-content-length": str(len(DATA)),
        "content-length": str(len(encoded))}, encoded)
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_wrong_decoded_length_is_incomplete_body(server, s3, bucket):
    encoded = aws_chunks(DATA, 65536, False, None)
    status, _, body = send(server.port, "PUT", f"/{bucket}/short", {
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(DATA) + 1), "content-length": str(len(encoded))}, encoded)
    assert status == 400 and b"<Code>IncompleteBody</Code>" in body
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_payload_sha256_mismatch(server, s3, bucket):
    status, _, body = send(server.port, "PUT", f"/{bucket}/sha", {
        "x-amz-content-sha256": hashlib.sha256(b"other").hexdigest(), "content-length": "5"}, b"hello")
    assert status == 400 and b"XAmzContentSHA256Mismatch" in body
    status, _, body = send(server.port, "PUT", f"/{bucket}/sha", {
        "x-amz-content-sha256": hashlib.sha256(b"hello").hexdigest(), "content-length": "5"}, b"hello")
    assert status == 200


def test_put_without_length_is_411(server, bucket):
    status, _, body = send(server.port, "PUT", f"/{bucket}/nolen", {})
    assert status == 411 and b"MissingContentLength" in body


def test_plain_http_chunked_put(server, s3, bucket):
    status, _, body = send(server.port, "PUT", f"/{bucket}/te", {"transfer-encoding": "chunked"},
                           http_chunked(DATA))
    assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key="te")["Body"].read() == DATA


def test_expect_100_continue(server, s3, bucket):
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(f"PUT /{bucket}/cont HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                  f"Expect: 100-continue\r\n\r\n".encode())
        interim = s.recv(100)
        assert interim.startswith(b"HTTP/1.1 100 ")
        s.sendall(b"hello")
        buf = interim.split(b"\r\n\r\n", 1)[1]
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        assert buf.startswith(b"HTTP/1.1 200 ")
    assert s3.get_object(Bucket=bucket, Key="cont")["Body"].read() == b"hello"


def test_expect_100_rejected_without_reading_closes(server):
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"PUT /master.nosuchrepo-xyz/k HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        status, headers, body = read_response(s)
        assert status == 404 and b"NoSuchBucket" in body
        assert s.recv(10) == b""  # the server closed: the body was never sent


def test_malformed_request_gets_s3_xml_400(server):
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        status, headers, body = read_response(s)
    assert status == 400
    assert body.startswith(b"<?xml") and b"<Code>" in body and b"<RequestId>" in body


def test_http_layer_errors_carry_their_own_codes(server, bucket):
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(f"PUT /{bucket}/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
                  f"\r\n".encode())
        status, headers, body = read_response(s)
    assert status == 501 and b"<Code>NotImplemented</Code>" in body   # not a retryable 500
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(f"GET /{bucket}/k HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * 70000}\r\n"
                  f"\r\n".encode())
        status, headers, body = read_response(s)
    assert status == 431 and b"<Code>RequestHeaderSectionTooLarge</Code>" in body


def test_absolute_form_request_target(server, s3, bucket):
    # RFC 9112 3.2.2: a server must accept the absolute form (what a client sends to a proxy)
    s3.put_object(Bucket=bucket, Key="a b", Body=b"absolute")
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(f"GET http://127.0.0.1:{server.port}/{bucket}/a%20b HTTP/1.1\r\n"
                  f"Host: 127.0.0.1:{server.port}\r\n\r\n".encode())
        status, headers, body = read_response(s)
        assert status == 200 and body == b"absolute"
        s.sendall(f"GET HTTP://127.0.0.1:{server.port}/{bucket}?list-type=2 HTTP/1.1\r\n"
                  f"Host: 127.0.0.1:{server.port}\r\n\r\n".encode())
        status, headers, body = read_response(s)
        assert status == 200 and b"<Key>a b</Key>" in body


def test_virtual_host_style_needs_domain(tmp_path):
    from tests.conftest import ServerProcess
    srv = ServerProcess(str(tmp_path / "data"), extra_args=["--domain", "s3.local"]).start()
    try:
        assert send(srv.port, "PUT", "/master.vhost", {"content-length": "0"})[0] == 200
        status, _, _ = send(srv.port, "PUT", "/a/b.txt", {"host": "master.vhost.s3.local",
                                                          "content-length": "2"}, b"hi")
        assert status == 200
        status, _, body = send(srv.port, "GET", "/master.vhost/a/b.txt", {})
        assert (status, body) == (200, b"hi")
    finally:
        srv.stop()


def test_declared_small_but_long_aws_chunked_body_is_4xx(server, s3, bucket):
    data = bytes(1 << 20)
    encoded = aws_chunks(data, 65536, False, None)
    status, _, body = send(server.port, "PUT", f"/{bucket}/liar", {
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "10", "content-length": str(len(encoded))}, encoded)
    assert status == 400 and b"<Code>IncompleteBody</Code>" in body
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
