"""pfs.history: version specs, the ancestor skip list, files/listings at a commit,
ListObjectVersions pages, diff, back-fill of older databases, and the history CLI."""

from __future__ import annotations

import os
import sqlite3

import pytest

from s3gw.cli.main import main
from s3gw.pfs.history import (
    FileDeleted, InvalidVersion, Lineage, backfill, parse_version, skip_depth,
)
from s3gw.pfs.metadata import SqliteMetadata
from s3gw.pfs.model import Delete, NoSuchCommit, NoSuchFile, ObjectInfo, Put


def obj(etag: str, size: int = 1) -> ObjectInfo:
    return ObjectInfo(size=size, etag=etag, manifest=b"")


@pytest.fixture
def meta(tmp_path):
    m = SqliteMetadata(str(tmp_path / "meta.sqlite"), durable=False)
    m.create_branch("r", "master", 0)
    yield m
    m.close()


def put(meta, path, etag, branch="master", t=0):
    return meta.commit("r", branch, [Put(path, obj(etag))], f"PUT {path}", t).id


# -- pure ---------------------------------------------------------------------------------
@pytest.mark.parametrize("spec,want", [
    ("null", None), ("HEAD", ("HEAD", 0)), ("HEAD^", ("HEAD", 1)), ("HEAD^3", ("HEAD", 3)),
    ("HEAD~2", ("HEAD", 2)), ("HEAD^^", ("HEAD", 2)), ("HEAD^0", ("HEAD", 0)),
    ("a" * 32 + "^2", ("a" * 32, 2)), ("a" * 32 + "~1^", ("a" * 32, 2)), ("a" * 32, ("a" * 32, 0)),
])
def test_parse_version(spec, want):
    assert parse_version(spec) == want


@pytest.mark.parametrize("spec", ["", "head", "HEAD^x", "A" * 32, "a" * 31, "a" * 33, "HEAD^1234567890",
                                  "HEAD ^", "^"])
def test_parse_version_rejects(spec):
    with pytest.raises(InvalidVersion):
        parse_version(spec)


def test_skip_depth_points_below():
    for d in range(2, 5000):
        assert 0 <= skip_depth(d) < d
    assert skip_depth(0) == 0 and skip_depth(1) == 0


# -- ancestry -----------------------------------------------------------------------------
def test_lineage_reaches_every_ancestor_with_few_lookups(meta):
    ids = [put(meta, "k", f"e{i}") for i in range(600)]
    tip = meta.get_commit(ids[-1])
    lookups = []
    conn = meta._reader
    conn.set_trace_callback(lambda sql: lookups.append(sql) if "commit_skip" in sql else None)
    try:
        for d in (0, 1, 2, 3, 77, 255, 256, 511, 598):
            lookups.clear()
            assert Lineage(conn, tip).at(d) == ids[d]
            assert len(lookups) <= 40, (d, len(lookups))     # O(log n), not O(n)
    finally:
        conn.set_trace_callback(None)
    assert meta.history.is_ancestor(ids[3], ids[500])
    assert not meta.history.is_ancestor(ids[500], ids[3])


def test_backfill_of_a_database_without_skip_pointers(tmp_path):
    path = str(tmp_path / "meta.sqlite")
    m = SqliteMetadata(path, durable=False)
    m.create_branch("r", "master", 0)
    ids = [m.commit("r", "master", [Put("k", obj(f"e{i}"))], "m", i).id for i in range(300)]
    m.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM commit_skip")
    m = SqliteMetadata(path, durable=False)      # back-fills on open
    n = m._reader.execute("SELECT count(*) FROM commit_skip").fetchone()[0]
    assert n == 299
    assert m.stat_at("r", "master", ids[10], "k").object.etag == "e10"
    cur = m._writer.cursor()
    assert backfill(cur) == 0
    m.close()


# -- resolve / stat_at --------------------------------------------------------------------
def test_stat_at_and_specs(meta):
    a1 = put(meta, "a", "a1")
    b1 = put(meta, "b", "b1")
    a2 = put(meta, "a", "a2")
    d = meta.commit("r", "master", [Delete("b")], "DELETE b", 9).id
    f = meta.stat_at("r", "master", b1, "a")
    assert (f.object.etag, f.commit_id) == ("a1", a1)
    assert meta.stat_at("r", "master", "HEAD", "a").commit_id == a2
    assert meta.stat_at("r", "master", "HEAD^2", "a").commit_id == a1
    assert meta.stat_at("r", "master", f"{a2}^", "b").commit_id == b1
    assert meta.stat_at("r", "master", "null", "a").commit_id == a2
    with pytest.raises(NoSuchFile):
        meta.stat_at("r", "master", a1, "b")              # not yet written
    with pytest.raises(FileDeleted) as e:
        meta.stat_at("r", "master", d, "b")
    assert e.value.commit_id == d
    with pytest.raises(NoSuchCommit):
        meta.stat_at("r", "master", "HEAD~4", "a")        # before the first commit
    with pytest.raises(NoSuchCommit):
        meta.stat_at("r", "master", "0" * 32, "a")


