"""Server-side copy end to end: CopyObject and UploadPartCopy through boto3 and raw headers."""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import random
import uuid
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from s3gw.store.chunkstore import LocalChunkStore

MiB = 1 << 20


def error_of(exc_info):
    r = exc_info.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def chunk_files(server):
    """(chunks, bytes) stored: chunk files and packed chunks."""
    return LocalChunkStore(server.data_dir, owner=False).usage()


def test_copy_object_directives(s3, bucket, server):
    data = os.urandom(3 * MiB + 5)
    s3.put_object(Bucket=bucket, Key="src", Body=data, ContentType="image/png",
                  Metadata={"a": "1"})
    before = chunk_files(server)
    r = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert r["CopyObjectResult"]["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
    assert chunk_files(server) == before                     # zero-copy: no chunk written
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == data
    assert got["ContentType"] == "image/png" and got["Metadata"] == {"a": "1"}
    assert got["VersionId"] == r["VersionId"]

    r = s3.copy_object(Bucket=bucket, Key="dst2", CopySource=f"{bucket}/src",
                       MetadataDirective="REPLACE", ContentType="text/plain",
                       Metadata={"b": "2"})
    head = s3.head_object(Bucket=bucket, Key="dst2")
    assert head["ContentType"] == "text/plain" and head["Metadata"] == {"b": "2"}
    assert head["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
    assert chunk_files(server) == before


def test_self_copy_needs_replace(s3, bucket):
    s3.put_object(Bucket=bucket, Key="me", Body=b"hello", Metadata={"mtime": "1"})
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="me", CopySource={"Bucket": bucket, "Key": "me"})
    assert error_of(e) == ("InvalidRequest", 400)
    old = s3.head_object(Bucket=bucket, Key="me")
    s3.copy_object(Bucket=bucket, Key="me", CopySource={"Bucket": bucket, "Key": "me"},
                   MetadataDirective="REPLACE", Metadata={"mtime": "2"})
    new = s3.head_object(Bucket=bucket, Key="me")
    assert new["Metadata"] == {"mtime": "2"} and new["ETag"] == old["ETag"]
    assert new["VersionId"] != old["VersionId"]


def _versions_of(s3, bucket, key):
    """[(version id, is a delete marker)] of ``key``, newest first."""
    r = s3.list_object_versions(Bucket=bucket, Prefix=key)
    out = [(v["VersionId"], False, v["LastModified"]) for v in r.get("Versions", [])
           if v["Key"] == key]
    out += [(d["VersionId"], True, d["LastModified"]) for d in r.get("DeleteMarkers", [])
            if d["Key"] == key]
    out.sort(key=lambda v: v[2], reverse=True)
    return [v[:2] for v in out]


def test_copy_older_version_onto_itself_restores_it(s3, bucket):
    """S3's "restore a previous version": copy that version onto its own key."""
    one = s3.put_object(Bucket=bucket, Key="a", Body=b"one", Metadata={"m": "1"})
    two = s3.put_object(Bucket=bucket, Key="a", Body=b"two")
    r = s3.copy_object(Bucket=bucket, Key="a",
                       CopySource={"Bucket": bucket, "Key": "a", "VersionId": one["VersionId"]})
    assert r["CopyObjectResult"]["ETag"] == one["ETag"]
    assert r["CopySourceVersionId"] == one["VersionId"]
    assert r["VersionId"] not in (one["VersionId"], two["VersionId"])
    got = s3.get_object(Bucket=bucket, Key="a")
    assert got["Body"].read() == b"one" and got["Metadata"] == {"m": "1"}
    assert got["VersionId"] == r["VersionId"] and got["ETag"] == one["ETag"]
    assert _versions_of(s3, bucket, "a") == [(r["VersionId"], False), (two["VersionId"], False),
                                             (one["VersionId"], False)]
    # the versions copied over stay readable as they were
    assert s3.get_object(Bucket=bucket, Key="a",
                         VersionId=two["VersionId"])["Body"].read() == b"two"


def test_copy_older_version_restores_a_deleted_key(s3, bucket):
    one = s3.put_object(Bucket=bucket, Key="gone", Body=b"keep me")
    s3.put_object(Bucket=bucket, Key="other", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="gone")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="gone")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    r = s3.copy_object(Bucket=bucket, Key="gone",
                       CopySource={"Bucket": bucket, "Key": "gone", "VersionId": one["VersionId"]})
    assert r["CopyObjectResult"]["ETag"] == one["ETag"]
    got = s3.get_object(Bucket=bucket, Key="gone")
    assert got["Body"].read() == b"keep me" and got["VersionId"] == r["VersionId"]
    versions = _versions_of(s3, bucket, "gone")
    assert len(versions) == 3
    assert versions[0] == (r["VersionId"], False) and versions[1][1] is True
    assert versions[2] == (one["VersionId"], False)


