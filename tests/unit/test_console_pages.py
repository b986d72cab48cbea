"""The console's pure parts: escaping, pages, pagination, the DAG layout, sessions."""

from __future__ import annotations

import os
import re

import pytest

from s3gw.console import pages, queries
from s3gw.console.dag import NODE_H, Graph, Node, layout, svg
from s3gw.console.render import Html, csv_table, esc, page, table, url
from s3gw.console.sessions import (COOKIE, SessionStore, check_login, cookie_header,
                                   session_id_from)
from s3gw.pfs.auth import AuthSnapshot, Role
from s3gw.pfs.metadata import SqliteMetadata
from s3gw.pfs.model import Delete, ObjectInfo, Put

EVIL = '<script>alert("x")</script>&\''


# -- escaping -----------------------------------------------------------------------------
def test_esc_and_html_marker():
    assert esc(EVIL) == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#x27;"
    assert esc(Html("<b>ok</b>")) == "<b>ok</b>"
    assert esc(None) == ""


def test_table_escapes_str_cells_and_keeps_html_cells():
    out = table([EVIL], [[EVIL], [Html("<i>x</i>")]])
    assert "<script>" not in out
    assert "<i>x</i>" in out
    assert "nothing here" in table(["a"], [])


def test_url_quotes_path_and_query():
    u = url('/repo/r/file/master', path='a b/"<x>&y.csv')
    assert u == "/repo/r/file/master?path=a+b%2F%22%3Cx%3E%26y.csv"
    assert url("/repo/a b") == "/repo/a%20b"
    assert url("/jobs", pipeline=None) == "/jobs"


def test_page_frame_escapes_title_and_user():
    doc = page(EVIL, Html("<p>body</p>"), user=EVIL, auth=True).decode()
    assert "<script>alert" not in doc
    assert "<p>body</p>" in doc
    assert 'href="/static/console.css"' in doc and "<script src=\"/static/console.js\"" in doc
    assert "http://" not in doc and "https://" not in doc     # no CDN, nothing external


def test_csv_preview_is_a_table_of_first_rows():
    data = b"name,v\n" + b"".join(f"{EVIL},{i}\n".encode() for i in range(100))
    out = csv_table(data, rows=5)
    assert out.count("<tr>") == 6          # header + 5 rows
    assert "<script>" not in out and "&lt;script&gt;" in out


def test_preview_kind():
    assert pages.preview_kind("a/b.CSV", "", b"") == "csv"
    assert pages.preview_kind("x.json", "", b"{}") == "json"
    assert pages.preview_kind("x.png", "", b"\x89PNG") == "image"
    assert pages.preview_kind("x.svg", "image/svg+xml", b"<svg") == "text"   # never inline SVG
    assert pages.preview_kind("x", "", b"hello\n") == "text"
    assert pages.preview_kind("x.bin", "", b"\x00\x01\xff") == "binary"


def test_file_page_escapes_content_and_names():
    obj = ObjectInfo(size=len(EVIL), etag="e", manifest=b"", headers={"content-type": EVIL})
    from s3gw.pfs.model import FileInfo
    info = FileInfo(f"d/{EVIL}.txt", obj, "0" * 32, 0)
    out = pages.file(queries.Ref("r", "c" * 32, None, _commit("c" * 32)), info, "text",
                     EVIL.encode())
    assert "<script>" not in out
    assert out.count("&lt;script&gt;") >= 3      # path, content type, preview


def _commit(cid):
    from s3gw.pfs.model import CommitInfo
    return CommitInfo(cid, "r", "master", None, 0, 0, EVIL)


# -- pagination on a real metadata store -----------------------------------------------
def _obj(n: int) -> ObjectInfo:
    return ObjectInfo(size=n, etag=f"{n:032x}", manifest=b"")


@pytest.fixture
def meta(tmp_path):
    m = SqliteMetadata(os.path.join(tmp_path, "meta.sqlite"), durable=False)
    m.create_branch("r", "master", 1)
    yield m
    m.close()


