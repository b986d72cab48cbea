"""Multipart uploads end to end: boto3, the aws cli, restarts, expiry, checksums."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import subprocess
import sys
import threading
import time
import uuid
import zlib

import crc32c
import pytest
from awscrt import checksums as awscrt_checksums
from botocore.exceptions import ClientError

from tests.conftest import ServerProcess, make_client

MiB = 1 << 20


def error_of(exc_info):
    r = exc_info.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def mp_etag(datas) -> str:
    return '"%s-%d"' % (hashlib.md5(b"".join(hashlib.md5(d).digest() for d in datas))
                        .hexdigest(), len(datas))


def _parts(*pairs):
    return {"Parts": [{"PartNumber": n, "ETag": e} for n, e in pairs]}


def test_out_of_order_replaced_part_complete_and_part_reads(s3, bucket):
    key = "dir/big file.bin"
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="text/x-test",
                                    Metadata={"color": "blue"})
    uid = up["UploadId"]
    assert all(c.isalnum() or c in "-_" for c in uid)
    p1, p2, p3 = os.urandom(5 * MiB), os.urandom(5 * MiB + 3), os.urandom(1234)
    e3 = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=3, Body=p3)["ETag"]
    s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=2, Body=b"x" * 100)
    e2 = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=2, Body=p2)["ETag"]
    e1 = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=p1)["ETag"]
    assert e2 == '"%s"' % hashlib.md5(p2).hexdigest()
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed] == \
        [(1, len(p1), e1), (2, len(p2), e2), (3, len(p3), e3)]
    # nothing of the upload is visible before Complete
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key=key)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [uid]

    done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                        MultipartUpload=_parts((1, e1), (2, e2), (3, e3)))
    assert done["ETag"] == mp_etag([p1, p2, p3])
    assert done["Location"].endswith(f"/{bucket}/dir/big%20file.bin")   # a URI: encoded
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == p1 + p2 + p3
    assert got["ETag"] == done["ETag"] and got["ContentType"] == "text/x-test"
    assert got["Metadata"] == {"color": "blue"} and got["VersionId"] == done["VersionId"]
    assert "PartsCount" not in got      # S3 sends the count only with partNumber
    part2 = s3.get_object(Bucket=bucket, Key=key, PartNumber=2)
    assert part2["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part2["ContentRange"] == f"bytes {len(p1)}-{len(p1) + len(p2) - 1}/{len(p1 + p2 + p3)}"
    assert part2["PartsCount"] == 3 and part2["Body"].read() == p2
    head3 = s3.head_object(Bucket=bucket, Key=key, PartNumber=3)
    assert head3["ContentLength"] == len(p3) and head3["PartsCount"] == 3
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key=key, PartNumber=4)
    assert error_of(e) == ("InvalidPartNumber", 416)
    # the upload is gone; a retried Complete answers 200 with the same result, as AWS
    again = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                         MultipartUpload=_parts((1, e1)))
    assert (again["ETag"], again["VersionId"]) == (done["ETag"], done["VersionId"])
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)
    assert error_of(e) == ("NoSuchUpload", 404)


def test_parallel_parts(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="par")["UploadId"]
    datas = {n: random.Random(n).randbytes(5 * MiB + n) for n in range(1, 9)}
    etags, errors = {}, []

    def send(n):
        try:
            etags[n] = s3.upload_part(Bucket=bucket, Key="par", UploadId=uid, PartNumber=n,
                                      Body=datas[n])["ETag"]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in sorted(datas, reverse=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    s3.complete_multipart_upload(Bucket=bucket, Key="par", UploadId=uid,
                                 MultipartUpload=_parts(*sorted(etags.items())))
    body = s3.get_object(Bucket=bucket, Key="par")["Body"].read()
    assert body == b"".join(datas[n] for n in sorted(datas))


def test_completion_errors(s3, bucket):
    key = "errs"
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    small = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1,
                           Body=b"a" * 1000)["ETag"]
    last = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=2, Body=b"b")["ETag"]
    cases = [
        (_parts((1, small), (2, last)), ("EntityTooSmall", 400)),
        (_parts((1, '"00000000000000000000000000000000"')), ("InvalidPart", 400)),
        (_parts((1, small), (3, last)), ("InvalidPart", 400)),
        (_parts((2, last), (1, small)), ("InvalidPartOrder", 400)),
    ]
    for body, expected in cases:
        with pytest.raises(ClientError) as e:
            s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                         MultipartUpload=body)
        assert error_of(e) == expected
    # a failed Complete leaves the upload as it was and commits nothing
    assert len(s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)["Parts"]) == 2
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    # a single small part is fine (the last part may be small)
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                 MultipartUpload=_parts((1, small)))
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"a" * 1000


def _one_part_upload(s3, bucket, key, data):
    """A started upload of ``key`` with one part of ``data``: (upload id, parts document)."""
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=data)["ETag"]
    return uid, _parts((1, etag))


def test_conditional_complete_if_none_match(s3, bucket):
    old = s3.put_object(Bucket=bucket, Key="k", Body=b"old")
    uid, parts = _one_part_upload(s3, bucket, "k", b"new")
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=uid,
                                     MultipartUpload=parts, IfNoneMatch="*")
    assert error_of(e) == ("PreconditionFailed", 412)
    assert e.value.response["Error"].get("Condition") == "If-None-Match"
    got = s3.get_object(Bucket=bucket, Key="k")          # the old object, unchanged
    assert got["Body"].read() == b"old" and got["VersionId"] == old["VersionId"]
    # the upload was not consumed: its parts are still there, and it can be completed
    assert len(s3.list_parts(Bucket=bucket, Key="k", UploadId=uid)["Parts"]) == 1
    r = s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=uid, MultipartUpload=parts)
    assert r["ETag"] == mp_etag([b"new"])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"new"
    # on a key that does not exist, If-None-Match: * lets the upload complete
    uid, parts = _one_part_upload(s3, bucket, "fresh", b"first")
    s3.complete_multipart_upload(Bucket=bucket, Key="fresh", UploadId=uid,
                                 MultipartUpload=parts, IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="fresh")["Body"].read() == b"first"
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


def test_conditional_complete_if_match(s3, bucket):
    old = s3.put_object(Bucket=bucket, Key="k", Body=b"old")
    uid, parts = _one_part_upload(s3, bucket, "k", b"new")
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=uid,
                                     MultipartUpload=parts, IfMatch='"nope"')
    assert error_of(e) == ("PreconditionFailed", 412)
    assert e.value.response["Error"].get("Condition") == "If-Match"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"old"
    r = s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=uid,
                                     MultipartUpload=parts, IfMatch=old["ETag"])
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"new" and got["VersionId"] == r["VersionId"]
    # the ETag matched is the current one: the multipart object's, no longer the old one
    uid, parts = _one_part_upload(s3, bucket, "k", b"newer")
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=uid,
                                     MultipartUpload=parts, IfMatch=old["ETag"])
    assert error_of(e) == ("PreconditionFailed", 412)
    s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=uid,
                                 MultipartUpload=parts, IfMatch=r["ETag"])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"newer"


def test_conditional_complete_racing_creators(s3, bucket):
    """Several uploads of one new key completed at once with If-None-Match: *: the
    condition is decided in the commit's transaction, so exactly one wins."""
    uploads = [_one_part_upload(s3, bucket, "race", b"writer %d" % i) for i in range(6)]
    results: list = [None] * len(uploads)
    start = threading.Barrier(len(uploads))

    def complete(i, uid, parts):
        start.wait()
        try:
            s3.complete_multipart_upload(Bucket=bucket, Key="race", UploadId=uid,
                                         MultipartUpload=parts, IfNoneMatch="*")
            results[i] = "ok"
        except ClientError as exc:
            results[i] = exc.response["Error"]["Code"]

    threads = [threading.Thread(target=complete, args=(i, *u)) for i, u in enumerate(uploads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["PreconditionFailed"] * 5 + ["ok"]
    winner = results.index("ok")
    assert s3.get_object(Bucket=bucket, Key="race")["Body"].read() == b"writer %d" % winner
    left = {u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]}
    assert left == {uid for i, (uid, _) in enumerate(uploads) if i != winner}


def test_conditional_complete_if_match_missing_key_then_abort(s3, bucket):
    uid, parts = _one_part_upload(s3, bucket, "absent", b"data")
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="absent", UploadId=uid,
                                     MultipartUpload=parts, IfMatch='"0123"')
    assert error_of(e) == ("NoSuchKey", 404)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    # after the failed condition the upload is still there and can be aborted
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [u["UploadId"] for u in uploads] == [uid]
    r = s3.abort_multipart_upload(Bucket=bucket, Key="absent", UploadId=uid)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_unknown_upload_ids(s3, bucket):
    bogus = "NoSuchUploadIdAtAll_123"
    for call in (
        lambda: s3.upload_part(Bucket=bucket, Key="k", UploadId=bogus, PartNumber=1, Body=b"x"),
        lambda: s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=bogus,
                                             MultipartUpload=_parts((1, "abc"))),
        lambda: s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=bogus),
        lambda: s3.list_parts(Bucket=bucket, Key="k", UploadId=bogus),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == ("NoSuchUpload", 404)
    # an upload id used with another key is unknown there
    uid = s3.create_multipart_upload(Bucket=bucket, Key="k1")["UploadId"]
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="k2", UploadId=uid, PartNumber=1, Body=b"x")
    assert error_of(e) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="k1", UploadId=uid, PartNumber=10001, Body=b"x")
    assert error_of(e) == ("InvalidArgument", 400)


