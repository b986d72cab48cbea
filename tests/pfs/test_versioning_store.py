"""pfs.versioning: versioning status, null versions, expunge (docs/versioning.md)."""

import pytest

from s3gw.pfs.history import VersionExpunged
from s3gw.pfs.metadata import SqliteMetadata
from s3gw.pfs.model import Delete, NoSuchFile, ObjectInfo, Put
from s3gw.pfs.versioning import InvalidVersionStatus


def obj(tag: str):
    return ObjectInfo(size=len(tag), etag=tag, manifest=b"", headers={})


@pytest.fixture
def meta(tmp_path):
    m = SqliteMetadata(str(tmp_path / "meta.sqlite"))
    m.create_branch("r", "master", 0)
    yield m
    m.close()


def put(meta, key, tag, branch="master"):
    return meta.commit("r", branch, [Put(key, obj(tag))], f"PUT {key}", 1).id


def view(meta, branch="master", prefix=""):
    page = meta.versions("r", branch, prefix)
    return [(v.path, v.s3_id, v.object.etag if v.object else None, v.is_latest)
            for v in page.versions]


def test_status_round_trip(meta):
    assert meta.get_versioning("r", "master") == "Enabled"
    assert meta.set_versioning("r", "master", "Suspended", 5) is True
    assert meta.set_versioning("r", "master", "Suspended", 6) is False
    assert meta.get_versioning("r", "master") == "Suspended"
    assert meta.suspended_branches() == {("r", "master")}
    with pytest.raises(InvalidVersionStatus):
        meta.set_versioning("r", "master", "Off", 7)
    meta.create_branch("r", "dev", 8)
    meta.delete_branch("r", "dev")
    meta.create_branch("r", "dev", 9)
    assert meta.get_versioning("r", "dev") == "Enabled"


def test_delete_older_version_and_marker(meta):
    v1, v2, v3 = (put(meta, "k", t) for t in ("a", "b", "c"))
    d = meta.commit("r", "master", [Delete("k")], "DEL", 2).id
    v5 = put(meta, "k", "e")
    res = meta.expunge_version("r", "master", "k", v2, 10, "alice")
    assert res.removed == (v2,) and res.restored is None and not res.delete_marker
    assert view(meta) == [("k", v5, "e", True), ("k", d, None, False), ("k", v3, "c", False),
                          ("k", v1, "a", False)]
    # the version reads as absent wherever it was the content
    with pytest.raises(VersionExpunged):
        meta.stat_at("r", "master", v2, "k")
    assert meta.stat_at("r", "master", v3, "k").object.etag == "c"
    res = meta.expunge_version("r", "master", "k", d, 11)
    assert res.delete_marker and res.removed == (d,)
    assert [x[1] for x in view(meta)] == [v5, v3, v1]
    # again: a no-op
    assert meta.expunge_version("r", "master", "k", v2, 12).removed == ()
    recs = meta.expunges("r")
    assert [(x.commit_id, x.principal) for x in recs] == [(v2, "alice"), (d, None)]


def test_delete_current_version_restores_previous(meta):
    v1, v2 = put(meta, "k", "a"), put(meta, "k", "b")
    head_before = meta.get_branch("r", "master").head
    res = meta.expunge_version("r", "master", "k", v2, 10)
    assert res.restored is not None and res.restored.parent == head_before
    assert meta.get_branch("r", "master").head == res.restored.id
    cur = meta.stat("r", "master", "k")
    assert cur.object.etag == "a" and cur.commit_id == v1
    assert view(meta) == [("k", v1, "a", True)]
    # the restored version, deleted again: the key is gone, no commit needed
    res = meta.expunge_version("r", "master", "k", v1, 11)
    restore = meta.get_branch("r", "master").head
    assert res.restored is None and set(res.removed) == {v1, restore}  # entry + restore entry
    assert view(meta) == []
    with pytest.raises(NoSuchFile):
        meta.stat("r", "master", "k")
    # every commit still there, unchanged
    assert [c.id for c in meta.log("r", "master")][-2:] == [v2, v1]


def test_expunged_version_gone_from_other_branches_and_commits(meta):
    v1 = put(meta, "k", "a")
    meta.create_branch("r", "dev", 3, from_commit=v1)
    put(meta, "other", "o", branch="dev")
    meta.expunge_version("r", "master", "k", v1, 10)
    with pytest.raises(NoSuchFile):
        meta.stat("r", "dev", "k")
    assert [f.path for f in meta.list_at("r", v1)] == []
    # a branch made later from that commit does not see it either
    meta.create_branch("r", "late", 11, from_commit=v1)
    assert meta.list_files("r", "late") == []


def test_suspended_null_versions(meta):
    v1 = put(meta, "k", "a")
    meta.set_versioning("r", "master", "Suspended", 5)
    n1 = put(meta, "k", "b")
    n2 = put(meta, "k", "c")
    assert view(meta) == [("k", "null", "c", True), ("k", v1, "a", False)]
    nv = meta.history.null_version("r", "master", "k")
    assert nv.commit_id == n2
    # the hidden null version stays readable by its commit id
    assert meta.stat_at("r", "master", n1, "k").object.etag == "b"
    d = meta.commit("r", "master", [Delete("k")], "DEL", 6).id
    assert view(meta) == [("k", "null", None, True), ("k", v1, "a", False)]
    meta.set_versioning("r", "master", "Enabled", 7)
    v4 = put(meta, "k", "d")
    assert view(meta)[0] == ("k", v4, "d", True) and view(meta)[1][1] == "null"
    # deleting null removes every null entry (the hidden ones too)
    res = meta.expunge_version("r", "master", "k", "null", 8)
    assert set(res.removed) == {n1, n2, d} and res.delete_marker
    assert view(meta) == [("k", v4, "d", True), ("k", v1, "a", False)]
    with pytest.raises(VersionExpunged):   # the null delete marker, v4's parent
        meta.stat_at("r", "master", f"{v4}^", "k")
    with pytest.raises(VersionExpunged):
        meta.stat_at("r", "master", n1, "k")


def test_pagination_over_restored_versions(meta):
    ids = [put(meta, "k", t) for t in "abcd"]
    meta.expunge_version("r", "master", "k", ids[3], 10)    # restores c
    seen, km, vm = [], None, None
    while True:
        page = meta.versions("r", "master", "", km, vm, 1)
        seen += [v.s3_id for v in page.versions]
        if not page.truncated:
            break
        km, vm = page.next_key_marker, page.next_version_marker
    assert seen == [ids[2], ids[1], ids[0]]
