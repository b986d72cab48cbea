"""The metadata-store conformance suite: every ``MetadataStore`` implementation
(SQLite, PostgreSQL on a real server) passes the same cases."""

from __future__ import annotations

import threading

import pytest

from s3gw.pfs.history import FileDeleted, InvalidVersion
from s3gw.pfs.interface import MetadataStore
from s3gw.pfs.model import (
    BranchExists, ConditionFailed, Delete, NoSuchBranch, NoSuchCommit, NoSuchFile, ObjectInfo,
    Put, RepoExists,
)
from s3gw.pfs.uploads import NoSuchUpload, PartChanged, PartInfo


def obj(n=1, etag="e", manifest=b"m"):
    return ObjectInfo(size=n, etag=etag, manifest=manifest, headers={"content-type": "x/y"},
                      checksums={"crc32": "AAAA"}, parts=(n,))


@pytest.fixture(params=["sqlite", "postgres"])
def make_meta(request, tmp_path):
    """A factory of store handles on one fresh store (several handles: several gateways)."""
    opened = []
    if request.param == "sqlite":
        from s3gw.pfs.metadata import SqliteMetadata
        path = str(tmp_path / "meta.sqlite")

        def make():
            opened.append(SqliteMetadata(path))
            return opened[-1]
    else:
        from s3gw.pfs.postgres import PostgresMetadata
        url = request.getfixturevalue("pg_url")

        def make():
            opened.append(PostgresMetadata(url))
            return opened[-1]
    yield make
    for m in opened:
        m.close()


@pytest.fixture
def meta(make_meta):
    return make_meta()


def test_implements_the_protocol(meta):
    assert isinstance(meta, MetadataStore)
    missing = [name for name in dir(MetadataStore) if not name.startswith("_")
               and not hasattr(meta, name)]
    assert not missing


def test_branches_and_repos(meta):
    b = meta.create_branch("images", "master", 1)
    assert b.head is None and meta.get_branch("images", "master") == b
    with pytest.raises(BranchExists):
        meta.create_branch("images", "master", 2)
    with pytest.raises(RepoExists):
        meta.create_branch("images", "other", 2, new_repo=True)
    meta.create_branch("images", "dev", 3)
    assert [(x.repo, x.name) for x in meta.list_branches()] == [("images", "dev"),
                                                                ("images", "master")]
    assert [x.name for x in meta.list_branches("images")] == ["dev", "master"]
    assert [r.name for r in meta.list_repos()] == ["images"]
    meta.delete_branch("images", "dev")
    meta.delete_branch("images", "master")
    assert meta.list_repos() == []
    with pytest.raises(NoSuchBranch):
        meta.delete_branch("images", "master")
    with pytest.raises(NoSuchBranch):
        meta.get_branch("images", "master")


def test_commits_tree_and_log(meta):
    meta.create_branch("r", "master", 0)
    c1 = meta.commit("r", "master", [Put("a/b.csv", obj(1, "e1"))], "PUT a", 10)
    c2 = meta.commit("r", "master", [Put("c", obj(2, "e2"))], "PUT c", 20)
    assert c2.parent == c1.id and c2.depth == c1.depth + 1 == 1 and len(c1.id) == 32
    f = meta.stat("r", "master", "a/b.csv")
    assert (f.commit_id, f.time_ns, f.object.etag, f.object.size) == (c1.id, 10, "e1", 1)
    assert f.object.headers == {"content-type": "x/y"} and f.object.checksums == {"crc32": "AAAA"}
    assert f.object.parts == (1,) and f.object.manifest == b"m"
    c3 = meta.commit("r", "master", [Delete("a/b.csv"), Delete("nope")], "DELETE", 30)
    with pytest.raises(NoSuchFile):
        meta.stat("r", "master", "a/b.csv")
    assert meta.commit("r", "master", [Delete("nope")], "DELETE", 40) is None
    assert [c.id for c in meta.log("r", "master")] == [c3.id, c2.id, c1.id]
    assert meta.get_commit(c2.id) == c2
    with pytest.raises(NoSuchCommit):
        meta.get_commit("0" * 32)
    with pytest.raises(NoSuchBranch):
        meta.commit("r", "nobranch", [Put("x", obj())], "m", 1)
    with pytest.raises(NoSuchBranch):
        meta.stat("r", "nobranch", "x")


