"""Core S3 operations through boto3 against a real server on loopback."""

import base64
import hashlib
import os
import threading
import urllib.request
import uuid
from urllib.parse import unquote_plus

import pytest
from botocore.exceptions import ClientError


def error_of(exc_info):
    r = exc_info.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def test_bucket_lifecycle(s3):
    name = f"dev.repo{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name)
    assert error_of(e) == ("BucketAlreadyOwnedByYou", 409)
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket=name)
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    s3.delete_bucket(Bucket=name)  # even when not empty
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=name)
    assert error_of(e) == ("NoSuchBucket", 404)


def test_create_bucket_with_location_constraint(s3):
    name = f"master.loc{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.head_bucket(Bucket=name)


def test_bare_repo_bucket_is_master(s3):
    repo = f"bare{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=f"master.{repo}")
    s3.put_object(Bucket=repo, Key="k", Body=b"via bare name")
    assert s3.get_object(Bucket=f"master.{repo}", Key="k")["Body"].read() == b"via bare name"


def test_put_get_head_roundtrip_with_metadata(s3, bucket):
    body = os.urandom(300_000)
    r = s3.put_object(Bucket=bucket, Key="dir/file.bin", Body=body, ContentType="application/x-test",
                      ContentDisposition="attachment", CacheControl="max-age=60",
                      Metadata={"color": "blue", "Mixed": "Case"})
    md5 = hashlib.md5(body).hexdigest()
    assert r["ETag"] == f'"{md5}"'
    assert len(r["VersionId"]) == 32
    g = s3.get_object(Bucket=bucket, Key="dir/file.bin")
    assert g["Body"].read() == body
    assert g["ETag"] == f'"{md5}"'
    assert g["ContentType"] == "application/x-test"
    assert g["ContentDisposition"] == "attachment"
    assert g["CacheControl"] == "max-age=60"
    assert g["Metadata"] == {"color": "blue", "mixed": "Case"}
    h = s3.head_object(Bucket=bucket, Key="dir/file.bin")
    assert h["ContentLength"] == len(body) and h["ETag"] == f'"{md5}"'
    assert h["VersionId"] == r["VersionId"]


def test_empty_object(s3, bucket):
    r = s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert r["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    assert s3.get_object(Bucket=bucket, Key="empty")["Body"].read() == b""
    # a tail read of an empty file (Trino, object_store): 200 and the empty body, as S3
    tail = s3.get_object(Bucket=bucket, Key="empty", Range="bytes=-512")
    assert tail["ResponseMetadata"]["HTTPStatusCode"] == 200 and tail["Body"].read() == b""
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="empty", Range="bytes=0-")
    assert error_of(e) == ("InvalidRange", 416)


@pytest.mark.parametrize("rng,expect", [
    ("bytes=0-9", (0, 10)), ("bytes=10-", (10, None)), ("bytes=-7", (-7, None)),
    ("bytes=95-200", (95, None)), ("bytes=0-0", (0, 1)),
])
def test_ranges(s3, bucket, rng, expect):
    body = bytes(range(100))
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    g = s3.get_object(Bucket=bucket, Key="r", Range=rng)
    start, end = expect
    assert g["Body"].read() == body[start:end] if end is not None else body[start:]
    assert g["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert g["ContentRange"].endswith("/100")


def test_unsatisfiable_range(s3, bucket):
    s3.put_object(Bucket=bucket, Key="r", Body=b"abc")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", Range="bytes=5-")
    assert error_of(e) == ("InvalidRange", 416)


def test_multi_chunk_object_ranges(s3, bucket):
    body = os.urandom(9 * 1024 * 1024 + 123)
    s3.put_object(Bucket=bucket, Key="big", Body=body)
    for a, b in [(0, 1), (1024 * 1024 - 5, 3 * 1024 * 1024 + 7), (len(body) - 10, len(body) - 1)]:
        got = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={a}-{b}")["Body"].read()
        assert got == body[a:b + 1]
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == body


def test_content_md5_checked(s3, bucket):
    good = base64.b64encode(hashlib.md5(b"data").digest()).decode()
    s3.put_object(Bucket=bucket, Key="m", Body=b"data", ContentMD5=good)
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="m2", Body=b"data", ContentMD5=bad)
    assert error_of(e) == ("BadDigest", 400)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="m3", Body=b"data", ContentMD5="not-base64!")
    assert error_of(e) == ("InvalidDigest", 400)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["m"]  # failed writes left nothing


def test_checksum_header_checked(s3, bucket):
    r = s3.put_object(Bucket=bucket, Key="c", Body=b"payload", ChecksumAlgorithm="CRC32")
    assert "ChecksumCRC32" in r
    g = s3.get_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert g["Body"].read() == b"payload"
    assert g["ChecksumCRC32"] == r["ChecksumCRC32"]
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="c2", Body=b"payload", ChecksumCRC32="AAAAAA==")
    assert error_of(e) == ("BadDigest", 400)
    s3.put_object(Bucket=bucket, Key="c3", Body=b"payload", ChecksumAlgorithm="SHA256")
    s3.put_object(Bucket=bucket, Key="c4", Body=b"payload", ChecksumAlgorithm="SHA1")


