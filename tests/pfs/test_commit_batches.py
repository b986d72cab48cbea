"""SqliteMetadata's batched commits: the fast path for plain PUTs, the careful
path (a savepoint per request) and the retry that moves a batch from one to the
other, checked against what one-by-one commits would have written."""

import pytest

from s3gw.pfs import _sqlbatch_py, sqlbatch
from s3gw.pfs.history import _walk, db_step, skip_depth
from s3gw.pfs.metadata import SqliteMetadata, new_commit_id
from s3gw.pfs.model import ConditionFailed, Delete, NoSuchBranch, ObjectInfo, Put


def obj(etag: str) -> ObjectInfo:
    return ObjectInfo(size=1, etag=etag, manifest=b"")


IMPLS = ["python"] + (["cython"] if sqlbatch.IMPLEMENTATION == "cython" else [])


@pytest.fixture(params=IMPLS)
def meta(tmp_path, request, monkeypatch):
    """Metadata whose all-plain batches go through the compiled BatchDb or its twin."""
    if request.param == "python":
        monkeypatch.setattr(sqlbatch, "BatchDb", _sqlbatch_py.BatchDb)
    m = SqliteMetadata(str(tmp_path / "meta.sqlite"), durable=False)
    m.create_branch("r", "master", 0)
    m.create_branch("r", "dev", 0)
    m.create_branch("q", "master", 0)
    yield m
    m.close()


def must_be_absent(path, current):
    if current is not None:
        raise ConditionFailed(path)


def check_chains(meta):
    """Every commit's depth is its parent's + 1, its skip pointer is the ancestor
    at skip_depth (walked one parent at a time), and every head is the deepest."""
    db = meta._reader
    rows = db.execute("SELECT c.id, c.parent, c.depth, s.skip FROM commits c "
                      "LEFT JOIN commit_skip s ON s.id = c.id").fetchall()
    by_id = {cid: (parent, depth, skip) for cid, parent, depth, skip in rows}
    for cid, (parent, depth, skip) in by_id.items():
        if parent is None:
            assert depth == 0 and skip is None
            continue
        assert by_id[parent][1] == depth - 1
        walk = parent
        while by_id[walk][1] > skip_depth(depth):
            walk = by_id[walk][0]
        assert skip == walk, (cid, depth)
        assert _walk(db_step(db), parent, depth - 1, skip_depth(depth)) == skip
    for repo, name, head in db.execute("SELECT repo, name, head FROM branches"):
        mine = [d for cid, (p, d, s) in by_id.items()
                if db.execute("SELECT repo, branch FROM commits WHERE id=?", (cid,)).fetchone()
                == (repo, name)]
        if head is not None:
            assert by_id[head][1] == max(mine)


def test_a_mixed_batch_chains_like_one_by_one_commits(meta):
    for i in range(40):                                 # some history to walk
        meta.commit("r", "master", [Put(f"h{i}", obj(f"h{i}"))], "m", i)
    requests = []
    for i in range(30):
        kind = i % 6
        if kind == 3:   # a conditional PUT that holds, then one that fails
            requests.append(("r", "master", [Put(f"c{i}", obj("c"))], "m", 100 + i, must_be_absent))
        elif kind == 4:
            requests.append(("r", "master", [Put("h0", obj("x"))], "m", 100 + i, must_be_absent))
        elif kind == 5:
            requests.append(("r", "master", [Delete(f"h{i}")], "m", 100 + i, None))
        else:
            repo, branch = [("r", "master"), ("r", "dev"), ("q", "master")][kind]
            requests.append((repo, branch, [Put(f"k{i}", obj(f"e{i}"))], "m", 100 + i, None))
    requests.append(("r", "nope", [Put("k", obj("e"))], "m", 200, None))     # no such branch
    results = meta.commit_many(requests)
    assert sum(1 for r in requests if r[5] is None and isinstance(r[2][0], Put)) > 15  # fast ones
    for (repo, branch, changes, *_rest), (commit, error) in zip(requests, results):
        if branch == "nope":
            assert isinstance(error, NoSuchBranch) and commit is None
        elif changes[0].path == "h0":
            assert isinstance(error, ConditionFailed)
        else:
            assert error is None and commit is not None, (changes, error)
            assert meta.stat(repo, branch, changes[0].path).commit_id == commit.id \
                if isinstance(changes[0], Put) else True
    committed = [c for c, e in results if c is not None]
    master = [c for c in committed if (c.repo, c.branch) == ("r", "master")]
    assert [c.depth for c in master] == list(range(40, 40 + len(master)))
    assert all(b.parent == a.id for a, b in zip(master, master[1:]))
    assert meta.get_branch("r", "master").head == master[-1].id
    check_chains(meta)
    # and the next batch starts from there, through the cache of committed steps
    more = meta.commit_many([("r", "master", [Put(f"n{i}", obj("n"))], "m", 300, None)
                             for i in range(20)])
    assert [c.depth for c, _e in more] == list(range(40 + len(master), 60 + len(master)))
    check_chains(meta)


