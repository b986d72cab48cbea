"""Small objects kept in their commits (inline chunks), through a real server.

A PutObject body of up to INLINE_MAX bytes is kept in its manifest, in the
metadata row, so its commit's one WAL sync makes data and commit durable
together.  Everything a stored object does, an inline one does too: whole and
ranged reads, copies, part copies, versions, GC, fsck, stats.
"""

import hashlib
import json
import os
import sqlite3

import pytest

from s3gw.store.manifest import INLINE_MAX
from tests.conftest import ServerProcess, make_client
from tests.e2e.test_durability import s3gw_cli


def _stored_files(data: str) -> list[str]:
    chunks = [f for _d, _s, fs in os.walk(os.path.join(data, "chunks")) for f in fs
              if not f.startswith(".")]
    packs = [f for f in os.listdir(os.path.join(data, "packs")) if f.endswith(".pack")]
    return chunks + packs


def _stats(data: str) -> dict:
    r = s3gw_cli("stats", "--data", data, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def srv(tmp_path):
    server = ServerProcess(str(tmp_path / "data")).start()
    yield server
    server.stop()
    if not getattr(server, "expect_errors", False):
        assert " 500 " not in server.log() and "Traceback" not in server.log(), server.log()


@pytest.mark.parametrize("size", [1, 4096, INLINE_MAX])
def test_small_objects_live_in_the_metadata_and_read_back(srv, size):
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket="master.tiny")
    body = os.urandom(size)
    put = s3.put_object(Bucket="master.tiny", Key="k", Body=body)
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert _stored_files(srv.data_dir) == []           # no chunk file, no pack
    got = s3.get_object(Bucket="master.tiny", Key="k")
    assert got["Body"].read() == body and got["ETag"] == put["ETag"]
    assert s3.head_object(Bucket="master.tiny", Key="k")["ContentLength"] == size
    last = size - 1
    ranged = s3.get_object(Bucket="master.tiny", Key="k", Range=f"bytes={last // 2}-{last}")
    assert ranged["Body"].read() == body[last // 2:]
    stats = _stats(srv.data_dir)
    assert stats["inline_chunks"] == 1 and stats["inline_bytes"] == size
    assert stats["chunks"] == 0 and stats["dedup_ratio"] == 1.0


def test_one_byte_over_the_limit_goes_to_a_pack(srv):
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket="master.tiny")
    body = os.urandom(INLINE_MAX + 1)
    s3.put_object(Bucket="master.tiny", Key="k", Body=body)
    assert len(_stored_files(srv.data_dir)) == 1
    assert _stats(srv.data_dir)["inline_chunks"] == 0
    assert s3.get_object(Bucket="master.tiny", Key="k")["Body"].read() == body


def test_copies_part_copies_and_versions_of_inline_objects(srv):
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket="master.src")
    s3.create_bucket(Bucket="master.dst")
    small = os.urandom(3000)
    v1 = s3.put_object(Bucket="master.src", Key="s", Body=small)["VersionId"]
    # CopyObject, same headers and replaced ones
    s3.copy_object(Bucket="master.dst", Key="c", CopySource={"Bucket": "master.src", "Key": "s"})
    s3.copy_object(Bucket="master.dst", Key="r", CopySource={"Bucket": "master.src", "Key": "s"},
                   MetadataDirective="REPLACE", Metadata={"a": "b"}, ChecksumAlgorithm="SHA256")
    assert s3.get_object(Bucket="master.dst", Key="c")["Body"].read() == small
    r = s3.get_object(Bucket="master.dst", Key="r")
    assert r["Body"].read() == small and r["Metadata"] == {"a": "b"}
    # a multipart upload: a 5 MiB part, then the inline object whole and a slice of it
    big = os.urandom(5 << 20)
    uid = s3.create_multipart_upload(Bucket="master.dst", Key="mp")["UploadId"]
    p1 = s3.upload_part(Bucket="master.dst", Key="mp", UploadId=uid, PartNumber=1, Body=big)
    p2 = s3.upload_part_copy(Bucket="master.dst", Key="mp", UploadId=uid, PartNumber=2,
                             CopySource={"Bucket": "master.src", "Key": "s"})
    s3.complete_multipart_upload(Bucket="master.dst", Key="mp", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": p1["ETag"]},
                  {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket="master.dst", Key="mp")["Body"].read() == big + small
    tail = s3.get_object(Bucket="master.dst", Key="mp", Range=f"bytes={(5 << 20) - 10}-")
    assert tail["Body"].read() == big[-10:] + small
    uid = s3.create_multipart_upload(Bucket="master.dst", Key="slice")["UploadId"]
    p = s3.upload_part_copy(Bucket="master.dst", Key="slice", UploadId=uid, PartNumber=1,
                            CopySource={"Bucket": "master.src", "Key": "s"},
                            CopySourceRange="bytes=100-1099")
    s3.complete_multipart_upload(Bucket="master.dst", Key="slice", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": p["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket="master.dst", Key="slice")["Body"].read() == small[100:1100]
    # versions: the old content stays readable by its version id
    s3.put_object(Bucket="master.src", Key="s", Body=b"second")
    assert s3.get_object(Bucket="master.src", Key="s")["Body"].read() == b"second"
    assert s3.get_object(Bucket="master.src", Key="s", VersionId=v1)["Body"].read() == small
    fsck = s3gw_cli("fsck", "--data", srv.data_dir)
    assert fsck.returncode == 0 and "no problems found" in fsck.stdout, fsck.stdout


def test_gc_keeps_live_inline_objects_and_drops_deleted_ones(srv):
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket="master.keep")
    s3.create_bucket(Bucket="master.drop")
    s3.put_object(Bucket="master.keep", Key="k", Body=b"kept" * 100)
    for i in range(10):
        s3.put_object(Bucket="master.drop", Key=f"d{i}", Body=os.urandom(2000))
    assert _stats(srv.data_dir)["inline_chunks"] == 11
    s3.delete_bucket(Bucket="master.drop")
    r = s3gw_cli("gc", "--data", srv.data_dir, "--grace", "0")
    assert r.returncode == 0 and "10 objects" in r.stdout, r.stdout + r.stderr
    assert "0 chunks referenced" in r.stdout          # nothing of theirs is in the store
    assert _stats(srv.data_dir)["inline_chunks"] == 1
    assert s3.get_object(Bucket="master.keep", Key="k")["Body"].read() == b"kept" * 100