def test_copy_current_version_onto_itself_still_refused(s3, bucket):
    s3.put_object(Bucket=bucket, Key="c", Body=b"one")
    two = s3.put_object(Bucket=bucket, Key="c", Body=b"two")
    later = s3.put_object(Bucket=bucket, Key="unrelated", Body=b"x")["VersionId"]
    # the current version by its id, by "null", by HEAD, and by a later commit that
    # left the key alone: all name the version that is current, so a self-copy
    for version in (two["VersionId"], "null", "HEAD", later):
        with pytest.raises(ClientError) as e:
            s3.copy_object(Bucket=bucket, Key="c",
                           CopySource={"Bucket": bucket, "Key": "c", "VersionId": version})
        assert error_of(e) == ("InvalidRequest", 400), version
        assert "copy an object to itself" in e.value.response["Error"]["Message"]
    assert len(_versions_of(s3, bucket, "c")) == 2
    # with REPLACE it is allowed, as without a versionId
    r = s3.copy_object(Bucket=bucket, Key="c", MetadataDirective="REPLACE", Metadata={"n": "2"},
                       CopySource={"Bucket": bucket, "Key": "c", "VersionId": two["VersionId"]})
    head = s3.head_object(Bucket=bucket, Key="c")
    assert head["VersionId"] == r["VersionId"] and head["Metadata"] == {"n": "2"}
    assert head["ETag"] == two["ETag"]


def test_copy_across_repos_and_branches(s3, bucket, server):
    other = f"dev.o{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=other)
    data = os.urandom(2 * MiB)
    key = "dir/with space/ü+plus.bin"
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    before = chunk_files(server)
    s3.copy_object(Bucket=other, Key="copied", CopySource={"Bucket": bucket, "Key": key})
    assert s3.get_object(Bucket=other, Key="copied")["Body"].read() == data
    assert chunk_files(server) == before
    # raw copy-source forms: leading slash, percent-encoded, rclone's partly raw
    for i, source in enumerate([f"/{bucket}/{quote(key)}", f"{bucket}/{quote(key, safe='/+')}",
                                f"{bucket}/{quote(key, safe='/+@,;:$=&')}"]):
        _raw_copy(s3, other, f"raw{i}", source)
        assert s3.get_object(Bucket=other, Key=f"raw{i}")["Body"].read() == data


def _raw_copy(s3, bucket, key, source):
    """CopyObject with the x-amz-copy-source header exactly as given (signed)."""

    def set_header(request, **_):
        request.headers["x-amz-copy-source"] = source

    s3.meta.events.register_first("before-sign.s3.CopyObject", set_header)
    try:
        s3.copy_object(Bucket=bucket, Key=key, CopySource="placeholder/x")
    finally:
        s3.meta.events.unregister("before-sign.s3.CopyObject", set_header)


def test_copy_source_version(s3, bucket):
    v1 = s3.put_object(Bucket=bucket, Key="v", Body=b"one")["VersionId"]
    r = s3.copy_object(Bucket=bucket, Key="v-copy",
                       CopySource={"Bucket": bucket, "Key": "v", "VersionId": v1})
    assert r["CopySourceVersionId"] == v1
    assert s3.get_object(Bucket=bucket, Key="v-copy")["Body"].read() == b"one"
    s3.copy_object(Bucket=bucket, Key="v-null",
                   CopySource={"Bucket": bucket, "Key": "v", "VersionId": "null"})
    s3.put_object(Bucket=bucket, Key="v", Body=b"two")
    s3.copy_object(Bucket=bucket, Key="v-old",
                   CopySource={"Bucket": bucket, "Key": "v", "VersionId": v1})
    assert s3.get_object(Bucket=bucket, Key="v-old")["Body"].read() == b"one"
    s3.copy_object(Bucket=bucket, Key="v-pinned",            # a commit-pinned bucket
                   CopySource={"Bucket": f"{v1}.{bucket}", "Key": "v"})
    assert s3.get_object(Bucket=bucket, Key="v-pinned")["Body"].read() == b"one"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x",
                       CopySource={"Bucket": bucket, "Key": "v", "VersionId": "not-a-commit"})
    assert error_of(e) == ("InvalidArgument", 400)


def test_copy_missing_sources(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "nope"})
    assert error_of(e) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": "nosuchrepo9", "Key": "k"})
    assert error_of(e) == ("NoSuchBucket", 404)


def test_conditional_copy(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="c", Body=b"cond")
    etag = put["ETag"]
    past = datetime.datetime(2001, 1, 1, tzinfo=datetime.timezone.utc)
    future = datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc)
    src = {"Bucket": bucket, "Key": "c"}
    for kwargs in ({"CopySourceIfMatch": '"0000"'}, {"CopySourceIfNoneMatch": etag},
                   {"CopySourceIfModifiedSince": future},
                   {"CopySourceIfUnmodifiedSince": past}):
        with pytest.raises(ClientError) as e:
            s3.copy_object(Bucket=bucket, Key="c2", CopySource=src, **kwargs)
        assert error_of(e) == ("PreconditionFailed", 412), kwargs
    for kwargs in ({"CopySourceIfMatch": etag}, {"CopySourceIfNoneMatch": '"0000"'},
                   {"CopySourceIfModifiedSince": past}, {"CopySourceIfUnmodifiedSince": future},
                   {"CopySourceIfMatch": etag, "CopySourceIfUnmodifiedSince": past}):
        s3.copy_object(Bucket=bucket, Key="c2", CopySource=src, **kwargs)