def test_abort_leaves_nothing(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="gone")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="gone", UploadId=uid, PartNumber=1, Body=os.urandom(1000))
    r = s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=uid)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="gone", UploadId=uid)
    assert error_of(e) == ("NoSuchUpload", 404)


def test_list_parts_paging(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="pages")["UploadId"]
    for n in (1, 2, 3, 5, 8):
        s3.upload_part(Bucket=bucket, Key="pages", UploadId=uid, PartNumber=n, Body=b"p%d" % n)
    page = s3.list_parts(Bucket=bucket, Key="pages", UploadId=uid, MaxParts=2)
    assert [p["PartNumber"] for p in page["Parts"]] == [1, 2]
    assert page["IsTruncated"] and page["NextPartNumberMarker"] == 2
    page = s3.list_parts(Bucket=bucket, Key="pages", UploadId=uid, MaxParts=2,
                         PartNumberMarker=page["NextPartNumberMarker"])
    assert [p["PartNumber"] for p in page["Parts"]] == [3, 5] and page["IsTruncated"]
    page = s3.list_parts(Bucket=bucket, Key="pages", UploadId=uid, PartNumberMarker=5)
    assert [p["PartNumber"] for p in page["Parts"]] == [8] and not page["IsTruncated"]
    s3.abort_multipart_upload(Bucket=bucket, Key="pages", UploadId=uid)