def test_folder_pages_through_files_and_subfolders(meta):
    puts = [Put(f"d/f{i:03d}", _obj(i)) for i in range(25)]
    puts += [Put(f"d/sub{i}/x{j}", _obj(j)) for i in range(3) for j in range(50)]
    puts += [Put("top.txt", _obj(1))]
    c = meta.commit("r", "master", puts, "PUT many", 10)
    ref = queries.Ref("r", "master", "master", c)
    root = queries.folder(meta, ref, "", None, limit=10)
    assert root.entries == [("dir", "d/"), ("file", root.files[0])] and root.next_after is None
    seen, after, pages_ = [], None, 0
    while True:
        f = queries.folder(meta, ref, "d/", after, limit=7)
        pages_ += 1
        seen += [e if k == "dir" else e.path for k, e in f.entries]
        after = f.next_after
        if after is None:
            break
    assert seen == [f"d/f{i:03d}" for i in range(25)] + ["d/sub0/", "d/sub1/", "d/sub2/"]
    assert pages_ == 4
    at_commit = queries.Ref("r", c.id, None, c)   # the same through the commit's history
    assert [e if k == "dir" else e.path for k, e in
            queries.folder(meta, at_commit, "d/", "d/f020", limit=100).entries] == \
        seen[21:]


def test_folder_at_old_commit_hides_later_changes(meta):
    c1 = meta.commit("r", "master", [Put("a/1", _obj(1)), Put("a/2", _obj(2))], "one", 10)
    meta.commit("r", "master", [Delete("a/1"), Put("a/3", _obj(3))], "two", 20)
    old = queries.folder(meta, queries.Ref("r", c1.id, None, c1), "a/", None)
    assert [f.path for f in old.files] == ["a/1", "a/2"]
    head = meta.get_commit(meta.get_branch("r", "master").head)
    now = queries.folder(meta, queries.Ref("r", "master", "master", head), "a/", None)
    assert [f.path for f in now.files] == ["a/2", "a/3"]


def test_log_pages_with_a_cursor_and_counts_changes(meta):
    ids = [meta.commit("r", "master", [Put(f"k{i}", _obj(i)), Put(f"j{i}", _obj(i))],
                       f"PUT {i}", 10 + i).id for i in range(12)]
    head = meta.get_commit(ids[-1])
    ref = queries.Ref("r", "master", "master", head)
    rows, nxt = queries.branch_log(meta, ref, None, 5)
    assert [r.commit.id for r in rows] == ids[::-1][:5] and nxt == ids[6]
    assert all(r.changes == 2 for r in rows)
    rows, nxt = queries.branch_log(meta, ref, ids[1], 5)
    assert [r.commit.id for r in rows] == [ids[1], ids[0]] and nxt is None
    meta.create_branch("r", "other", 99)
    other = meta.commit("r", "other", [Put("z", _obj(1))], "z", 99)
    with pytest.raises(queries.NotVisible):           # a cursor off the branch's lineage
        queries.branch_log(meta, ref, other.id, 5)


def test_commit_changes_paginate(meta):
    c = meta.commit("r", "master", [Put(f"p{i:03d}", _obj(i)) for i in range(30)], "m", 10)
    d = meta.commit("r", "master", [Delete("p001")], "d", 11)
    rows, nxt = queries.commit_changes(meta, c, None, 20)
    assert len(rows) == 20 and nxt == "p019"
    rows, nxt = queries.commit_changes(meta, c, nxt, 20)
    assert len(rows) == 10 and nxt is None
    assert queries.commit_changes(meta, d, None, 20)[0] == [("p001", None, None)]


def test_diff_with_sizes(meta):
    a = meta.commit("r", "master", [Put("x", _obj(1)), Put("y", _obj(2))], "a", 10)
    b = meta.commit("r", "master", [Put("x", _obj(5)), Delete("y"), Put("z", _obj(7))], "b", 11)
    rows, total = queries.diff(meta, a, b)
    assert total == 3
    assert [(r.status, r.path, r.old_size, r.new_size) for r in rows] == [
        ("M", "x", 1, 5), ("D", "y", 2, None), ("A", "z", None, 7)]


def test_viewer_visibility():
    snap = AuthSnapshot(True, {"AK": ("S", "ann")}, {}, frozenset({"root"}),
                        frozenset({"ann", "root"}), {("ann", "mine"): Role.READER})
    ann = queries.Viewer("ann", snap)
    assert ann.can_read("mine") and not ann.can_read("theirs")
    assert queries.Viewer("root", snap).can_read("theirs")
    anyone = queries.Viewer(None, None)
    assert anyone.can_read("theirs") and not anyone.can_read("__job_abc")


