"""Versions and history through S3, end to end: boto3 and the aws cli against a real server.

Object versions are commits: GET/HEAD ``versionId`` (ids, ``HEAD^``, ``null``),
ListObjectVersions, commit-pinned read-only buckets, DeleteObject with a
versionId (an expunge), conditional PutObject (also racing), Last-Modified stability, and
old versions read after thousands of later commits (a history built with the
pfs API on a data folder, then served).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import time

import pytest
from botocore.exceptions import ClientError

from s3gw.pfs.metadata import SqliteMetadata
from s3gw.pfs.model import Delete, ObjectInfo, Put
from s3gw.store.chunkstore import LocalChunkStore
from s3gw.store.hashing import chunk_checksum, chunk_id
from s3gw.store.manifest import ChunkRef, Manifest

from tests.conftest import ServerProcess, make_client


def _code(exc: ClientError) -> tuple[str, int]:
    return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]


def _history(s3, bucket, key="f.txt"):
    ids = []
    for body in (b"one", b"two", b"three"):
        ids.append(s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"])
    return ids


def test_get_and_head_by_version_id(s3, bucket):
    v1, v2, v3 = _history(s3, bucket)
    s3.put_object(Bucket=bucket, Key="other", Body=b"x")          # a commit not changing f.txt
    for vid, body in ((v1, b"one"), (v2, b"two"), (v3, b"three")):
        got = s3.get_object(Bucket=bucket, Key="f.txt", VersionId=vid)
        assert got["Body"].read() == body
        assert got["VersionId"] == vid
        assert got["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
        head = s3.head_object(Bucket=bucket, Key="f.txt", VersionId=vid)
        assert head["ContentLength"] == len(body) and head["VersionId"] == vid
    cur = s3.get_object(Bucket=bucket, Key="f.txt")
    assert cur["VersionId"] == v3 and cur["Body"].read() == b"three"
    # relative specs: HEAD is the "other" commit; f.txt as it was there is v3
    assert s3.get_object(Bucket=bucket, Key="f.txt", VersionId="HEAD")["Body"].read() == b"three"
    assert s3.get_object(Bucket=bucket, Key="f.txt", VersionId="HEAD^^")["Body"].read() == b"two"
    assert s3.get_object(Bucket=bucket, Key="f.txt", VersionId="HEAD~3")["Body"].read() == b"one"
    assert s3.get_object(Bucket=bucket, Key="f.txt", VersionId="HEAD^3")["Body"].read() == b"one"
    assert s3.get_object(Bucket=bucket, Key="f.txt", VersionId=f"{v3}^")["Body"].read() == b"two"
    assert s3.get_object(Bucket=bucket, Key="f.txt", VersionId=f"{v3}^2")["Body"].read() == b"one"
    assert s3.get_object(Bucket=bucket, Key="f.txt", VersionId="null")["Body"].read() == b"three"
    # ranges and response overrides on an old version
    got = s3.get_object(Bucket=bucket, Key="f.txt", VersionId=v3, Range="bytes=1-3",
                        ResponseContentType="text/x-old", ResponseContentDisposition="inline")
    assert got["Body"].read() == b"hre" and got["ContentType"] == "text/x-old"
    assert got["ContentDisposition"] == "inline" and got["ContentRange"] == "bytes 1-3/5"


def test_version_errors(s3, bucket):
    v1, _, _ = _history(s3, bucket)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="f.txt", VersionId="0" * 32)
    assert _code(e.value) == ("NoSuchVersion", 404)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="f.txt", VersionId=f"{v1}^")     # before the first
    assert _code(e.value) == ("NoSuchVersion", 404)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="f.txt", VersionId="not-a-version")
    assert _code(e.value) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="f.txt", VersionId="0" * 32)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # a file absent at that commit
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="later", VersionId=v1)
    assert _code(e.value) == ("NoSuchKey", 404)
    # a commit of another branch of the same repo is not a version of this bucket
    repo = bucket.split(".", 1)[1]
    s3.create_bucket(Bucket=f"dev.{repo}")
    vdev = s3.put_object(Bucket=f"dev.{repo}", Key="f.txt", Body=b"dev")["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="f.txt", VersionId=vdev)
    assert _code(e.value) == ("NoSuchVersion", 404)


def test_delete_marker_versions(s3, bucket):
    v1 = s3.put_object(Bucket=bucket, Key="gone", Body=b"data")["VersionId"]
    vdel = s3.delete_object(Bucket=bucket, Key="gone")["VersionId"]
    vlater = s3.put_object(Bucket=bucket, Key="x", Body=b"x")["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="gone", VersionId=v1)["Body"].read() == b"data"
    # GET of the delete marker by its version id: 405, x-amz-delete-marker
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="gone", VersionId=vdel)
    assert _code(e.value) == ("MethodNotAllowed", 405)
    headers = e.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-delete-marker"] == "true" and headers["x-amz-version-id"] == vdel
    assert "last-modified" in headers
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="gone", VersionId=vdel)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 405
    # at a later commit the file is deleted: 404 with the delete-marker header
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="gone", VersionId=vlater)
    assert _code(e.value) == ("NoSuchKey", 404)
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"


def test_list_object_versions(s3, bucket):
    v1, v2, v3 = _history(s3, bucket, "b/f")
    a1 = s3.put_object(Bucket=bucket, Key="a", Body=b"a")["VersionId"]
    d = s3.delete_object(Bucket=bucket, Key="a")["VersionId"]
    c1 = s3.put_object(Bucket=bucket, Key="c", Body=b"cc")["VersionId"]
    r = s3.list_object_versions(Bucket=bucket)
    got = [(v["Key"], v["VersionId"], v["IsLatest"]) for v in r["Versions"]]
    assert got == [("a", a1, False), ("b/f", v3, True), ("b/f", v2, False), ("b/f", v1, False),
                   ("c", c1, True)]
    assert [(m["Key"], m["VersionId"], m["IsLatest"]) for m in r["DeleteMarkers"]] == [
        ("a", d, True)]
    assert r["Versions"][1]["ETag"] == f'"{hashlib.md5(b"three").hexdigest()}"'
    assert r["Versions"][1]["Size"] == 5 and r["IsTruncated"] is False
    # delimiter and prefix
    r = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/"]
    assert [v["Key"] for v in r["Versions"]] == ["a", "c"]
    r = s3.list_object_versions(Bucket=bucket, Prefix="b/")
    assert [v["VersionId"] for v in r["Versions"]] == [v3, v2, v1]
    # pagination: versions and delete markers count one each
    seen, kw = [], {}
    while True:
        r = s3.list_object_versions(Bucket=bucket, MaxKeys=2, **kw)
        page = r.get("Versions", []) + r.get("DeleteMarkers", [])
        assert len(page) <= 2
        seen += [(v["Key"], v["VersionId"]) for v in page]
        if not r["IsTruncated"]:
            break
        kw = {"KeyMarker": r["NextKeyMarker"], "VersionIdMarker": r["NextVersionIdMarker"]}
    assert sorted(seen) == sorted([("a", a1), ("a", d), ("b/f", v3), ("b/f", v2), ("b/f", v1),
                                   ("c", c1)])
    assert len(seen) == 6
    # the paginator sees the same
    pages = s3.get_paginator("list_object_versions").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 3})
    assert sum(len(p.get("Versions", [])) for p in pages) == 5


def test_list_object_versions_markers_and_encoding(s3, bucket):
    _history(s3, bucket, "k")
    with pytest.raises(ClientError) as e:
        s3.list_object_versions(Bucket=bucket, VersionIdMarker="0" * 32)
    assert _code(e.value) == ("InvalidArgument", 400)
    r = s3.list_object_versions(Bucket=bucket, KeyMarker="k")
    assert r.get("Versions", []) == []
    s3.put_object(Bucket=bucket, Key="sp ace+é", Body=b"1")
    r = s3.list_object_versions(Bucket=bucket, EncodingType="url", Prefix="sp")
    # asked for explicitly, botocore leaves the keys encoded
    assert [v["Key"] for v in r["Versions"]] == ["sp%20ace%2B%C3%A9"]
    r = s3.list_object_versions(Bucket=bucket, Prefix="sp")     # botocore asks and decodes
    assert [v["Key"] for v in r["Versions"]] == ["sp ace+é"]


def test_pinned_bucket_reads_and_lists_a_commit(s3, bucket):
    repo = bucket.split(".", 1)[1]
    v1 = s3.put_object(Bucket=bucket, Key="d/a", Body=b"a1")["VersionId"]
    s3.put_object(Bucket=bucket, Key="d/b", Body=b"b1")
    pin = s3.put_object(Bucket=bucket, Key="c", Body=b"c1")["VersionId"]
    s3.put_object(Bucket=bucket, Key="d/a", Body=b"a2")
    s3.delete_object(Bucket=bucket, Key="c")
    s3.put_object(Bucket=bucket, Key="new", Body=b"n")
    pinned = f"{pin}.master.{repo}"
    assert s3.get_object(Bucket=pinned, Key="d/a")["Body"].read() == b"a1"
    assert s3.get_object(Bucket=pinned, Key="d/a")["VersionId"] == v1
    assert s3.get_object(Bucket=pinned, Key="c")["Body"].read() == b"c1"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=pinned, Key="new")
    assert _code(e.value) == ("NoSuchKey", 404)
    r = s3.list_objects_v2(Bucket=pinned)
    assert [(o["Key"], o["Size"]) for o in r["Contents"]] == [("c", 2), ("d/a", 2), ("d/b", 2)]
    r = s3.list_objects_v2(Bucket=pinned, Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["c"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["d/"]
    r = s3.list_objects(Bucket=pinned, Prefix="d/", MaxKeys=1)
    assert [o["Key"] for o in r["Contents"]] == ["d/a"] and r["IsTruncated"]
    # versionId relative to the pinned commit
    assert s3.get_object(Bucket=pinned, Key="d/a", VersionId="HEAD^")["Body"].read() == b"a1"
    # read-only: every write is refused, clearly
    for call in (lambda: s3.put_object(Bucket=pinned, Key="z", Body=b"z"),
                 lambda: s3.delete_object(Bucket=pinned, Key="c"),
                 lambda: s3.delete_objects(Bucket=pinned, Delete={"Objects": [{"Key": "c"}]})):
        with pytest.raises(ClientError) as e:
            call()
        assert _code(e.value) == ("AccessDenied", 403)
        assert "read-only" in e.value.response["Error"]["Message"]
    # a commit that is not on the named branch: no such bucket
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=f"{'0' * 32}.master.{repo}")
    assert _code(e.value) == ("NoSuchBucket", 404)


def test_delete_object_with_version_id_deletes_that_version(s3, bucket):
    # (deleting versions by id in full: tests/e2e/test_versioning.py)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"2")["VersionId"]
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v1)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"2"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", VersionId=v1)
    assert _code(e.value) == ("NoSuchVersion", 404)
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=v2)["Body"].read() == b"2"


def test_last_modified_stable_across_unrelated_commits(s3, bucket):
    s3.put_object(Bucket=bucket, Key="stable", Body=b"s")
    head1 = s3.head_object(Bucket=bucket, Key="stable")
    list1 = s3.list_objects_v2(Bucket=bucket)["Contents"][0]["LastModified"]
    time.sleep(1.1)
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"other{i}", Body=b"o")
    s3.delete_object(Bucket=bucket, Key="other0")
    head2 = s3.head_object(Bucket=bucket, Key="stable")
    assert head2["LastModified"] == head1["LastModified"]
    assert head2["VersionId"] == head1["VersionId"]
    contents = {o["Key"]: o for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert contents["stable"]["LastModified"] == list1
    assert contents["other1"]["LastModified"] > list1


def test_conditional_put(s3, bucket):
    r1 = s3.put_object(Bucket=bucket, Key="c", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="c", Body=b"2", IfNoneMatch="*")
    assert _code(e.value) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="c", Body=b"2", IfMatch='"0123"')
    assert _code(e.value) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="absent", Body=b"2", IfMatch=r1["ETag"])
    assert _code(e.value) == ("NoSuchKey", 404)
    r2 = s3.put_object(Bucket=bucket, Key="c", Body=b"2", IfMatch=r1["ETag"])
    r3 = s3.put_object(Bucket=bucket, Key="c", Body=b"3", IfMatch=r2["ETag"].strip('"'))
    assert s3.get_object(Bucket=bucket, Key="c")["VersionId"] == r3["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"3"


def _racers(endpoint, bucket, key, n, tag, **kw):
    def one(i):
        client = make_client(endpoint)
        try:
            return client.put_object(Bucket=bucket, Key=key, Body=f"{tag}{i}".encode(), **kw)
        except ClientError as exc:
            return _code(exc)
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_conditional_put_races_have_one_winner(server, s3, bucket):
    results = _racers(server.endpoint, bucket, "race", 16, "create", IfNoneMatch="*")
    winners = [r for r in results if isinstance(r, dict)]
    assert len(winners) == 1, results
    assert all(r == ("PreconditionFailed", 412) for r in results if not isinstance(r, dict))
    etag = winners[0]["ETag"]
    results = _racers(server.endpoint, bucket, "race", 16, "replace", IfMatch=etag)
    winners = [r for r in results if isinstance(r, dict)]
    assert len(winners) == 1, results
    assert s3.get_object(Bucket=bucket, Key="race")["VersionId"] == winners[0]["VersionId"]
    # history: exactly the two winning commits changed the key
    vs = s3.list_object_versions(Bucket=bucket, Prefix="race")["Versions"]
    assert len(vs) == 2


# -- the aws cli ---------------------------------------------------------------------------
def test_awscli_get_object_version_and_list_versions(aws, s3, bucket, tmp_path):
    v1, v2, _ = _history(s3, bucket)
    out = tmp_path / "out"
    r = aws("s3api", "get-object", "--bucket", bucket, "--key", "f.txt", "--version-id", v1,
            str(out))
    assert out.read_bytes() == b"one" and json.loads(r.stdout)["VersionId"] == v1
    r = aws("s3api", "get-object", "--bucket", bucket, "--key", "f.txt", "--version-id",
            "HEAD^", str(out))
    assert out.read_bytes() == b"two" and json.loads(r.stdout)["VersionId"] == v2
    r = json.loads(aws("s3api", "list-object-versions", "--bucket", bucket).stdout)
    assert [v["VersionId"] for v in r["Versions"]][1:] == [v2, v1]
    r = aws("s3api", "get-object", "--bucket", bucket, "--key", "f.txt", "--version-id",
            "f" * 32, str(out), check=False)
    assert r.returncode != 0 and "NoSuchVersion" in r.stderr


# -- a long history ------------------------------------------------------------------------
def _stored_object(store: LocalChunkStore, data: bytes) -> ObjectInfo:
    batch = store.batch()
    cid = chunk_id(data)
    batch.put(cid, data)
    batch.sync()
    manifest = Manifest([ChunkRef(cid, chunk_checksum(data), len(data))])
    return ObjectInfo(size=len(data), etag=hashlib.md5(data).hexdigest(),
                      manifest=manifest.pack(), headers={"content-type": "text/plain"})


def build_history(data_dir: str, commits: int, keys: int = 10):
    """A repo ``hist`` whose master has ``commits`` commits cycling over ``keys`` keys."""
    os.makedirs(data_dir, exist_ok=True)
    meta = SqliteMetadata(os.path.join(data_dir, "meta.sqlite"), durable=False)
    store = LocalChunkStore(data_dir, fsync=False)
    meta.create_branch("hist", "master", 1)
    ids = []
    for i in range(commits):
        body = f"key{i % keys} version {i}".encode()
        c = meta.commit("hist", "master", [Put(f"key{i % keys}", _stored_object(store, body))],
                        f"PUT {i}", 1_700_000_000_000_000_000 + i * 1_000_000)
        ids.append(c.id)
    meta.commit("hist", "master", [Delete("key0")], "DELETE key0", 1_800_000_000_000_000_000)
    meta.close()
    return ids


@pytest.fixture(scope="module")
def long_history(tmp_path_factory):
    data = str(tmp_path_factory.mktemp("hist") / "data")
    ids = build_history(data, 3000)
    srv = ServerProcess(data).start()
    yield srv, ids
    srv.stop()
    assert "Traceback" not in srv.log()


def test_old_versions_after_thousands_of_commits(long_history, aws_env, tmp_path):
    import subprocess
    srv, ids = long_history
    s3 = make_client(srv.endpoint)
    t = time.perf_counter()
    for i in (0, 1, 7, 1500, 2998):
        got = s3.get_object(Bucket="master.hist", Key=f"key{i % 10}", VersionId=ids[i])
        assert got["Body"].read() == f"key{i % 10} version {i}".encode()
        assert got["VersionId"] == ids[i]
    # any later commit that did not change key1 reads the version of commit 1
    got = s3.get_object(Bucket="master.hist", Key="key1", VersionId=ids[5])
    assert got["Body"].read() == b"key1 version 1" and got["VersionId"] == ids[1]
    assert time.perf_counter() - t < 5
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="master.hist", Key="key0")
    assert _code(e.value) == ("NoSuchKey", 404)
    pinned = f"{ids[0]}.master.hist"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=pinned)["Contents"]] == ["key0"]
    r = s3.list_object_versions(Bucket="master.hist", Prefix="key1", MaxKeys=1000)
    assert len(r["Versions"]) == 300 and r["Versions"][-1]["VersionId"] == ids[1]
    assert r["Versions"][0]["IsLatest"] and not r["Versions"][1]["IsLatest"]
    r = s3.list_object_versions(Bucket="master.hist", Prefix="key0")
    assert r["DeleteMarkers"][0]["IsLatest"] and len(r["Versions"]) == 300
    # the aws cli reads the first version after 3000 commits
    out = tmp_path / "first"
    proc = subprocess.run(["aws", "--endpoint-url", srv.endpoint, "s3api", "get-object",
                           "--bucket", "master.hist", "--key", "key0", "--version-id", ids[0],
                           str(out)], env=aws_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == b"key0 version 0"
    proc = subprocess.run(["aws", "--endpoint-url", srv.endpoint, "s3api",
                           "list-object-versions", "--bucket", "master.hist", "--prefix", "key3"],
                          env=aws_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["Versions"]) == 300