def test_list_files_byte_order_prefix_after(meta):
    meta.create_branch("r", "master", 0)
    keys = ["a", "a/b", "a/c", "ab", "b", "B", "é", "z", "\U0001f600", "a%b", "a_b", "a?"]
    meta.commit("r", "master", [Put(k, obj()) for k in keys], "PUT", 1)
    want = sorted(keys, key=lambda k: k.encode())
    assert [f.path for f in meta.list_files("r", "master")] == want
    assert [f.path for f in meta.list_files("r", "master", prefix="a/")] == ["a/b", "a/c"]
    assert [f.path for f in meta.list_files("r", "master", after="b", limit=2)] == want[
        want.index("b") + 1:want.index("b") + 3]
    assert [f.path for f in meta.list_files("r", "master", after="b", inclusive=True,
                                            limit=1)] == ["b"]
    # the SQL's LIMIT is rounded up to a power of two (pfs.keys.sql_limit): exactly
    # ``limit`` rows come back, for any limit
    for limit in range(0, len(keys) + 2):
        assert [f.path for f in meta.list_files("r", "master", limit=limit)] == want[:limit]


def test_conditions_run_inside_the_transaction(meta):
    meta.create_branch("r", "master", 0)

    def if_none_match(path, current):
        if current is not None:
            raise ConditionFailed(path)

    meta.commit("r", "master", [Put("k", obj(1, "first"))], "m", 1, condition=if_none_match)
    with pytest.raises(ConditionFailed):
        meta.commit("r", "master", [Put("k", obj(1, "second"))], "m", 2, condition=if_none_match)
    assert meta.stat("r", "master", "k").object.etag == "first"
    assert len(meta.log("r", "master")) == 1


def test_concurrent_conditional_writers_have_one_winner(make_meta):
    handles = [make_meta() for _ in range(3)]            # three gateways' handles
    handles[0].create_branch("r", "master", 0)
    wins, losses = [], []

    def if_none_match(path, current):
        if current is not None:
            raise ConditionFailed(path)

    def writer(i):
        try:
            handles[i % 3].commit("r", "master", [Put("once", obj(1, f"e{i}"))], "m", i,
                                  condition=if_none_match)
            wins.append(i)
        except ConditionFailed:
            losses.append(i)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 11
    assert handles[0].stat("r", "master", "once").object.etag == f"e{wins[0]}"


def test_concurrent_writers_on_one_branch_lose_nothing(make_meta):
    handles = [make_meta() for _ in range(3)]
    handles[0].create_branch("r", "master", 0)
    n_threads, per_thread = 12, 5
    errors = []

    def writer(t):
        try:
            for i in range(per_thread):
                handles[t % 3].commit("r", "master", [Put(f"k{t}-{i}", obj())], "m", i)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    log = handles[1].log("r", "master", limit=1000)
    assert len(log) == n_threads * per_thread
    assert [c.depth for c in log] == list(range(len(log) - 1, -1, -1))   # one chain
    assert len(handles[2].list_files("r", "master")) == n_threads * per_thread


def test_group_commit_many_fail_alone(meta):
    meta.create_branch("r", "master", 0)
    results = meta.commit_many([
        ("r", "master", [Put("a", obj())], "m", 1, None),
        ("r", "missing", [Put("b", obj())], "m", 2, None),
        ("r", "master", [Put("c", obj())], "m", 3, None),
    ])
    assert results[0][1] is None and results[2][1] is None
    assert isinstance(results[1][1], NoSuchBranch)
    assert results[2][0].parent == results[0][0].id
    assert {f.path for f in meta.list_files("r", "master")} == {"a", "c"}


def test_group_commit_plain_batch_keeps_each_branch_in_arrival_order(meta):
    """A batch of plain Puts (the fast paths) on two branches, one key written
    several times: each request is its own commit, a branch's commits chain in
    arrival order, the last write of a key is current and every write is a version."""
    meta.create_branch("r", "master", 0)
    meta.create_branch("r", "dev", 0)
    first = meta.commit("r", "master", [Put("seed", obj(1))], "seed", 1)
    reqs = [("r", ("master", "dev")[i % 2], [Put("same", obj(10 + i)), Put(f"k{i}", obj(i))],
             f"m{i}", 10 + i, None) for i in range(10)]
    results = meta.commit_many(reqs)
    assert all(error is None for _, error in results)
    for branch, start in (("master", first.id), ("dev", None)):
        mine = [c for (c, _), r in zip(results, reqs) if r[1] == branch]
        assert [c.message for c in mine] == [r[3] for r in reqs if r[1] == branch]
        assert [c.parent for c in mine] == [start] + [c.id for c in mine[:-1]]
        log = meta.log("r", branch, limit=100)
        assert [c.id for c in log[:5]] == [c.id for c in reversed(mine)]
        assert [c.depth for c in log] == list(range(len(log) - 1, -1, -1))
    assert meta.stat("r", "master", "same").object.size == 18
    assert meta.stat("r", "dev", "same").object.size == 19
    history = [v.object.size for v in meta.versions("r", "master", "same").versions]
    assert history == [18, 16, 14, 12, 10]
    later = meta.commit("r", "master", [Put("after", obj(2))], "after", 99)
    assert later.parent == results[8][0].id and later.depth == 6