# -- the DAG ------------------------------------------------------------------------------
def _graph():
    g = Graph()
    for name in ("raw", "clean", "stats", "other"):
        g.add(Node(f"repo:{name}", "repo", name, f"/repo/{name}"))
    g.add(Node("pipeline:clean", "pipeline", "clean", "/jobs?pipeline=clean", "SUCCESS"))
    g.add(Node("pipeline:stats", "pipeline", "stats", "/jobs?pipeline=stats", "FAILURE"))
    g.edge("repo:raw", "pipeline:clean")
    g.edge("pipeline:clean", "repo:clean")
    g.edge("repo:clean", "pipeline:stats")
    g.edge("repo:other", "pipeline:stats")
    g.edge("pipeline:stats", "repo:stats")
    g.edge("repo:raw", "repo:missing")                 # unknown node: ignored
    return g


def test_layout_layers_follow_the_longest_path():
    placed, width, height = layout(_graph())
    layer = {n: p.layer for n, p in placed.items()}
    assert layer == {"repo:raw": 0, "repo:other": 0, "pipeline:clean": 1, "repo:clean": 2,
                     "pipeline:stats": 3, "repo:stats": 4}
    for a, b in _graph().edges:
        assert placed[a].x < placed[b].x               # every edge points right
    spots = {(p.x, p.y) for p in placed.values()}
    assert len(spots) == len(placed)                   # no two boxes overlap
    assert height >= 2 * NODE_H and width > 0


def test_layout_survives_a_cycle_and_an_empty_graph():
    g = Graph()
    g.add(Node("repo:a", "repo", "a", "/"))
    g.add(Node("repo:b", "repo", "b", "/"))
    g.edge("repo:a", "repo:b")
    g.edge("repo:b", "repo:a")
    placed, _, _ = layout(g)
    assert len(placed) == 2
    assert layout(Graph())[0] == {}


def test_svg_draws_nodes_edges_states_and_escapes():
    g = _graph()
    g.add(Node("repo:x", "repo", EVIL, "/repo/x?a=1&b=2"))
    out = svg(g)
    assert out.startswith("<svg") and out.endswith("</svg>")
    assert out.count('class="edge"') == 5
    assert "state-failure" in out and "state-success" in out
    assert "<script>" not in out and "/repo/x?a=1&amp;b=2" in out


# -- sessions -----------------------------------------------------------------------------
def _snap(pairs=None, tokens=None):
    return AuthSnapshot(True, pairs or {"AK1": ("sekrit", "ann")}, tokens or {},
                        frozenset(), frozenset({"ann"}), {})


def test_check_login_pairs_and_tokens():
    import hashlib
    tok = "t" * 40
    snap = _snap(tokens={hashlib.sha256(tok.encode()).hexdigest(): "bob"})
    assert check_login(snap, "AK1", "sekrit") == "ann"
    assert check_login(snap, " AK1 ", "sekrit ") == "ann"
    assert check_login(snap, "AK1", "wrong") is None
    assert check_login(snap, "AK1", "") is None          # empty secret: AK1 is no token
    assert check_login(snap, "nope", "sekrit") is None
    assert check_login(snap, tok, "") == "bob"
    assert check_login(snap, "", "") is None


def test_sessions_expire_end_and_follow_revocation():
    store = SessionStore(idle=10, lifetime=100, max_sessions=3)
    snap = _snap()
    s = store.create("ann", "AK1", now=0)
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", s.id)
    assert store.get(s.id, 5, snap) is s
    assert store.get(s.id, 14, snap) is s                # idle time restarts at each use
    assert store.get(s.id, 30, snap) is None             # idle too long
    s = store.create("ann", "AK1", now=0)
    for t in range(0, 101, 9):
        assert store.get(s.id, t, snap) is s
    assert store.get(s.id, 101, snap) is None            # past its lifetime
    s = store.create("ann", "AK1", now=0)
    assert store.get(s.id, 1, _snap(pairs={"AK2": ("x", "ann")})) is None   # key revoked
    s = store.create("ann", "AK1", now=0)
    store.end(s.id)
    assert store.get(s.id, 1, snap) is None
    ids = [store.create("ann", "AK1", now=0).id for _ in range(5)]
    assert len(store) == 3 and store.get(ids[0], 1, snap) is None
    assert store.get(None, 1, snap) is None and store.get("forged", 1, snap) is None


def test_cookie_flags_and_parsing():
    s = SessionStore().create("ann", "AK1", 0)
    name, value = cookie_header(s, 3600)
    assert name == "set-cookie"
    assert value.startswith(f"{COOKIE}={s.id};")
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=3600"):
        assert flag in value
    assert "AK1" not in value
    assert session_id_from([f"a=1; {COOKIE}={s.id}; b=2"]) == s.id
    assert session_id_from(["a=1", f"{COOKIE}="]) is None