def test_a_plain_put_failing_after_writing_sends_the_batch_the_careful_way(meta, monkeypatch):
    """Two Puts of one path in one request collide in the change log after the
    first was written: the batch is rolled back and applied again with a
    savepoint per request, so only that request fails."""
    paths = []
    apply, apply_plain = SqliteMetadata._apply, SqliteMetadata._apply_plain

    def spy(self, batch, fast):
        paths.append(fast)
        return apply(self, batch, fast)

    def spy_plain(self, batch):
        paths.append("plain")
        return apply_plain(self, batch)

    monkeypatch.setattr(SqliteMetadata, "_apply", spy)
    monkeypatch.setattr(SqliteMetadata, "_apply_plain", spy_plain)
    requests = [("r", "master", [Put("a", obj("a"))], "m", 1, None),
                ("r", "master", [Put("x", obj("1")), Put("x", obj("2"))], "m", 2, None),
                ("r", "master", [Put("b", obj("b"))], "m", 3, None)]
    (c1, e1), (c2, e2), (c3, e3) = meta.commit_many(requests)
    assert paths == ["plain", False]
    assert not meta._plain_db.in_transaction
    assert e1 is None and e3 is None and e2 is not None and c2 is None
    assert c3.parent == c1.id and c3.depth == c1.depth + 1
    assert meta.stat("r", "master", "a").object.etag == "a"
    assert meta.stat("r", "master", "b").object.etag == "b"
    assert [f.path for f in meta.list_files("r", "master")] == ["a", "b"]
    check_chains(meta)


def test_commit_ids_sort_in_the_order_they_were_made():
    ids = [new_commit_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert ids == sorted(ids) or sum(a > b for a, b in zip(ids, ids[1:])) <= 2  # a clock step


def test_the_step_cache_is_bounded_and_forgets_deleted_repos(meta, monkeypatch):
    from s3gw.pfs import metadata as md
    monkeypatch.setattr(md._BatchHeads, "CACHE_MAX", 16)
    for i in range(10):
        meta.commit_many([("r", "master", [Put(f"k{i}.{j}", obj("e"))], "m", i, None)
                          for j in range(5)])
        assert len(meta._steps) <= 16 + 5 + 4
    check_chains(meta)
    meta.delete_branch("q", "master")                  # the repo goes with its last branch
    assert meta._steps == {}
    meta.create_branch("q", "master", 0)
    meta.commit_many([("q", "master", [Put("k", obj("e"))], "m", 1, None)] * 3)
    check_chains(meta)


def test_an_all_plain_batch_on_several_branches_with_a_missing_one(meta):
    """A batch of plain PUTs only goes through the batch connection (BatchDb):
    the missing branch fails alone, the others chain like one-by-one commits."""
    for i in range(5):
        meta.commit("r", "master", [Put(f"h{i}", obj(f"h{i}"))], "m", i)
    where = [("r", "master"), ("r", "dev"), ("r", "nope"), ("q", "master")]
    requests = [(*where[i % 4], [Put(f"k{i}", obj(f"e{i}")), Put(f"l{i}", obj("l"))], "m", 10 + i,
                 None) for i in range(40)]
    results = meta.commit_many(requests)
    for (repo, branch, changes, *_rest), (commit, error) in zip(requests, results):
        if branch == "nope":
            assert isinstance(error, NoSuchBranch) and commit is None
        else:
            assert error is None
            assert meta.stat(repo, branch, changes[1].path).commit_id == commit.id
            assert meta.stat(repo, branch, changes[0].path).object.etag == changes[0].object.etag
    dev = [c for c, _e in results if c is not None and c.branch == "dev"]
    assert [c.depth for c in dev] == list(range(10))
    assert meta.get_branch("r", "dev").head == dev[-1].id
    assert not meta._plain_db.in_transaction
    check_chains(meta)