def test_upload_part_copy_ranges(s3, bucket, server):
    data = random.Random(5).randbytes(13 * MiB + 7)
    s3.put_object(Bucket=bucket, Key="big", Body=data)
    src = {"Bucket": bucket, "Key": "big"}
    uid = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    cut = 5 * MiB + 123
    before = chunk_files(server)
    p1 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=1,
                             CopySource=src, CopySourceRange=f"bytes=0-{cut - 1}")
    p2 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=2,
                             CopySource=src, CopySourceRange=f"bytes={cut}-{len(data) - 1}",
                             CopySourceIfMatch=s3.head_object(Bucket=bucket, Key="big")["ETag"])
    p3 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=3,
                             CopySource=src, CopySourceRange="bytes=100-199")
    assert p1["CopyPartResult"]["ETag"] == '"%s"' % hashlib.md5(data[:cut]).hexdigest()
    assert p3["CopyPartResult"]["ETag"] == '"%s"' % hashlib.md5(data[100:200]).hexdigest()
    count, size = chunk_files(server)
    # only the slices of the chunks the cuts fall in were written (max chunk 4 MiB each)
    assert size - before[1] <= 3 * 4 * MiB
    done = s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=uid,
                                        MultipartUpload={"Parts": [
                                            {"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"]},
                                            {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]},
                                            {"PartNumber": 3, "ETag": p3["CopyPartResult"]["ETag"]},
                                        ]})
    assert done["ETag"].endswith('-3"')
    body = s3.get_object(Bucket=bucket, Key="assembled")["Body"].read()
    assert body == data + data[100:200]

    uid = s3.create_multipart_upload(Bucket=bucket, Key="whole")["UploadId"]
    before = chunk_files(server)
    whole = s3.upload_part_copy(Bucket=bucket, Key="whole", UploadId=uid, PartNumber=1,
                                CopySource=src)      # no range: the whole object, zero-copy
    assert chunk_files(server) == before
    assert whole["CopyPartResult"]["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
    for rng in ("bytes=0-99999999999", "bytes=5-1", "items=0-1"):
        with pytest.raises(ClientError) as e:
            s3.upload_part_copy(Bucket=bucket, Key="whole", UploadId=uid, PartNumber=2,
                                CopySource=src, CopySourceRange=rng)
        assert error_of(e) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as e:
        s3.upload_part_copy(Bucket=bucket, Key="whole", UploadId=uid, PartNumber=2,
                            CopySource=src, CopySourceIfNoneMatch=whole["CopyPartResult"]["ETag"])
    assert error_of(e) == ("PreconditionFailed", 412)
    s3.abort_multipart_upload(Bucket=bucket, Key="whole", UploadId=uid)


def test_copy_keeps_parts_and_checksums(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32")
    datas = [os.urandom(5 * MiB), os.urandom(10)]
    parts = []
    for n, d in enumerate(datas, 1):
        r = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=n,
                           Body=d, ChecksumAlgorithm="CRC32")
        parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": parts})
    s3.copy_object(Bucket=bucket, Key="mp-copy", CopySource={"Bucket": bucket, "Key": "mp"})
    head = s3.head_object(Bucket=bucket, Key="mp-copy", ChecksumMode="ENABLED")
    assert head["ETag"] == done["ETag"] and head["ChecksumCRC32"] == done["ChecksumCRC32"]
    assert s3.get_object(Bucket=bucket, Key="mp-copy", PartNumber=2)["Body"].read() == datas[1]
    # a copy that asks for another checksum gets it computed from the data
    r = s3.copy_object(Bucket=bucket, Key="mp-sha", CopySource={"Bucket": bucket, "Key": "mp"},
                       ChecksumAlgorithm="SHA256")
    want = hashlib.sha256(b"".join(datas)).digest()
    assert s3.head_object(Bucket=bucket, Key="mp-sha", ChecksumMode="ENABLED")[
        "ChecksumSHA256"] == base64.b64encode(want).decode()
    assert r["CopyObjectResult"]["ETag"] == done["ETag"]


def test_copy_destination_conditions(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"new")
    old = s3.put_object(Bucket=bucket, Key="dst", Body=b"old")["ETag"]
    src = {"Bucket": bucket, "Key": "src"}
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource=src, IfNoneMatch="*")
    assert error_of(e) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource=src,
                       IfMatch='"0123456789abcdef0123456789abcdef"')
    assert error_of(e) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"old"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="absent", CopySource=src, IfMatch=old)
    assert error_of(e) == ("NoSuchKey", 404)

    s3.copy_object(Bucket=bucket, Key="dst", CopySource=src, IfMatch=old)
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"new"
    s3.copy_object(Bucket=bucket, Key="fresh", CopySource=src, IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="fresh")["Body"].read() == b"new"
