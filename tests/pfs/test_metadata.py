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


def _dump(m: SqliteMetadata) -> dict:
    """Every row a commit writes, commit ids replaced by (branch, depth) and object ids
    by their content, so two databases written with different ids compare equal."""
    db = m._reader
    name = {cid: (branch, depth) for cid, branch, depth in
            db.execute("SELECT id, branch, depth FROM commits")}
    name[None] = None
    objects = {oid: (size, etag, manifest, headers, checksums, parts) for
               oid, size, etag, manifest, headers, checksums, parts in
               db.execute("SELECT id, size, etag, manifest, headers, checksums, parts FROM objects")}
    objects[None] = None
    def _sorted(rows):
        return sorted(rows, key=repr)

    return {
        "branches": _sorted((r, b, name[h]) for r, b, h in db.execute("SELECT repo, name, head FROM branches")),
        "commits": _sorted((r, b, name[p], d, t, msg) for r, b, p, d, t, msg in
                          db.execute("SELECT repo, branch, parent, depth, time_ns, message FROM commits")),
        "entries": _sorted((r, p, d, name[c], objects[o]) for r, p, d, c, o in
                          db.execute("SELECT repo, path, depth, commit_id, object FROM entries")),
        "tree": _sorted((r, b, p, objects[o], name[c], t) for r, b, p, o, c, t in
                       db.execute("SELECT repo, branch, path, object, commit_id, time_ns FROM tree")),
        "skips": _sorted((name[c], name[s]) for c, s in db.execute("SELECT id, skip FROM commit_skip")),
        "objects": len(objects),
    }


def test_batched_plain_commits_write_what_one_by_one_does(tmp_path, monkeypatch):
    """commit_many writes runs of plain PUTs with a few multi-row statements
    (``_apply_plain``); with that path turned off every request goes one by one.
    The same random batches (plain PUTs, overwrites, deletes, conditional PUTs,
    a missing branch, several branches) give the same rows and the same answers."""
    import random

    def only_if_absent(path, current):
        if current is not None:
            raise ConditionFailed(path)

    rng = random.Random(7)
    batches = []
    n = 0
    for _ in range(60):
        batch = []
        for _ in range(rng.choice([1, 2, 5, 9, 40])):
            n += 1
            branch = rng.choice(["master", "master", "master", "dev", "gone"])
            key = f"k{rng.randrange(12)}"
            kind = rng.random()
            if kind < 0.75:
                changes, cond = [Put(key, obj(n, f"e{n}"))], None
            elif kind < 0.82:
                changes, cond = [Put(key, obj(n, f"e{n}")), Put(key + "b", obj(n + 1, f"f{n}"))], None
            elif kind < 0.9:
                changes, cond = [Delete(key)], None
            else:
                changes, cond = [Put(key, obj(n, f"e{n}"))], only_if_absent
            batch.append(("r", branch, changes, f"PUT /{key} {n}", 1000 + n, cond))
        batches.append(batch)

    def run(path, batched: bool):
        m = SqliteMetadata(str(path))
        m.create_branch("r", "master", 1, new_repo=True)
        m.create_branch("r", "dev", 2)
        plain_runs = []
        if not batched:
            monkeypatch.setattr(SqliteMetadata, "_apply_plain", lambda self, cur, run: False)
        else:
            real = SqliteMetadata._apply_plain
            monkeypatch.setattr(SqliteMetadata, "_apply_plain",
                                lambda self, cur, run: plain_runs.append(len(run)) or real(self, cur, run))
        answers = []
        for batch in batches:
            for res, err in m.commit_many(batch):
                answers.append((None if res is None else (res.branch, res.depth, res.message),
                                type(err).__name__ if err else None))
        monkeypatch.undo()
        dump = _dump(m)
        m.close()
        return answers, dump, plain_runs

    a1, d1, runs = run(tmp_path / "batched.sqlite", True)
    a2, d2, _ = run(tmp_path / "single.sqlite", False)
    assert sum(runs) > 600 and max(runs) >= 20   # the batched path did most of the work
    assert a1 == a2
    assert {e for _, e in a1} >= {None, "NoSuchBranch", "ConditionFailed"}
    for table in d1:
        assert d1[table] == d2[table], table
    assert len(d1["skips"]) > 500
