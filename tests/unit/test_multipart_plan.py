"""Pure multipart/copy planning (s3.parts) and the upload staging tables (pfs.uploads)."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib

import crc32c
import pytest
from awscrt import checksums as awscrt_checksums

from s3gw.pfs.metadata import SqliteMetadata
from s3gw.pfs.model import ObjectInfo, Put
from s3gw.pfs.uploads import NoSuchUpload, PartChanged, PartInfo
from s3gw.s3.wire import parts
from s3gw.s3.wire.errors import S3Error
from s3gw.store.manifest import ChunkRef, Manifest

MiB = 1 << 20


def _part(number, size, data=None, checksums=None):
    data = data if data is not None else bytes([number]) * 8
    ref = ChunkRef(hashlib.sha256(data).digest(), number, size)
    return PartInfo(number, size, hashlib.md5(data).hexdigest(), Manifest([ref]).pack(),
                    checksums or {})


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# -- plan_completion --------------------------------------------------------------------
def test_plan_concatenates_manifests_and_computes_etag():
    stored = {1: _part(1, 5 * MiB), 2: _part(2, 5 * MiB), 3: _part(3, 10)}
    plan = parts.plan_completion([(1, stored[1].etag, {}), (3, f'"{stored[3].etag}"', {})],
                                 stored)
    assert plan.size == 5 * MiB + 10
    assert plan.parts == (5 * MiB, 10)
    assert plan.part_manifests == (stored[1].manifest, stored[3].manifest)
    manifest = Manifest.concat_packed(plan.part_manifests)
    assert manifest == stored[1].manifest + stored[3].manifest
    want = hashlib.md5(bytes.fromhex(stored[1].etag) + bytes.fromhex(stored[3].etag))
    assert plan.etag == f"{want.hexdigest()}-2"
    assert plan.expected == {1: stored[1].etag, 3: stored[3].etag}
    assert Manifest.unpack(manifest).size == plan.size


@pytest.mark.parametrize("requested, code", [
    ([(1, "0" * 32, {})], "InvalidPart"),                 # wrong ETag
    ([(1, None, {}), (4, "0" * 32, {})], "InvalidPart"),  # part never uploaded
    ([(2, None, {}), (3, None, {})], "EntityTooSmall"),   # part 2 (not last) < 5 MiB
])
def test_plan_errors(requested, code):
    stored = {1: _part(1, 5 * MiB), 2: _part(2, 100), 3: _part(3, 100)}
    requested = [(n, e if e is not None else stored[n].etag, c) for n, e, c in requested]
    with pytest.raises(S3Error) as err:
        parts.plan_completion(requested, stored)
    assert err.value.code == code


def test_plan_small_last_part_and_single_small_part_ok():
    stored = {1: _part(1, 1)}
    assert parts.plan_completion([(1, stored[1].etag, {})], stored).size == 1


def test_plan_part_checksum_mismatch_is_invalid_part():
    stored = {1: _part(1, 3, checksums={"crc32": _b64(b"\0\0\0\1")})}
    with pytest.raises(S3Error) as err:
        parts.plan_completion([(1, stored[1].etag, {"crc32": _b64(b"\0\0\0\2")})], stored,
                              checksum_algorithm="crc32", checksum_type="COMPOSITE")
    assert err.value.code == "InvalidPart"


@pytest.mark.parametrize("algo", ["crc32", "crc32c", "sha1", "sha256"])
def test_composite_checksum(algo):
    datas = [os.urandom(5 * MiB), os.urandom(1234)]
    raws = [_digest(algo, d) for d in datas]
    stored = {i + 1: _part(i + 1, len(d), d, {algo: _b64(r)}) for i, (d, r) in
              enumerate(zip(datas, raws))}
    plan = parts.plan_completion([(n, p.etag, {algo: p.checksums[algo]}) for n, p in
                                  stored.items()], stored, checksum_algorithm=algo,
                                 checksum_type="COMPOSITE")
    assert plan.checksums == {algo: _b64(_digest(algo, b"".join(raws))) + "-2"}


@pytest.mark.parametrize("algo", ["crc32", "crc32c", "crc64nvme"])
def test_full_object_crc_equals_crc_of_whole(algo):
    datas = [os.urandom(n) for n in (5 * MiB, 5 * MiB, 1, 0, 77)]
    stored = {i + 1: _part(i + 1, len(d), d, {algo: _b64(_digest(algo, d))})
              for i, d in enumerate(datas)}
    plan = parts.plan_completion([(n, p.etag, {}) for n, p in stored.items()][:3], stored,
                                 checksum_algorithm=algo, checksum_type="FULL_OBJECT",
                                 min_part_size=0)
    assert plan.checksums == {algo: _b64(_digest(algo, b"".join(datas[:3])))}
    assert parts.full_object_crc(algo, [stored[n].checksums[algo] for n in stored],
                                 [len(d) for d in datas]) == _b64(_digest(algo, b"".join(datas)))


def _digest(algo, data):
    if algo == "crc32":
        return zlib.crc32(data).to_bytes(4, "big")
    if algo == "crc32c":
        return crc32c.crc32c(data).to_bytes(4, "big")
    if algo == "crc64nvme":
        return awscrt_checksums.crc64nvme(data).to_bytes(8, "big")
    return hashlib.new(algo, data).digest()


def test_crc_combine_small_cases():
    for a, b in [(b"", b"x"), (b"123", b"456789"), (b"a" * 1000, b"")]:
        assert parts.crc_combine("crc32", zlib.crc32(a), zlib.crc32(b), len(b)) == \
            zlib.crc32(a + b)


def test_checksum_type_rules():
    assert parts.checksum_type_for(None, None) is None
    assert parts.checksum_type_for("crc32", None) == "COMPOSITE"
    assert parts.checksum_type_for("crc64nvme", None) == "FULL_OBJECT"
    assert parts.checksum_type_for("crc32c", "full_object") == "FULL_OBJECT"
    for algo, t in [("sha256", "FULL_OBJECT"), ("crc64nvme", "COMPOSITE"), (None, "COMPOSITE"),
                    ("crc32", "BOGUS")]:
        with pytest.raises(S3Error):
            parts.checksum_type_for(algo, t)


def test_part_range():
    assert parts.part_range((5, 5, 2), 12, 1) == (0, 5)
    assert parts.part_range((5, 5, 2), 12, 3) == (10, 12)
    assert parts.part_range((), 7, 1) == (0, 7)
    with pytest.raises(S3Error) as err:
        parts.part_range((5, 5), 10, 3)
    assert (err.value.code, err.value.status) == ("InvalidPartNumber", 416)


def test_parse_part_number():
    assert parts.parse_part_number("10000") == 10000
    for bad in ("0", "10001", "-1", "x", None, ""):
        with pytest.raises(S3Error):
            parts.parse_part_number(bad)


def test_copy_preconditions():
    etag, t = "abc", 1_700_000_000 * 10**9
    past, future = "Mon, 01 Jan 2001 00:00:00 GMT", "Fri, 01 Jan 2100 00:00:00 GMT"
    p = "x-amz-copy-source-"
    assert parts.copy_preconditions({}, etag, t) is None
    assert parts.copy_preconditions({p + "if-match": '"abc"'}, etag, t) is None
    assert parts.copy_preconditions({p + "if-match": '"x"'}, etag, t) == p + "If-Match"
    assert parts.copy_preconditions({p + "if-none-match": '"abc"'}, etag, t) == \
        p + "If-None-Match"
    assert parts.copy_preconditions({p + "if-modified-since": future}, etag, t) == \
        p + "If-Modified-Since"
    assert parts.copy_preconditions({p + "if-unmodified-since": past}, etag, t) == \
        p + "If-Unmodified-Since"
    # S3: if-match true wins over unmodified-since false
    assert parts.copy_preconditions({p + "if-match": "abc", p + "if-unmodified-since": past},
                                    etag, t) is None
    # if-none-match (true: no match) decides over if-modified-since (RFC 9110 13.2.2)
    assert parts.copy_preconditions({p + "if-none-match": "zzz", p + "if-modified-since": future},
                                    etag, t) is None


def test_parse_copy_range():
    assert parts.parse_copy_range(None, 10) == (0, 10)
    assert parts.parse_copy_range("bytes=2-5", 10) == (2, 6)
    for bad in ("bytes=5-2", "bytes=0-10", "bytes=-3", "2-5", "bytes=1-"):
        with pytest.raises(S3Error) as err:
            parts.parse_copy_range(bad, 10)
        assert err.value.code == "InvalidArgument"


# -- pfs.uploads ------------------------------------------------------------------------
@pytest.fixture
def meta(tmp_path):
    m = SqliteMetadata(str(tmp_path / "meta.sqlite"), durable=False)
    m.create_branch("r", "master", 1)
    yield m
    m.close()


def test_staging_lifecycle(meta):
    st = meta.uploads
    up = st.create("r", "master", "k", {"content-type": "text/plain"}, 10, "crc32", "COMPOSITE")
    assert len(up.id) == 32 and all(c.isalnum() or c in "-_" for c in up.id)
    assert st.get(up.id) == up
    st.put_part(up.id, _part(2, 5))
    st.put_part(up.id, _part(1, 6))
    st.put_part(up.id, PartInfo(2, 7, "ff" * 16, b"", {}))      # replaces part 2
    assert [(p.number, p.size) for p in st.list_parts(up.id)] == [(1, 6), (2, 7)]
    assert [p.number for p in st.list_parts(up.id, after=1)] == [2]
    assert list(meta.referenced_manifests())              # parts' manifests are live
    st.abort(up.id)
    with pytest.raises(NoSuchUpload):
        st.get(up.id)
    with pytest.raises(NoSuchUpload):
        st.abort(up.id)
    with pytest.raises(NoSuchUpload):
        st.put_part(up.id, _part(1, 1))
    assert st.list_parts(up.id) == []


def test_staging_survives_reopen(tmp_path):
    path = str(tmp_path / "meta.sqlite")
    m = SqliteMetadata(path, durable=False)
    up = m.uploads.create("r", "master", "k", {}, 1)
    m.uploads.put_part(up.id, _part(1, 3))
    m.close()
    m = SqliteMetadata(path, durable=False)
    assert m.uploads.get(up.id).key == "k"
    assert [p.size for p in m.uploads.list_parts(up.id)] == [3]
    m.close()


def test_commit_with_upload_removal_is_atomic(meta):
    st = meta.uploads
    up = st.create("r", "master", "k", {}, 1)
    st.put_part(up.id, _part(1, 3))
    obj = ObjectInfo(size=3, etag="e-1", manifest=b"", parts=(3,))
    # a part changed since the plan: nothing committed, upload kept
    with pytest.raises(PartChanged):
        meta.commit("r", "master", [Put("k", obj)], "m", 2,
                    also=st.remove_in(up.id, {1: "other"}))
    assert meta.get_branch("r", "master").head is None
    assert st.get(up.id)
    commit = meta.commit("r", "master", [Put("k", obj)], "m", 2,
                         also=st.remove_in(up.id, {1: _part(1, 3).etag}))
    assert meta.stat("r", "master", "k").commit_id == commit.id
    with pytest.raises(NoSuchUpload):
        st.get(up.id)
    # completing again: rolled back, no second commit
    with pytest.raises(NoSuchUpload):
        meta.commit("r", "master", [Put("k2", obj)], "m", 3, also=st.remove_in(up.id))
    assert meta.get_branch("r", "master").head == commit.id


def test_expire_and_list(meta):
    st = meta.uploads
    a = st.create("r", "master", "a/1", {}, 100)
    b = st.create("r", "master", "a/2", {}, 200)
    c = st.create("r", "master", "b", {}, 300)
    d = st.create("r", "master", "a/1", {}, 400)
    assert [u.id for u in st.list_uploads("r", "master")] == [a.id, d.id, b.id, c.id]
    assert [u.id for u in st.list_uploads("r", "master", "a/")] == [a.id, d.id, b.id]
    assert [u.id for u in st.list_uploads("r", "master", after=("a/1", 100, a.id))] == \
        [d.id, b.id, c.id]
    assert [u.id for u in st.list_uploads("r", "master", limit=2)] == [a.id, d.id]
    assert sorted(st.expire(250)) == sorted([a.id, b.id])
    assert [u.id for u in st.list_uploads("r", "master")] == [d.id, c.id]
