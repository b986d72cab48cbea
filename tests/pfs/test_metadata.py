"""PFS metadata: branches, atomic commits, trees, history, concurrency."""

import threading

import pytest

from s3gw.pfs.metadata import SqliteMetadata, prefix_upper_bound
from s3gw.pfs.model import (
    BranchExists, ConditionFailed, Delete, NoSuchBranch, NoSuchFile, ObjectInfo, Put,
)


def obj(n=1, etag="e"):
    return ObjectInfo(size=n, etag=etag, manifest=b"", headers={"content-type": "x/y"})


@pytest.fixture
def meta(tmp_path):
    m = SqliteMetadata(str(tmp_path / "meta.sqlite"))
    yield m
    m.close()


def test_branch_lifecycle(meta):
    b = meta.create_branch("images", "master", 1)
    assert b.head is None
    with pytest.raises(BranchExists):
        meta.create_branch("images", "master", 2)
    meta.create_branch("images", "dev", 3)
    assert [(x.repo, x.name) for x in meta.list_branches()] == [("images", "dev"), ("images", "master")]
    meta.delete_branch("images", "dev")
    assert [r.name for r in meta.list_repos()] == ["images"]
    meta.delete_branch("images", "master")
    assert meta.list_repos() == []
    with pytest.raises(NoSuchBranch):
        meta.delete_branch("images", "master")


def test_commits_chain_and_tree(meta):
    meta.create_branch("r", "master", 0)
    c1 = meta.commit("r", "master", [Put("a/b.csv", obj(1, "e1"))], "PUT /a/b.csv", 10)
    c2 = meta.commit("r", "master", [Put("c", obj(2, "e2"))], "PUT /c", 20)
    assert c2.parent == c1.id and c2.depth == c1.depth + 1
    assert len(c1.id) == 32
    f = meta.stat("r", "master", "a/b.csv")
    assert f.commit_id == c1.id and f.time_ns == 10 and f.object.etag == "e1"
    assert f.object.headers == {"content-type": "x/y"}
    c3 = meta.commit("r", "master", [Delete("a/b.csv"), Delete("nope")], "DELETE", 30)
    with pytest.raises(NoSuchFile):
        meta.stat("r", "master", "a/b.csv")
    assert meta.commit("r", "master", [Delete("nope")], "DELETE", 40) is None
    assert [c.id for c in meta.log("r", "master")] == [c3.id, c2.id, c1.id]


def test_list_files_order_prefix_after(meta):
    meta.create_branch("r", "master", 0)
    keys = ["a", "a/b", "a/c", "ab", "b", "é", "z", "\U0001f600"]
    meta.commit("r", "master", [Put(k, obj()) for k in keys], "PUT", 1)
    assert [f.path for f in meta.list_files("r", "master")] == sorted(keys, key=lambda k: k.encode())
    assert [f.path for f in meta.list_files("r", "master", prefix="a/")] == ["a/b", "a/c"]
    assert [f.path for f in meta.list_files("r", "master", after="ab")] == ["b", "z", "é", "\U0001f600"]
    assert [f.path for f in meta.list_files("r", "master", prefix="a", after="a/b")] == ["a/c", "ab"]
    assert [f.path for f in meta.list_files("r", "master", limit=2)] == ["a", "a/b"]


def testprefix_upper_bound():
    assert prefix_upper_bound("a/") == "a0"
    assert prefix_upper_bound("\U0010ffff") is None
    assert prefix_upper_bound("x\U0010ffff") == "y"


def test_condition_checked_inside_transaction(meta):
    meta.create_branch("r", "master", 0)

    def only_if_absent(path, current):
        if current is not None:
            raise ConditionFailed(path)

    meta.commit("r", "master", [Put("k", obj())], "PUT", 1, condition=only_if_absent)
    with pytest.raises(ConditionFailed):
        meta.commit("r", "master", [Put("k", obj())], "PUT", 2, condition=only_if_absent)
    assert len(meta.log("r", "master")) == 1


def test_concurrent_writers_each_get_a_commit(meta):
    meta.create_branch("r", "master", 0)
    errors = []

    def writer(i):
        try:
            for j in range(5):
                meta.commit("r", "master", [Put(f"w{i}/{j}", obj())], f"PUT {i}/{j}", i * 10 + j)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    log = meta.log("r", "master", limit=1000)
    assert len(log) == 80
    assert len({c.id for c in log}) == 80
    assert len(meta.list_files("r", "master", limit=1000)) == 80


def test_branch_from_commit_materialises_tree(meta):
    meta.create_branch("r", "master", 0)
    c1 = meta.commit("r", "master", [Put("a", obj(1, "e1")), Put("b", obj(1, "b1"))], "PUT", 1)
    meta.commit("r", "master", [Put("a", obj(2, "e2")), Delete("b")], "PUT", 2)
    meta.create_branch("r", "old", 3, from_commit=c1.id)
    files = {f.path: f.object.etag for f in meta.list_files("r", "old")}
    assert files == {"a": "e1", "b": "b1"}


def test_durable_across_reopen(tmp_path):
    m = SqliteMetadata(str(tmp_path / "m.sqlite"))
    m.create_branch("r", "master", 0)
    m.commit("r", "master", [Put("k", obj(5, "e"))], "PUT", 1)
    m.close()
    m2 = SqliteMetadata(str(tmp_path / "m.sqlite"))
    assert m2.stat("r", "master", "k").object.size == 5
    m2.close()


def test_sql_limit_is_the_next_power_of_two():
    from s3gw.pfs.keys import sql_limit
    assert [sql_limit(n) for n in (0, 1, 2, 3, 4, 5, 1000, 1001, 1024, 1025)] == [
        1, 1, 2, 4, 4, 8, 1024, 1024, 1024, 2048]