def test_also_hook_rolls_back_with_the_commit(meta):
    meta.create_branch("r", "master", 0)

    def boom(cur):
        raise NoSuchUpload("u")

    with pytest.raises(NoSuchUpload):
        meta.commit("r", "master", [Put("a", obj())], "m", 1, also=boom)
    assert meta.list_files("r", "master") == [] and meta.get_branch("r", "master").head is None


def test_history_versions_list_at_diff(meta):
    meta.create_branch("r", "master", 0)
    c1 = meta.commit("r", "master", [Put("a", obj(1, "a1")), Put("d/x", obj(1, "x1"))], "1", 1)
    c2 = meta.commit("r", "master", [Put("a", obj(2, "a2"))], "2", 2)
    c3 = meta.commit("r", "master", [Delete("a"), Put("b", obj(3, "b1"))], "3", 3)
    assert meta.stat_at("r", "master", c1.id, "a").object.etag == "a1"
    assert meta.stat_at("r", "master", "HEAD~1", "a").object.etag == "a2"
    with pytest.raises(FileDeleted):
        meta.stat_at("r", "master", c3.id, "a")
    with pytest.raises(InvalidVersion):
        meta.stat_at("r", "master", "bogus", "a")
    assert meta.resolve_version("r", "master", "HEAD^^").id == c1.id
    assert meta.resolve_version("r", "master", "null") is None
    assert [f.path for f in meta.list_at("r", c2.id)] == ["a", "d/x"]
    assert [f.path for f in meta.list_at("r", c3.id)] == ["b", "d/x"]
    page = meta.versions("r", "master")
    assert [(v.path, v.commit_id, v.object is None, v.is_latest) for v in page.versions] == [
        ("a", c3.id, True, True), ("a", c2.id, False, False), ("a", c1.id, False, False),
        ("b", c3.id, False, True), ("d/x", c1.id, False, True)]
    page = meta.versions("r", "master", delimiter="/", limit=2)
    assert page.truncated and len(page.versions) == 2
    page = meta.versions("r", "master", delimiter="/")
    assert page.prefixes == ["d/"]
    diff = meta.history.diff(c1.id, c3.id)
    assert [(d.status, d.path) for d in diff] == [("D", "a"), ("A", "b")]
    assert [v.commit_id for v in meta.history.path_log("r", "master", "a")] == [c3.id, c2.id,
                                                                               c1.id]
    assert meta.history.is_ancestor(c1.id, c3.id)


def test_branch_from_commit_and_isolation(meta):
    meta.create_branch("r", "master", 0)
    c1 = meta.commit("r", "master", [Put("a", obj(1, "a1")), Put("b", obj())], "1", 1)
    meta.commit("r", "master", [Put("a", obj(2, "a2")), Delete("b")], "2", 2)
    dev = meta.create_branch("r", "dev", 3, from_commit=c1.id)
    assert dev.head == c1.id
    assert [(f.path, f.object.etag) for f in meta.list_files("r", "dev")] == [("a", "a1"),
                                                                              ("b", "e")]
    meta.commit("r", "dev", [Put("c", obj())], "dev", 4)
    assert [f.path for f in meta.list_files("r", "master")] == ["a"]
    with pytest.raises(NoSuchCommit):
        meta.create_branch("r", "x", 5, from_commit="f" * 32)