def test_list_multipart_uploads_filters_and_markers(s3, bucket):
    ids = {}
    for key in ("a/1", "a/2", "a/sub/3", "b", "c"):
        ids[key] = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    second_c = s3.create_multipart_upload(Bucket=bucket, Key="c")["UploadId"]
    every = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [u["Key"] for u in every] == ["a/1", "a/2", "a/sub/3", "b", "c", "c"]
    assert [u["UploadId"] for u in every][-2:] == [ids["c"], second_c]
    r = s3.list_multipart_uploads(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert [u["Key"] for u in r["Uploads"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/sub/"]
    r = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [u["Key"] for u in r["Uploads"]] == ["b", "c", "c"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/"]
    page = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2)
    assert [u["Key"] for u in page["Uploads"]] == ["a/1", "a/2"] and page["IsTruncated"]
    page = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=3, KeyMarker=page["NextKeyMarker"],
                                     UploadIdMarker=page["NextUploadIdMarker"])
    assert [u["Key"] for u in page["Uploads"]] == ["a/sub/3", "b", "c"] and page["IsTruncated"]
    page = s3.list_multipart_uploads(Bucket=bucket, KeyMarker=page["NextKeyMarker"],
                                     UploadIdMarker=page["NextUploadIdMarker"])
    assert [u["UploadId"] for u in page["Uploads"]] == [second_c] and not page["IsTruncated"]
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket, KeyMarker="b")
            ["Uploads"]] == ["c", "c"]
    for u in every:
        s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])


