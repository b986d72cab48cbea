"""AWS conditional deletes: If-Match on DeleteObject, <ETag> per key in DeleteObjects."""

import pytest
from botocore.exceptions import ClientError


def error_of(exc_info):
    r = exc_info.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def keys(s3, bucket):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_delete_object_if_match(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=bucket, Key="k", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert error_of(e) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v1"

    r = s3.delete_object(Bucket=bucket, Key="k", IfMatch=etag)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    # the delete is a version (a delete marker), as listed by ListObjectVersions
    assert r["DeleteMarker"] is True
    markers = s3.list_object_versions(Bucket=bucket)["DeleteMarkers"]
    assert [(m["Key"], m["VersionId"]) for m in markers] == [("k", r["VersionId"])]
    assert keys(s3, bucket) == []
    # gone: a conditional delete says so, a plain one succeeds as always
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=bucket, Key="k", IfMatch="*")
    assert error_of(e) == ("NoSuchKey", 404)
    r = s3.delete_object(Bucket=bucket, Key="k")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "DeleteMarker" not in r and "VersionId" not in r    # nothing changed, no commit

    s3.put_object(Bucket=bucket, Key="k", Body=b"v2")
    s3.delete_object(Bucket=bucket, Key="k", IfMatch="*")
    assert keys(s3, bucket) == []


def test_delete_object_directory_bucket_conditions_are_refused(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"abc")
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=bucket, Key="k", IfMatchSize=3)
    assert error_of(e) == ("NotImplemented", 501)
    assert keys(s3, bucket) == ["k"]


def test_delete_objects_etag_per_key_fails_alone(s3, bucket):
    etag_a = s3.put_object(Bucket=bucket, Key="a", Body=b"a")["ETag"]
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    s3.put_object(Bucket=bucket, Key="c", Body=b"c")
    s3.put_object(Bucket=bucket, Key="d", Body=b"d")
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "ETag": etag_a},
        {"Key": "b", "ETag": '"0123456789abcdef0123456789abcdef"'},
        {"Key": "c"},
        {"Key": "d", "ETag": "*"},
        {"Key": "missing", "ETag": "*"},
    ]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["a", "c", "d"]
    assert sorted((x["Key"], x["Code"]) for x in r["Errors"]) == [
        ("b", "PreconditionFailed"), ("missing", "NoSuchKey")]
    assert keys(s3, bucket) == ["b"]


def test_delete_objects_all_conditions_fail_makes_no_commit(s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    before = s3.list_object_versions(Bucket=bucket)["Versions"]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "ETag": '"0123456789abcdef0123456789abcdef"'}], "Quiet": True})
    assert [x["Code"] for x in r["Errors"]] == ["PreconditionFailed"]
    assert "x-amz-version-id" not in r["ResponseMetadata"]["HTTPHeaders"]
    assert s3.list_object_versions(Bucket=bucket)["Versions"] == before