def test_weird_keys_roundtrip(s3, bucket):
    keys = ["a b", "plus+sign", "percent%20lit", "ünïcødé/文件", "deep/" * 50 + "leaf",
            "..", "a/../b", "a//b", "trailing/", "q?x=1&y", "#hash", "~tilde", "*star'(paren)!"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    for k in keys:
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == k.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(keys, key=lambda s: s.encode())
    listed_v1 = [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]]
    assert listed_v1 == listed


def test_key_too_long(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert error_of(e) == ("KeyTooLongError", 400)


def test_listing_delimiter_prefix_and_pagination(s3, bucket):
    keys = [f"photos/2026/{i:03d}.jpg" for i in range(25)] + ["photos/index.html", "readme",
                                                              "videos/a.mp4", "videos/b.mp4"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["photos/", "videos/"]
    assert [o["Key"] for o in top["Contents"]] == ["readme"]
    sub = s3.list_objects_v2(Bucket=bucket, Prefix="photos/", Delimiter="/")
    assert [p["Prefix"] for p in sub["CommonPrefixes"]] == ["photos/2026/"]
    assert [o["Key"] for o in sub["Contents"]] == ["photos/index.html"]
    # pagination v2
    seen, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, MaxKeys=7, **kw)
        seen += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert seen == sorted(keys)
    # pagination v1 with delimiter: prefixes count towards MaxKeys
    p1 = s3.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=2)
    assert p1["IsTruncated"] and p1["NextMarker"] == "readme"
    p2 = s3.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=2, Marker=p1["NextMarker"])
    assert [p["Prefix"] for p in p2["CommonPrefixes"]] == ["videos/"] and not p2["IsTruncated"]
    # start-after, paginator
    sa = s3.list_objects_v2(Bucket=bucket, StartAfter="photos/2026/020.jpg", Prefix="photos/2026/")
    assert [o["Key"] for o in sa["Contents"]] == [f"photos/2026/{i:03d}.jpg" for i in range(21, 25)]
    pages = s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 4})
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == sorted(keys)
    empty = s3.list_objects_v2(Bucket=bucket, Delimiter="")
    assert len(empty["Contents"]) == len(keys)


def test_listing_url_encoding(s3, bucket):
    keys = ["a+b c", "x&y<z>", "ü"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"1")
    got = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]  # boto3 asks url encoding
    assert got == sorted(keys, key=lambda s: s.encode())
    raw = s3.list_objects(Bucket=bucket, EncodingType="url")  # explicit: boto3 leaves it encoded
    assert [o["Key"] for o in raw["Contents"]] == ["a%2Bb%20c", "x%26y%3Cz%3E", "%C3%BC"]
    assert [unquote_plus(o["Key"]) for o in raw["Contents"]] == got


def test_delete_object_and_objects(s3, bucket):
    for k in ["a", "b", "c", "d"]:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    s3.delete_object(Bucket=bucket, Key="a")
    s3.delete_object(Bucket=bucket, Key="never-existed")
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "b"}, {"Key": "c"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["b", "c"]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d"}], "Quiet": True})
    assert "Deleted" not in r
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="a")
    assert error_of(e) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="a")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_acl_canned_and_unsupported_subresources(s3, bucket, server):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="private")
    acl = s3.get_object_acl(Bucket=bucket, Key="k")
    assert acl["Grants"][0]["Permission"] == "FULL_CONTROL"
    s3.put_object_acl(Bucket=bucket, Key="k", ACL="public-read")
    assert s3.get_bucket_acl(Bucket=bucket)["Grants"][0]["Permission"] == "FULL_CONTROL"
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket=bucket)
    assert error_of(e) == ("NotImplemented", 501)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_of(e) == ("NotImplemented", 501)


def test_error_bodies_are_s3_xml(server, bucket):
    req = urllib.request.Request(f"{server.endpoint}/{bucket}/missing")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    body = e.value.read().decode()
    assert e.value.code == 404
    for tag in ("<Code>NoSuchKey</Code>", "<Message>", f"<Resource>/{bucket}/missing</Resource>",
                "<RequestId>"):
        assert tag in body
    assert e.value.headers["x-amz-request-id"]


def test_commit_per_write_and_last_modified(s3, bucket, server):
    s3.put_object(Bucket=bucket, Key="stable", Body=b"1")
    lm = s3.head_object(Bucket=bucket, Key="stable")["LastModified"]
    s3.put_object(Bucket=bucket, Key="other", Body=b"2")
    assert s3.head_object(Bucket=bucket, Key="stable")["LastModified"] == lm
    listed = {o["Key"]: o["LastModified"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed["stable"].replace(microsecond=0) == lm  # header: whole seconds


def test_concurrent_writers_each_commit(s3, bucket, server):
    from tests.conftest import make_client
    errors = []

    def writer(i):
        client = make_client(server.endpoint)
        try:
            for j in range(3):
                client.put_object(Bucket=bucket, Key=f"w{i:02d}/{j}", Body=f"{i}-{j}".encode())
        except Exception as exc:  # pragma: no cover - reported by the assert
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(keys) == 48
    for k in keys:
        i, j = k[1:3], k[-1]
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == f"{int(i)}-{j}".encode()