def test_boto3_upload_file_download_file_copy(s3, bucket, tmp_path):
    src = tmp_path / "src.bin"
    data = random.Random(1).randbytes(21 * MiB + 5)
    src.write_bytes(data)
    s3.upload_file(str(src), bucket, "up.bin")        # multipart at 8 MiB, 10 threads
    head = s3.head_object(Bucket=bucket, Key="up.bin")
    assert head["ETag"].endswith('-3"') and head["ContentLength"] == len(data)
    dst = tmp_path / "dst.bin"
    s3.download_file(bucket, "up.bin", str(dst))      # parallel ranged GETs with If-Match
    assert dst.read_bytes() == data
    s3.copy({"Bucket": bucket, "Key": "up.bin"}, bucket, "copy.bin")   # UploadPartCopy
    s3.download_file(bucket, "copy.bin", str(dst))
    assert dst.read_bytes() == data


def test_aws_cli_cp_multipart_up_and_down(aws, s3, bucket, tmp_path):
    src = tmp_path / "forty.bin"
    data = random.Random(40).randbytes(40 * MiB + 12345)
    src.write_bytes(data)
    aws("s3", "cp", str(src), f"s3://{bucket}/cli/forty.bin")
    head = s3.head_object(Bucket=bucket, Key="cli/forty.bin")
    assert head["ETag"].endswith('-6"') and head["ContentLength"] == len(data)
    back = tmp_path / "back.bin"
    aws("s3", "cp", f"s3://{bucket}/cli/forty.bin", str(back))
    assert back.read_bytes() == data
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


def test_restart_mid_upload_then_complete(tmp_path):
    srv = ServerProcess(str(tmp_path / "data")).start()
    try:
        s3 = make_client(srv.endpoint)
        s3.create_bucket(Bucket="master.restart")
        uid = s3.create_multipart_upload(Bucket="master.restart", Key="k",
                                         ChecksumAlgorithm="SHA256")["UploadId"]
        p1 = os.urandom(5 * MiB)
        e1 = s3.upload_part(Bucket="master.restart", Key="k", UploadId=uid, PartNumber=1,
                            Body=p1, ChecksumAlgorithm="SHA256")["ETag"]
        srv.stop()
        srv.start()
        s3 = make_client(srv.endpoint)
        assert [u["UploadId"] for u in
                s3.list_multipart_uploads(Bucket="master.restart")["Uploads"]] == [uid]
        p2 = b"tail"
        e2 = s3.upload_part(Bucket="master.restart", Key="k", UploadId=uid, PartNumber=2,
                            Body=p2, ChecksumAlgorithm="SHA256")["ETag"]
        s3.complete_multipart_upload(Bucket="master.restart", Key="k", UploadId=uid,
                                     MultipartUpload=_parts((1, e1), (2, e2)))
        assert s3.get_object(Bucket="master.restart", Key="k")["Body"].read() == p1 + p2
    finally:
        srv.stop()


def test_abandoned_uploads_expire(tmp_path):
    srv = ServerProcess(str(tmp_path / "data"), extra_args=["--upload-expiry", "1s"]).start()
    try:
        s3 = make_client(srv.endpoint)
        s3.create_bucket(Bucket="master.expiry")
        uid = s3.create_multipart_upload(Bucket="master.expiry", Key="k")["UploadId"]
        s3.upload_part(Bucket="master.expiry", Key="k", UploadId=uid, PartNumber=1, Body=b"x")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if "Uploads" not in s3.list_multipart_uploads(Bucket="master.expiry"):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the abandoned upload did not expire")
        with pytest.raises(ClientError) as e:
            s3.list_parts(Bucket="master.expiry", Key="k", UploadId=uid)
        assert error_of(e) == ("NoSuchUpload", 404)
    finally:
        srv.stop()
    assert "expired 1 abandoned multipart upload" in srv.log()


