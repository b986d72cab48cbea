"""S3 behaviours real tools trip on (issue 22), end to end with boto3 and raw HTTP:
retried CompleteMultipartUpload, checksum type and elements in Complete/ListParts,
stored headers byte for byte, DeleteObjects conditions s3gw does not evaluate,
keys that are not UTF-8, CORS preflight.
"""

from __future__ import annotations

import http.client

import pytest
from botocore.exceptions import ClientError

MiB = 1024 * 1024


def _raw(server, method: str, path: str, headers: dict | None = None, body: bytes = b""):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_retried_complete_answers_the_same_result_with_checksum_type(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32")[
        "UploadId"]
    parts = []
    for n, data in ((1, b"a" * (5 * MiB)), (2, b"b" * 100)):
        r = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=n, Body=data,
                           ChecksumAlgorithm="CRC32")
        parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)
    assert listed["ChecksumAlgorithm"] == "CRC32" and listed["ChecksumType"] == "COMPOSITE"
    assert all("ChecksumCRC32" in p for p in listed["Parts"])
    first = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid,
                                         MultipartUpload={"Parts": parts})
    assert first["ChecksumType"] == "COMPOSITE" and first["ChecksumCRC32"].endswith("-2")
    again = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid,
                                         MultipartUpload={"Parts": parts})
    for field in ("ETag", "VersionId", "ChecksumCRC32", "ChecksumType", "Key", "Bucket"):
        assert again[field] == first[field], field
    # another key, or an unknown upload: still NoSuchUpload
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="other", UploadId=uid,
                                     MultipartUpload={"Parts": parts})
    assert e.value.response["Error"]["Code"] == "NoSuchUpload"


def test_stored_headers_byte_for_byte(s3, bucket):
    s3.put_object(Bucket=bucket, Key="enc", Body=b"x", ContentEncoding="deflate, gzip",
                  ContentDisposition='attachment;  filename="a b.txt"')
    head = s3.head_object(Bucket=bucket, Key="enc")
    assert head["ContentEncoding"] == "deflate, gzip"
    assert head["ContentDisposition"] == 'attachment;  filename="a b.txt"'


def test_delete_objects_refuses_conditions_it_does_not_evaluate(server, s3, bucket):
    for k in ("a", "b", "c"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"data")
    body = (b'<Delete><Object><Key>a</Key><Size>4</Size></Object>'
            b'<Object><Key>b</Key><LastModifiedTime>2020-01-01T00:00:00Z</LastModifiedTime>'
            b'</Object><Object><Key>c</Key></Object></Delete>')
    status, _, doc = _raw(server, "POST", f"/{bucket}?delete", body=body)
    assert status == 200
    assert doc.count(b"<Code>NotImplemented</Code>") == 2
    assert b"<Deleted><Key>c</Key>" in doc
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["a", "b"]                   # never deleted unconditionally


def test_key_not_utf8_is_400(server, bucket):
    for path in (f"/{bucket}/%ff", f"/{bucket}/a%C3", f"/{bucket}/%C0%AF"):
        for method in ("GET", "PUT", "DELETE"):
            status, _, doc = _raw(server, method, path)
            assert status == 400 and b"<Code>InvalidURI</Code>" in doc, (method, path, doc)
        status, _, _ = _raw(server, "HEAD", path)
        assert status == 400


def test_cors_preflight_as_a_bucket_without_cors(server, s3, bucket):
    pre = {"Origin": "http://example.com", "Access-Control-Request-Method": "PUT"}
    for path in (f"/{bucket}/k", f"/{bucket}"):
        status, _, doc = _raw(server, "OPTIONS", path, pre)
        assert status == 403 and b"<Code>AccessForbidden</Code>" in doc
        assert b"CORS is not enabled for this bucket" in doc
    status, _, doc = _raw(server, "OPTIONS", f"/{bucket}/k")
    assert status == 400 and b"Origin request header needed" in doc
    status, _, doc = _raw(server, "OPTIONS", "/master.nosuchbucket0/k", pre)
    assert status == 404 and b"<Code>NoSuchBucket</Code>" in doc