def test_a_corrupt_inline_object_is_reported_never_served(srv):
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket="master.rot")
    body = b"precious" * 500
    s3.put_object(Bucket="master.rot", Key="k", Body=body)
    srv.expect_errors = True                             # the damaged read is logged (DataDamaged)
    db = sqlite3.connect(os.path.join(srv.data_dir, "meta.sqlite"))
    (oid, blob), = db.execute("SELECT id, manifest FROM objects").fetchall()
    damaged = bytearray(blob)
    damaged[-100] ^= 0xFF                               # inside the data, before the padding
    with db:
        db.execute("UPDATE objects SET manifest = ? WHERE id = ?", (bytes(damaged), oid))
    db.close()
    try:
        got = s3.get_object(Bucket="master.rot", Key="k")["Body"].read()
    except Exception:  # noqa: BLE001 - an error, or a cut-off body
        got = None
    assert got is None or (got != body and len(got) < len(body))
    assert "corrupt" in srv.log()
    fsck = s3gw_cli("fsck", "--data", srv.data_dir)
    assert fsck.returncode == 1 and "inline chunk" in fsck.stdout and "DAMAGED" in fsck.stdout, fsck.stdout


def test_the_limit_can_be_set_or_turned_off(tmp_path):
    """``s3gw serve --inline-max 0``: every object goes to the chunk store."""
    srv = ServerProcess(str(tmp_path / "data"), extra_args=["--inline-max", "0"]).start()
    try:
        s3 = make_client(srv.endpoint)
        s3.create_bucket(Bucket="master.off")
        s3.put_object(Bucket="master.off", Key="k", Body=b"x" * 100)
        assert len(_stored_files(srv.data_dir)) == 1
        assert s3.get_object(Bucket="master.off", Key="k")["Body"].read() == b"x" * 100
    finally:
        srv.stop()
    assert _stats(srv.data_dir)["inline_chunks"] == 0
    bad = s3gw_cli("serve", "--data", str(tmp_path / "x"), "--inline-max", "100000")
    assert bad.returncode == 2 and "65536" in bad.stderr


def _requests(srv, method: str, count: int, clients: int, path, body: bytes | None = None,
              size: int | None = None) -> dict:
    """``count`` requests (``path(i)``) from ``clients`` keep-alive connections in
    threads; returns each response's x-amz-version-id; fails on any other answer
    than 200 (or a GET body of another size than ``size``)."""
    import http.client
    import threading

    versions, errors = {}, []

    def client(c: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        for i in range(c, count, clients):
            conn.request(method, path(i), body=body)
            resp = conn.getresponse()
            data = resp.read()
            versions[i] = resp.getheader("x-amz-version-id")
            if resp.status != 200 or (size is not None and len(data) != size):
                errors.append((method, i, resp.status))
        conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    return versions


def test_many_inline_objects_do_not_grow_the_server_with_their_data(srv):
    """The bytes of small objects live in the metadata database; its page cache
    per connection is bounded (pfs.metadata.CACHE_KIB), so writing and reading
    48 MiB of them grows the server by far less than that."""
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket="master.many")
    count, size = 8000, 6144
    before = srv.rss_now_kib()
    _requests(srv, "PUT", count, 4, lambda i: f"/master.many/k{i}", body=os.urandom(size))
    _requests(srv, "GET", count, 4, lambda i: f"/master.many/k{i}", size=size)
    assert _stats(srv.data_dir)["inline_bytes"] == count * size
    grown_mib = (srv.rss_now_kib() - before) / 1024
    # 13-30 MiB measured (glibc's arenas vary from run to run); with 64 MiB SQLite
    # caches it was 156 MiB.  Less than the 47 MiB of object bytes handled: the
    # server keeps no copy of them.
    assert grown_mib < 40, grown_mib


def test_reads_in_worker_threads_keep_small_caches(srv):
    """GETs of versions are looked up in worker threads, each with its own SQLite
    connection; their page caches are small (pfs.metadata.READER_CACHE_KIB), so
    eight clients reading 48 MiB of small objects' versions grow the server by a
    few MiB per thread, not by a full cache each."""
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket="master.many")
    count, size = 8000, 6144
    versions = _requests(srv, "PUT", count, 4, lambda i: f"/master.many/k{i}",
                         body=os.urandom(size))
    before = srv.rss_now_kib()
    srv.reset_rss_peak()
    _requests(srv, "GET", count, 8, lambda i: f"/master.many/k{i}?versionId={versions[i]}",
              size=size)
    grown_mib = (srv.rss_peak_kib() - before) / 1024
    # 13.3-13.4 MiB measured; 42.7-42.8 with the readers' caches as big as the
    # writer's (4 MiB each, S3GW_SQLITE_READER_CACHE_KIB=4096)
    assert grown_mib < 28, grown_mib
