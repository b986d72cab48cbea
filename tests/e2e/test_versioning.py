"""S3 versioning end to end (docs/versioning.md): Get/PutBucketVersioning, the null
version under Suspended, deleting versions by id (boto3, the aws cli), what an
expunged version reads as everywhere, `s3gw log`, and `s3gw gc` reclaiming its chunks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ServerProcess, make_client


def _code(exc: ClientError) -> tuple[str, int]:
    return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]


def _versions(s3, bucket, key=None):
    r = s3.list_object_versions(Bucket=bucket, **({"Prefix": key} if key else {}))
    out = [(v["VersionId"], False, v["IsLatest"]) for v in r.get("Versions", [])]
    out += [(d["VersionId"], True, d["IsLatest"]) for d in r.get("DeleteMarkers", [])]
    # latest first, then the others (boto3 splits versions and markers: order by kind)
    return sorted(out, key=lambda t: (not t[2], t[1], t[0] != "null"))


def _s3gw(*args, data: str) -> str:
    return subprocess.run([sys.executable, "-m", "s3gw", *args, "--data", data],
                          check=True, capture_output=True, text=True, timeout=60).stdout


def test_bucket_versioning_round_trip(s3, bucket):
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={
            "Status": "Enabled", "MFADelete": "Enabled"}, MFA="serial 123456")
    assert _code(e.value) == ("NotImplemented", 501)
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(Bucket="master.nosuchrepo0", VersioningConfiguration={
            "Status": "Enabled"})
    assert _code(e.value) == ("NoSuchBucket", 404)
    v = s3.put_object(Bucket=bucket, Key="k", Body=b"x")["VersionId"]
    repo = bucket.split(".", 1)[1]
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(Bucket=f"{v}.master.{repo}",
                                 VersioningConfiguration={"Status": "Suspended"})
    assert _code(e.value) == ("AccessDenied", 403)


def test_malformed_versioning_configuration(server, bucket):
    import urllib.request
    for body in (b"<VersioningConfiguration><Status>Off</Status></VersioningConfiguration>",
                 b"<VersioningConfiguration/>", b"not xml"):
        req = urllib.request.Request(f"{server.endpoint}/{bucket}?versioning", data=body,
                                     method="PUT")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 400 and b"<Code>MalformedXML</Code>" in e.value.read()


def test_suspended_null_version_rules(s3, bucket):
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"] == "null"
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"three")["VersionId"] == "null"
    # the second null write replaced the first in the version list
    assert _versions(s3, bucket) == [("null", False, True), (v1, False, False)]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"three"
    head = s3.head_object(Bucket=bucket, Key="k", VersionId="null")
    assert head["VersionId"] == "null"
    # a delete makes a null delete marker (replacing the null version)
    r = s3.delete_object(Bucket=bucket, Key="k")
    assert r["DeleteMarker"] is True and r["VersionId"] == "null"
    assert _versions(s3, bucket) == [("null", True, True), (v1, False, False)]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", VersionId="null")
    assert _code(e.value) == ("MethodNotAllowed", 405)
    # Enabled again: new writes get commit ids; the null marker stays a version
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v4 = s3.put_object(Bucket=bucket, Key="k", Body=b"four")["VersionId"]
    assert len(v4) == 32
    assert _versions(s3, bucket) == [(v4, False, True), (v1, False, False),
                                     ("null", True, False)]
    # deleting version null removes it (and the hidden older null versions)
    s3.delete_object(Bucket=bucket, Key="k", VersionId="null")
    assert _versions(s3, bucket) == [(v4, False, True), (v1, False, False)]


def test_delete_versions_by_id(s3, bucket):
    v1 = s3.put_object(Bucket=bucket, Key="f", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="f", Body=b"two")["VersionId"]
    v3 = s3.put_object(Bucket=bucket, Key="f", Body=b"three")["VersionId"]
    repo = bucket.split(".", 1)[1]
    # an older version: gone from the list, unreadable by every path
    r = s3.delete_object(Bucket=bucket, Key="f", VersionId=v2)
    assert r["VersionId"] == v2 and "DeleteMarker" not in r
    assert _versions(s3, bucket) == [(v3, False, True), (v1, False, False)]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="f", VersionId=v2)
    assert _code(e.value) == ("NoSuchVersion", 404)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=f"{v2}.master.{repo}", Key="f")
    assert _code(e.value) == ("NoSuchKey", 404)
    assert "Contents" not in s3.list_objects_v2(Bucket=f"{v2}.master.{repo}")
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="copy",
                       CopySource={"Bucket": bucket, "Key": "f", "VersionId": v2})
    assert _code(e.value) == ("NoSuchVersion", 404)
    # the current version: the previous one is current again, by a new commit
    head = s3.head_object(Bucket=bucket, Key="f")
    assert head["VersionId"] == v3
    s3.delete_object(Bucket=bucket, Key="f", VersionId=v3)
    got = s3.get_object(Bucket=bucket, Key="f")
    assert got["Body"].read() == b"one" and got["VersionId"] == v1
    assert _versions(s3, bucket) == [(v1, False, True)]
    # a delete marker: deleting it makes the version under it current
    d = s3.delete_object(Bucket=bucket, Key="f")["VersionId"]
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="f")
    r = s3.delete_object(Bucket=bucket, Key="f", VersionId=d)
    assert r["DeleteMarker"] is True and r["VersionId"] == d
    assert s3.get_object(Bucket=bucket, Key="f")["Body"].read() == b"one"
    # again, and an id that is no version of the key: 204, nothing changes
    s3.delete_object(Bucket=bucket, Key="f", VersionId=d)
    s3.delete_object(Bucket=bucket, Key="f", VersionId="0" * 32)
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=bucket, Key="f", VersionId="HEAD^")
    assert _code(e.value) == ("InvalidArgument", 400)
    # the last version: the key is gone, and the bucket has no versions left
    s3.delete_object(Bucket=bucket, Key="f", VersionId=v1)
    assert "Versions" not in s3.list_object_versions(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="f")
    assert _code(e.value) == ("NoSuchKey", 404)


def test_delete_objects_with_version_ids(s3, bucket):
    a1 = s3.put_object(Bucket=bucket, Key="a", Body=b"a1")["VersionId"]
    a2 = s3.put_object(Bucket=bucket, Key="a", Body=b"a2")["VersionId"]
    b1 = s3.put_object(Bucket=bucket, Key="b", Body=b"b1")["VersionId"]
    bd = s3.delete_object(Bucket=bucket, Key="b")["VersionId"]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "VersionId": a2}, {"Key": "b", "VersionId": bd},
        {"Key": "a", "VersionId": "bad"}]})
    deleted = {(d["Key"], d["VersionId"], d.get("DeleteMarker", False)) for d in r["Deleted"]}
    assert deleted == {("a", a2, False), ("b", bd, True)}
    assert [(x["Key"], x["Code"]) for x in r["Errors"]] == [("a", "InvalidArgument")]
    assert s3.get_object(Bucket=bucket, Key="a")["VersionId"] == a1
    assert s3.get_object(Bucket=bucket, Key="b")["VersionId"] == b1


def test_boto3_versioned_bucket_cleanup(s3, bucket):
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"d/k{i}", Body=b"x" * i)
        s3.put_object(Bucket=bucket, Key=f"d/k{i}", Body=b"y" * i)
    s3.delete_object(Bucket=bucket, Key="d/k0")
    import boto3
    res = boto3.resource("s3", endpoint_url=s3.meta.endpoint_url, aws_access_key_id="test",
                         aws_secret_access_key="test", region_name="us-east-1")
    res.Bucket(bucket).object_versions.delete()
    r = s3.list_object_versions(Bucket=bucket)
    assert "Versions" not in r and "DeleteMarkers" not in r
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_awscli_delete_version_and_rb_force(aws, s3, bucket, tmp_path):
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    out = json.loads(aws("s3api", "delete-object", "--bucket", bucket, "--key", "k",
                         "--version-id", v2).stdout)
    assert out["VersionId"] == v2
    aws("s3api", "get-object", "--bucket", bucket, "--key", "k", str(tmp_path / "got"))
    assert (tmp_path / "got").read_bytes() == b"one"
    proc = aws("s3api", "get-object", "--bucket", bucket, "--key", "k", "--version-id", v2,
               str(tmp_path / "old"), check=False)
    assert proc.returncode != 0 and "NoSuchVersion" in proc.stderr
    ls = json.loads(aws("s3api", "list-object-versions", "--bucket", bucket).stdout)
    assert [v["VersionId"] for v in ls["Versions"]] == [v1]
    aws("s3api", "put-bucket-versioning", "--bucket", bucket, "--versioning-configuration",
        "Status=Suspended")
    got = json.loads(aws("s3api", "get-bucket-versioning", "--bucket", bucket).stdout)
    assert got["Status"] == "Suspended"
    aws("s3", "rb", "--force", f"s3://{bucket}")
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=bucket)


def test_expunge_in_log_and_gc_reclaims_chunks(tmp_path):
    data = str(tmp_path / "data")
    srv = ServerProcess(data).start()
    try:
        s3 = make_client(srv.endpoint)
        s3.create_bucket(Bucket="master.g")
        big = os.urandom(3 * 1024 * 1024)           # unique chunks, in chunk files
        small = os.urandom(4000)                    # inline in its manifest
        keep = s3.put_object(Bucket="master.g", Key="keep", Body=os.urandom(2 * 1024 * 1024))
        v1 = s3.put_object(Bucket="master.g", Key="big", Body=big)["VersionId"]
        v2 = s3.put_object(Bucket="master.g", Key="big", Body=b"small now")["VersionId"]
        s1 = s3.put_object(Bucket="master.g", Key="s", Body=small)["VersionId"]
        s3.put_object(Bucket="master.g", Key="s", Body=b"other")
        before = json.loads(_s3gw("stats", "--json", data=data))
        s3.delete_object(Bucket="master.g", Key="big", VersionId=v1)
        s3.delete_object(Bucket="master.g", Key="s", VersionId=s1)
        # unreadable at once, reclaimed by gc
        with pytest.raises(ClientError):
            s3.get_object(Bucket="master.g", Key="big", VersionId=v1)
        log = _s3gw("log", "master.g", data=data)
        assert f"expunged /big (version {v1} deleted by anonymous (auth off)" in log
        path_log = _s3gw("log", "master.g", "big", data=data)
        assert v1 in path_log and "expunged" in path_log and v2 in path_log
        _s3gw("gc", "--grace", "0", data=data)
        after = json.loads(_s3gw("stats", "--json", data=data))
        assert after["chunks"] < before["chunks"]
        assert before["stored_bytes"] - after["stored_bytes"] >= len(big)
        assert after["inline_bytes"] <= before["inline_bytes"] - len(small)
        assert after["objects"] == before["objects"] - 2
        # everything else is intact
        assert s3.get_object(Bucket="master.g", Key="big")["Body"].read() == b"small now"
        assert s3.get_object(Bucket="master.g", Key="keep")["ETag"] == keep["ETag"]
        fsck = subprocess.run([sys.executable, "-m", "s3gw", "fsck", "--data", data],
                              capture_output=True, text=True, timeout=60)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    finally:
        srv.stop()