def test_uploads_staging(meta):
    meta.create_branch("r", "master", 0)
    staging = meta.uploads
    u = staging.create("r", "master", "big", {"content-type": "a/b"}, 5, "crc32", "COMPOSITE")
    assert staging.get(u.id) == u
    staging.put_part(u.id, PartInfo(2, 10, "e2", b"m2", {}, 1))
    staging.put_part(u.id, PartInfo(1, 10, "e1", b"m1", {}, 1))
    staging.put_part(u.id, PartInfo(1, 11, "e1b", b"m1b", {"crc32": "x"}, 2))   # replaced
    info, parts = staging.get_with_parts(u.id)
    assert info == u and sorted(parts) == [1, 2] and parts[1].etag == "e1b"
    assert [p.number for p in staging.list_parts(u.id, after=1)] == [2]
    assert [x.id for x in staging.list_uploads("r", "master", "b")] == [u.id]
    assert staging.count() == 1
    assert set(meta.referenced_manifests()) >= {b"m1b", b"m2"}
    with pytest.raises(PartChanged):
        meta.commit("r", "master", [Put("big", obj())], "m", 6,
                    also=staging.remove_in(u.id, {1: "e1"}))
    meta.commit("r", "master", [Put("big", obj())], "m", 7,
                also=staging.remove_in(u.id, {1: "e1b", 2: "e2"}))
    with pytest.raises(NoSuchUpload):
        staging.get(u.id)
    with pytest.raises(NoSuchUpload):
        meta.commit("r", "master", [Put("big", obj())], "m", 8, also=staging.remove_in(u.id))
    u2 = staging.create("r", "master", "old", {}, 1)
    staging.abort(u2.id)
    with pytest.raises(NoSuchUpload):
        staging.abort(u2.id)
    u3 = staging.create("r", "master", "old", {}, 1)
    assert staging.expire(2) == [u3.id] and staging.count() == 0


def test_provenance(meta):
    meta.create_branch("out", "master", 0)
    c = meta.commit("out", "master", [], "job", 1, provenance={"job": "j1", "inputs": ["x"]},
                    allow_empty=True)
    assert c is not None
    assert meta.provenance_of(c.id) == {"job": "j1", "inputs": ["x"]}
    assert meta.commit_of_job("j1") == c.id and meta.commit_of_job("j2") is None
    assert meta.provenance_of("0" * 32) is None


def test_delete_branch_keeps_other_branches_history(meta):
    meta.create_branch("r", "master", 0)
    c1 = meta.commit("r", "master", [Put("a", obj())], "1", 1)
    meta.create_branch("r", "dev", 2, from_commit=c1.id)
    meta.delete_branch("r", "master")
    assert meta.get_commit(c1.id) == c1
    assert [f.path for f in meta.list_files("r", "dev")] == ["a"]
    meta.delete_branch("r", "dev")
    with pytest.raises(NoSuchCommit):
        meta.get_commit(c1.id)


def test_stats_and_referenced_manifests_and_gc(meta):
    meta.create_branch("r", "master", 0)
    meta.commit("r", "master", [Put("a", obj(5, manifest=b"ma")), Put("b", obj(7, manifest=b"mb"))],
                "1", 1)
    stats = meta.stats()
    assert {k: stats[k] for k in ("repos", "branches", "commits", "objects", "files",
                                  "logical_bytes", "object_bytes")} == {
        "repos": 1, "branches": 1, "commits": 1, "objects": 2, "files": 2,
        "logical_bytes": 12, "object_bytes": 12}
    assert all(type(v) is int for v in stats.values())
    assert sorted(meta.referenced_manifests()) == [b"ma", b"mb"]
    assert meta.delete_unreferenced_objects() == 0
    meta.delete_branch("r", "master")
    assert meta.delete_unreferenced_objects() == 2
    assert list(meta.referenced_manifests()) == []


def test_branch_and_repo_usage(meta):
    """The console's figures: files and bytes of a head; a repo's head bytes counted per
    branch, and its distinct objects once."""
    meta.create_branch("r", "master", 0)
    meta.commit("r", "master", [Put("a", obj(5, "a")), Put("b", obj(7, "b"))], "1", 1)
    meta.create_branch("r", "dev", 2, from_commit=meta.get_branch("r", "master").head)
    meta.commit("r", "dev", [Put("c", obj(11, "c"))], "2", 3)
    assert meta.branch_usage("r", "master") == (2, 12)
    assert meta.branch_usage("r", "dev") == (3, 23)
    assert meta.repo_usage("r") == (35, 23)
    meta.create_branch("empty", "master", 4)
    assert meta.branch_usage("empty", "master") == (0, 0)
    assert meta.repo_usage("empty") == (0, 0)
    assert all(type(v) is int for v in meta.branch_usage("r", "dev") + meta.repo_usage("r"))


def test_copy_points_at_the_same_object(meta):
    meta.create_branch("r", "master", 0)
    meta.commit("r", "master", [Put("a", obj(3, "x"))], "1", 1)
    src = meta.stat("r", "master", "a").object
    meta.commit("r", "master", [Put("b", src)], "copy", 2)
    assert meta.stat("r", "master", "b").object.id == src.id
    assert meta.stats()["objects"] == 1