def test_gc_keeps_parts_in_progress_and_reclaims_aborted(tmp_path):
    data_dir = str(tmp_path / "data")
    srv = ServerProcess(data_dir).start()

    def gc():
        r = subprocess.run([sys.executable, "-m", "s3gw", "gc", "--data", data_dir, "--grace",
                            "0"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    try:
        s3 = make_client(srv.endpoint)
        s3.create_bucket(Bucket="master.gc")
        keep = s3.create_multipart_upload(Bucket="master.gc", Key="keep")["UploadId"]
        drop = s3.create_multipart_upload(Bucket="master.gc", Key="drop")["UploadId"]
        p1 = os.urandom(5 * MiB)
        e1 = s3.upload_part(Bucket="master.gc", Key="keep", UploadId=keep, PartNumber=1,
                            Body=p1)["ETag"]
        s3.upload_part(Bucket="master.gc", Key="drop", UploadId=drop, PartNumber=1,
                       Body=os.urandom(3 * MiB))
        assert "removed 0 chunks" in gc()          # parts in progress are live
        s3.abort_multipart_upload(Bucket="master.gc", Key="drop", UploadId=drop)
        assert "removed 0 chunks" not in gc()      # the aborted upload's chunks are garbage
        s3.complete_multipart_upload(Bucket="master.gc", Key="keep", UploadId=keep,
                                     MultipartUpload=_parts((1, e1)))
        assert s3.get_object(Bucket="master.gc", Key="keep")["Body"].read() == p1
        assert "removed 0 chunks" in gc()
    finally:
        srv.stop()


# -- checksums --------------------------------------------------------------------------
def _raw(algo, data):
    if algo == "CRC32":
        return zlib.crc32(data).to_bytes(4, "big")
    if algo == "CRC32C":
        return crc32c.crc32c(data).to_bytes(4, "big")
    if algo == "CRC64NVME":
        return awscrt_checksums.crc64nvme(data).to_bytes(8, "big")
    return hashlib.new(algo.lower(), data).digest()


def _b64(raw):
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize("algo", ["CRC32", "CRC32C", "SHA1", "SHA256"])
def test_composite_checksum(s3, bucket, algo):
    key = f"sum-{algo}"
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=algo)
    assert up["ChecksumAlgorithm"] == algo
    datas = [os.urandom(5 * MiB), os.urandom(777)]
    parts = []
    for n, d in enumerate(datas, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=n, Body=d,
                           ChecksumAlgorithm=algo)
        assert r[f"Checksum{algo}"] == _b64(_raw(algo, d))
        parts.append({"PartNumber": n, "ETag": r["ETag"], f"Checksum{algo}": r[f"Checksum{algo}"]})
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=up["UploadId"])["Parts"]
    assert [p[f"Checksum{algo}"] for p in listed] == [p[f"Checksum{algo}"] for p in parts]
    done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": parts})
    composite = _b64(_raw(algo, b"".join(_raw(algo, d) for d in datas))) + "-2"
    assert done[f"Checksum{algo}"] == composite
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head[f"Checksum{algo}"] == composite
    assert f"Checksum{algo}" not in s3.head_object(Bucket=bucket, Key=key)
    ranged = s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-9", ChecksumMode="ENABLED")
    assert ranged["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert not [h for h in ranged["ResponseMetadata"]["HTTPHeaders"] if "checksum" in h]
    part = s3.get_object(Bucket=bucket, Key=key, PartNumber=1, ChecksumMode="ENABLED")
    assert not [h for h in part["ResponseMetadata"]["HTTPHeaders"] if "checksum" in h]


def test_checksum_mismatches(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="bad", ChecksumAlgorithm="CRC32C")
    uid = up["UploadId"]
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="bad", UploadId=uid, PartNumber=1, Body=b"data",
                       ChecksumCRC32C=_b64(b"\0\0\0\0"))
    assert error_of(e) == ("BadDigest", 400)
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="bad", UploadId=uid, PartNumber=1, Body=b"data",
                       ContentMD5=_b64(hashlib.md5(b"other").digest()))
    assert error_of(e) == ("BadDigest", 400)
    # a part sent without the checksum still gets one computed and stored
    r = s3.upload_part(Bucket=bucket, Key="bad", UploadId=uid, PartNumber=1, Body=b"data",
                       ContentMD5=_b64(hashlib.md5(b"data").digest()))
    listed = s3.list_parts(Bucket=bucket, Key="bad", UploadId=uid)["Parts"]
    assert listed[0]["ChecksumCRC32C"] == _b64(_raw("CRC32C", b"data"))
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="bad", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": r["ETag"], "ChecksumCRC32C": _b64(b"\0\0\0\1")}]})
    assert error_of(e) == ("InvalidPart", 400)
    s3.abort_multipart_upload(Bucket=bucket, Key="bad", UploadId=uid)