def test_branches_do_not_see_each_others_commits(meta):
    base = put(meta, "k", "base")
    meta.create_branch("r", "dev", 1, from_commit=base)
    dev = put(meta, "k", "dev", branch="dev")
    main = put(meta, "k", "main")                         # same depth as dev
    assert meta.stat_at("r", "dev", "HEAD", "k").object.etag == "dev"
    assert meta.stat_at("r", "master", "HEAD", "k").object.etag == "main"
    assert meta.stat_at("r", "dev", base, "k").object.etag == "base"
    with pytest.raises(NoSuchCommit):
        meta.stat_at("r", "master", dev, "k")
    with pytest.raises(NoSuchCommit):
        meta.stat_at("r", "dev", main, "k")
    assert [v.commit_id for v in meta.versions("r", "dev").versions] == [dev, base]
    assert [f.object.etag for f in meta.list_at("r", dev)] == ["dev"]


# -- list_at ------------------------------------------------------------------------------
def test_list_at(meta):
    c1 = meta.commit("r", "master", [Put(k, obj(k)) for k in ("a", "b/1", "b/2", "é", "c")],
                     "PUT", 1).id
    meta.commit("r", "master", [Delete("b/1"), Put("a", obj("a2")), Put("z", obj("z"))], "x", 2)
    assert [f.path for f in meta.list_at("r", c1)] == ["a", "b/1", "b/2", "c", "é"]
    assert [f.object.etag for f in meta.list_at("r", c1)][0] == "a"
    assert [f.path for f in meta.list_at("r", c1, prefix="b/")] == ["b/1", "b/2"]
    assert [f.path for f in meta.list_at("r", c1, after="b/1", limit=2)] == ["b/2", "c"]
    assert [f.path for f in meta.list_at("r", c1, after="b/1", inclusive=True, limit=1)] == ["b/1"]
    head = meta.get_branch("r", "master").head
    assert [f.path for f in meta.list_at("r", head)] == ["a", "b/2", "c", "z", "é"]
    assert [f.path for f in meta.list_at("r", head)] == [f.path for f in meta.list_files("r", "master")]


# -- versions -----------------------------------------------------------------------------
def test_versions_pages(meta):
    ids = {}
    for i in range(3):
        ids[f"k{i}"] = put(meta, "k", f"k{i}")
    ids["a"] = put(meta, "a", "a")
    ids["del"] = meta.commit("r", "master", [Delete("a")], "DELETE a", 9).id
    ids["d/x"] = put(meta, "d/x", "x")
    ids["d/y"] = put(meta, "d/y", "y")
    full = meta.versions("r", "master")
    got = [(v.path, v.commit_id, v.object is None, v.is_latest) for v in full.versions]
    assert got == [("a", ids["del"], True, True), ("a", ids["a"], False, False),
                   ("d/x", ids["d/x"], False, True), ("d/y", ids["d/y"], False, True),
                   ("k", ids["k2"], False, True), ("k", ids["k1"], False, False),
                   ("k", ids["k0"], False, False)]
    assert not full.truncated and full.next_key_marker is None
    # page by two, resuming with (key, version) markers
    seen, km, vm = [], None, None
    while True:
        page = meta.versions("r", "master", key_marker=km, version_marker=vm, limit=2)
        seen += [(v.path, v.commit_id) for v in page.versions]
        if not page.truncated:
            break
        km, vm = page.next_key_marker, page.next_version_marker
    assert seen == [(p, c) for p, c, _, _ in got]
    # delimiter: common prefixes count, and a key marker equal to one skips it
    page = meta.versions("r", "master", delimiter="/")
    assert page.prefixes == ["d/"] and [v.path for v in page.versions] == ["a", "a", "k", "k", "k"]
    page = meta.versions("r", "master", delimiter="/", limit=3)
    assert page.prefixes == ["d/"] and page.truncated and page.next_key_marker == "d/"
    assert page.next_version_marker is None
    page = meta.versions("r", "master", delimiter="/", key_marker="d/")
    assert page.prefixes == [] and [v.path for v in page.versions] == ["k", "k", "k"]
    assert meta.versions("r", "master", prefix="d/").versions[0].path == "d/x"
    with pytest.raises(InvalidVersion):
        meta.versions("r", "master", version_marker=ids["a"])
    with pytest.raises(InvalidVersion):
        meta.versions("r", "master", key_marker="k", version_marker="nope")
    zero = meta.versions("r", "master", limit=0)   # S3: max-keys=0 is an empty, complete page
    assert (zero.versions, zero.prefixes, zero.truncated) == ([], [], False)
    assert zero.next_key_marker is None and zero.next_version_marker is None