def test_delimiter_listing_seeks_past_common_prefixes(meta):
    """``s3.ops.listing.collect`` over either backend: pages equal a brute-force split
    of the keys, whatever the page size."""
    from s3gw.s3.ops.listing import collect
    meta.create_branch("r", "master", 0)
    keys = [f"d{f}/k{i}" for f in range(6) for i in range(f * 7)] + [
        "a", "b", "d2", "d2/", "e/f/g", "é/x", "z"] + [f"m{i:03d}" for i in range(40)]
    meta.commit("r", "master", [Put(k, obj()) for k in keys], "m", 1)
    want: list[str] = []
    for k in sorted(keys, key=lambda k: k.encode()):
        item = k[:k.index("/") + 1] if "/" in k else k
        if not want or want[-1] != item:
            want.append(item)
    for max_keys in (1, 3, 7, 1000):
        got, after = [], None
        while True:
            page = collect(meta, "r", "master", "", "/", after, max_keys)
            got += [e.key for e in page.entries] + page.prefixes
            if not page.truncated:
                break
            after = page.last
        assert sorted(got, key=lambda k: k.encode()) == want, max_keys


def test_list_at_equals_stat_at_of_every_path(meta):
    """``list_at`` reads ``entries`` in batches (``History._tip_entries``): a path's
    versions cut by a batch's end, a path with more versions than a batch, entries of a
    sibling branch, deletes, paths made after the commit and a restore after an
    expunge all list as ``stat_at`` reads each path, for every page size and start."""
    meta.create_branch("r", "master", 0)
    meta.commit("r", "master", [Put(k, obj(1, k)) for k in (
        "a", "b/1", "b/2", "b/3", "c", "é", "k")], "base", 1)
    base = meta.get_branch("r", "master").head
    meta.create_branch("r", "dev", 2, from_commit=base)
    for i in range(12):                  # "k": more versions than the first batches hold
        meta.commit("r", "master", [Put("k", obj(2, f"k{i}")), Put(f"b/{i % 3 + 1}",
                                    obj(3, f"b{i}"))], "k", 10 + i)
        meta.commit("r", "dev", [Put("b/0", obj(4, f"dev{i}")), Put("k", obj(4, "devk"))],
                    "dev", 10 + i)
    meta.commit("r", "master", [Delete("b/2"), Put("d/1", obj(5, "d1"))], "del", 30)
    older = meta.commit("r", "master", [Put("c", obj(6, "c2"))], "c2", 31).id
    restored = meta.expunge_version("r", "master", "c", older, 32).restored
    assert restored is not None          # "c" shows its first version again
    meta.commit("r", "master", [Put(f"z/{i:02d}", obj(7, "z")) for i in range(20)], "z", 33)
    paths = sorted({"a", "b/0", "b/1", "b/2", "b/3", "c", "d/1", "é", "k"} |
                   {f"z/{i:02d}" for i in range(20)}, key=lambda p: p.encode())

    def seen(files):
        return [(f.path, f.commit_id, f.time_ns, f.object.etag, f.object.id) for f in files]

    commits = [(c.id, "master") for c in meta.log("r", "master", limit=100)] + [
        (c.id, "dev") for c in meta.log("r", "dev", limit=3)]
    for cid, branch in commits:
        want = []
        for p in paths:
            try:
                want.append(meta.stat_at("r", branch, cid, p))
            except NoSuchFile:
                pass
        assert seen(meta.list_at("r", cid)) == seen(want), cid
        assert seen(meta.list_at("r", cid, prefix="b/")) == seen(
            [f for f in want if f.path.startswith("b/")])
        for limit in (1, 2, 3):
            got, after = [], None
            while True:
                page = meta.list_at("r", cid, after=after, limit=limit)
                got += page
                if len(page) < limit:
                    break
                after = page[-1].path
            assert seen(got) == seen(want), (cid, limit)
        if want:
            first = want[len(want) // 2].path
            assert seen(meta.list_at("r", cid, after=first, inclusive=True, limit=2)) == seen(
                want[len(want) // 2:len(want) // 2 + 2])


def test_list_at_of_a_commit_deleted_with_its_repo(meta):
    """``list_at`` remembers the commits it listed; one deleted since (its repo went with
    its last branch) is ``NoSuchCommit`` again, not an empty listing."""
    meta.create_branch("r", "master", 0)
    c = meta.commit("r", "master", [Put("a", obj())], "1", 1).id
    assert [f.path for f in meta.list_at("r", c)] == ["a"]
    meta.delete_branch("r", "master")
    with pytest.raises(NoSuchCommit):
        meta.list_at("r", c)