def test_crc64nvme_put_and_full_object_multipart(s3, bucket):
    data = os.urandom(3 * MiB + 1)
    put = s3.put_object(Bucket=bucket, Key="nvme", Body=data, ChecksumAlgorithm="CRC64NVME")
    assert put["ChecksumCRC64NVME"] == _b64(_raw("CRC64NVME", data))
    got = s3.get_object(Bucket=bucket, Key="nvme", ChecksumMode="ENABLED")
    assert got["ChecksumCRC64NVME"] == put["ChecksumCRC64NVME"]   # botocore validates it too
    assert got["Body"].read() == data
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="nvme2", Body=data, ChecksumCRC64NVME=_b64(b"\0" * 8))
    assert error_of(e) == ("BadDigest", 400)

    up = s3.create_multipart_upload(Bucket=bucket, Key="nvme-mp", ChecksumAlgorithm="CRC64NVME")
    datas = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(10)]
    parts = []
    for n, d in enumerate(datas, 1):
        r = s3.upload_part(Bucket=bucket, Key="nvme-mp", UploadId=up["UploadId"], PartNumber=n,
                           Body=d, ChecksumAlgorithm="CRC64NVME")
        parts.append({"PartNumber": n, "ETag": r["ETag"],
                      "ChecksumCRC64NVME": r["ChecksumCRC64NVME"]})
    whole = _b64(_raw("CRC64NVME", b"".join(datas)))
    done = s3.complete_multipart_upload(Bucket=bucket, Key="nvme-mp", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": parts})
    assert done["ChecksumCRC64NVME"] == whole                       # FULL_OBJECT, no "-N"
    got = s3.get_object(Bucket=bucket, Key="nvme-mp", ChecksumMode="ENABLED")
    assert got["ChecksumCRC64NVME"] == whole and got["Body"].read() == b"".join(datas)


def test_full_object_crc32_with_whole_checksum_on_complete(s3, bucket):
    datas = [os.urandom(5 * MiB), os.urandom(99)]
    whole = _b64(_raw("CRC32", b"".join(datas)))
    up = s3.create_multipart_upload(Bucket=bucket, Key="full", ChecksumAlgorithm="CRC32",
                                    ChecksumType="FULL_OBJECT")
    parts = [{"PartNumber": n, "ETag": s3.upload_part(
        Bucket=bucket, Key="full", UploadId=up["UploadId"], PartNumber=n, Body=d)["ETag"]}
        for n, d in enumerate(datas, 1)]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="full", UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": parts},
                                     ChecksumCRC32=_b64(b"\1\2\3\4"), ChecksumType="FULL_OBJECT")
    assert error_of(e) == ("BadDigest", 400)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="full", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": parts}, ChecksumCRC32=whole,
                                        ChecksumType="FULL_OBJECT", MpuObjectSize=5 * MiB + 99)
    assert done["ChecksumCRC32"] == whole
    assert s3.head_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")["ChecksumCRC32"] \
        == whole


@pytest.mark.slow
def test_aws_cli_cp_multi_gib(aws, s3, tmp_path):
    bucket = f"master.gib{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    src = tmp_path / "big.bin"
    size = (2 << 30) + 4321
    rng = random.Random(2)
    block = rng.randbytes(MiB)
    md5 = hashlib.md5()
    with open(src, "wb") as f:
        written = 0
        i = 0
        while written < size:
            piece = (block[i % 997:] + block[:i % 997])[:size - written]   # varied, cheap
            f.write(piece)
            md5.update(piece)
            written += len(piece)
            i += 1
    aws("s3", "cp", str(src), f"s3://{bucket}/big.bin")
    back = tmp_path / "back.bin"
    aws("s3", "cp", f"s3://{bucket}/big.bin", str(back))
    h = hashlib.md5()
    with open(back, "rb") as f:
        while chunk := f.read(8 * MiB):
            h.update(chunk)
    assert h.hexdigest() == md5.hexdigest()