# -- diff and CLI ---------------------------------------------------------------------------
def test_diff(meta):
    c1 = meta.commit("r", "master", [Put("keep", obj("k")), Put("mod", obj("m1")),
                                     Put("gone", obj("g"))], "1", 1).id
    meta.commit("r", "master", [Put("mod", obj("m2")), Delete("gone"), Put("new", obj("n"))],
                "2", 2)
    c3 = meta.commit("r", "master", [Put("keep", obj("k"))], "same bytes again", 3).id
    got = [(e.status, e.path) for e in meta.history.diff(c1, c3)]
    assert got == [("D", "gone"), ("M", "mod"), ("A", "new")]
    assert [(e.status, e.path) for e in meta.history.diff(c3, c1)] == [
        ("A", "gone"), ("M", "mod"), ("D", "new")]
    meta.create_branch("r", "dev", 4, from_commit=c1)
    dev = put(meta, "devfile", "d", branch="dev")
    assert [(e.status, e.path) for e in meta.history.diff(c3, dev)] == [
        ("A", "devfile"), ("A", "gone"), ("M", "mod"), ("D", "new")]


def test_cli_log_branch_diff(tmp_path, capsys):
    data = str(tmp_path / "data")
    m = SqliteMetadata(os.path.join(data, "meta.sqlite"), durable=False)
    m.create_branch("r", "master", 0)
    c1 = m.commit("r", "master", [Put("a/b.csv", obj("e1", 10))], "PUT /a/b.csv", 1).id
    c2 = m.commit("r", "master", [Put("other", obj("o"))], "PUT /other", 2).id
    c3 = m.commit("r", "master", [Delete("a/b.csv")], "DELETE /a/b.csv", 3).id
    m.close()
    assert main(["log", "--data", data, "master.r"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == [c3, c2, c1]
    assert main(["log", "--data", data, "master.r", "/a/b.csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == [c3, c1]
    assert out[0].split()[3] == "D" and out[1].split()[3:] == ["M", "10", "e1"]
    assert main(["log", "--data", data, f"{c2}.master.r"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == [c2, c1]
    assert main(["branch", "create", "--data", data, "dev.r", "--from", c2]) == 0
    assert capsys.readouterr().out.split() == ["dev.r", c2]
    assert main(["branch", "create", "--data", data, "hot.r", "--from", "master"]) == 0
    assert capsys.readouterr().out.split() == ["hot.r", c3]
    assert main(["branch", "create", "--data", data, "dev.r", "--from", c1]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["branch", "create", "--data", data, "x.r", "--from", "f" * 32]) == 1
    capsys.readouterr()
    assert main(["branch", "list", "--data", data]) == 0
    assert "dev.r\t" + c2 in capsys.readouterr().out
    assert main(["diff", "--data", data, c1, c3]) == 0
    assert capsys.readouterr().out.splitlines() == ["D\t/a/b.csv", "A\t/other"]
    m = SqliteMetadata(os.path.join(data, "meta.sqlite"))
    assert m.stat("r", "dev", "a/b.csv").commit_id == c1        # the same commit, no copy
    assert m.stats()["commits"] == 3
    m.close()


def test_cli_diff_takes_commit_expressions(tmp_path, capsys):
    data = str(tmp_path / "data")
    m = SqliteMetadata(os.path.join(data, "meta.sqlite"), durable=False)
    m.create_branch("r", "master", 0)
    c1 = m.commit("r", "master", [Put("a", obj("e1"))], "PUT /a", 1).id
    c2 = m.commit("r", "master", [Put("b", obj("e2"))], "PUT /b", 2).id
    c3 = m.commit("r", "master", [Put("a", obj("e3"))], "PUT /a", 3).id
    m.close()

    def diff(*refs):
        rc = main(["diff", "--data", data, *refs])
        captured = capsys.readouterr()
        return rc, captured.out.splitlines(), captured.err

    assert diff("master.r", "HEAD^", "HEAD")[:2] == (0, ["M\t/a"])
    assert diff("master.r", "HEAD~2", "HEAD")[:2] == (0, ["M\t/a", "A\t/b"])
    assert diff("master.r", "HEAD^^", "HEAD^")[:2] == (0, ["A\t/b"])
    assert diff(f"{c3}^", c3)[:2] == (0, ["M\t/a"])             # no bucket needed
    assert diff(f"{c3}~2", f"{c2}")[:2] == (0, ["A\t/b"])
    assert diff(c1, c3)[:2] == (0, ["M\t/a", "A\t/b"])          # plain ids, as before
    assert diff(f"{c2}.master.r", "HEAD^", "HEAD")[:2] == (0, ["A\t/b"])   # a pinned bucket
    rc, out, err = diff("HEAD^", "HEAD")
    assert rc == 1 and "HEAD needs a bucket" in err
    rc, out, err = diff("master.r", "HEAD~3", "HEAD")             # before the first commit
    assert rc == 1 and "no such commit" in err
    rc, out, err = diff("master.r", "nonsense", "HEAD")
    assert rc == 1 and "not a commit expression" in err
    rc, out, err = diff("dev.r", "HEAD^", "HEAD")
    assert rc == 1 and "no such branch" in err
    assert diff("a", "b", "c", "d")[0] == 1
