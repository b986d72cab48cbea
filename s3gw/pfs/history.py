"""History reads: files as they were at a commit, version listings, diffs.

Theory of operation
-------------------
Commits form a tree (one parent each; branches fork, nothing merges).  Each
commit has a ``depth`` (the root's is 0, a child's its parent's + 1), and
``entries`` records, per path, every commit that changed it (``object`` NULL
for a delete), keyed ``(repo, path, depth, commit_id)``.

*Ancestry.*  Commit ``a`` is an ancestor of ``b`` iff the ancestor of ``b``
at ``depth(a)`` is ``a``.  To find the ancestor at a given depth without
walking thousands of parents, every commit stores one extra pointer in
``commit_skip``: its ancestor at depth ``skip_depth(depth)`` (the skip list
of Bitcoin Core's ``CBlockIndex::pskip``).  Following parent and skip
pointers reaches any ancestor in O(log n) row lookups; the pointer is
computed in the commit's own transaction (``record_commit``) and back-filled
for databases written before this table existed (``ensure_schema``).  A
commit without a skip row is still handled: the walk steps to its parent.

:class:`Lineage` answers "which commit of this lineage has depth d" for one
tip, memoising what it learnt, so that listing a commit or a key's versions
(depths descending) costs a couple of lookups per row.

*A file at a commit* is the entry with the greatest depth among the entries
of that path whose commit lies on the commit's lineage: one index range scan
``(repo, path, depth <= tip) ORDER BY depth DESC``, skipping entries made on
other branches (checked with the lineage).

*Listing a commit* reads the ``entries`` index in path order, a batch of rows
per query (``path > previous AND depth <= tip ORDER BY path, depth LIMIT n``),
and keeps each path's deepest entry on the lineage; the page's objects,
restore aliases and commit times follow in one query each.  Paths made after
the commit (depth > the tip's) are skipped by the database's index scan, not
by a round trip each: a commit listed after the bucket grew tenfold pays a
scan of those index entries (measured in docs/benchmarks.md), not a query per
key.  ListObjectVersions (``versions``) still walks path by path.

*Version specs* (S3 ``versionId``): a 32-hex commit id, ``HEAD``, followed by
any number of ``^``, ``^N``, ``~``, ``~N``: each steps N (default 1)
generations back along the lineage.  Without merges git's ``^N`` (N-th
parent) has no meaning, so here ``^N`` = ``~N``.  ``null`` means the current
file.  A commit must lie on the lineage of the bucket's branch head (or of
the pinned commit): a commit of another branch is ``NoSuchCommit``.

Known weaknesses: a path changed many times on a *sibling* branch after the
fork costs a scan over those entries when read on this branch (they have
depths <= the tip's but are not ancestors).  ``diff`` walks the commits
between the two tips and their common ancestor (O(distance)).

All functions block and take a connection (or cursor) of the metadata
store's ``SqlAccess`` (``pfs.interface``: ``?`` placeholders, SQL both SQLite
and PostgreSQL speak); they do not write, except ``record_commit`` inside the
writer's transaction.  ``ensure_schema`` and ``backfill`` are SQLite's (the
PostgreSQL schema has ``commit_skip`` from its first migration).
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, insort
from dataclasses import dataclass
from typing import Iterator

from .keys import prefix_upper_bound, sql_limit
from .model import CommitInfo, FileInfo, NoSuchCommit, NoSuchFile, ObjectInfo, PfsError

__all__ = [
    "History", "Lineage", "VersionInfo", "VersionExpunged", "NullRule", "key_entries",
    "key_versions", "VersionPage", "DiffEntry", "FileDeleted",
    "InvalidVersion", "parse_version", "skip_depth", "record_commit", "ensure_schema", "backfill",
    "db_step", "skip_of",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS commit_skip(id TEXT PRIMARY KEY, skip TEXT NOT NULL) WITHOUT ROWID;
"""


class InvalidVersion(PfsError):
    """A version spec that does not parse (S3: InvalidArgument)."""


class FileDeleted(NoSuchFile):
    """The path's latest change at the commit read was a delete (a delete marker).

    ``commit_id`` / ``time_ns``: the commit that deleted it.
    """

    def __init__(self, path: str, commit_id: str, time_ns: int):
        super().__init__(path)
        self.commit_id = commit_id
        self.time_ns = time_ns


class VersionExpunged(NoSuchFile):
    """The path's latest change at the commit read is a version deleted by id (an
    expunge, ``pfs.versioning``): the file reads as absent there.

    ``commit_id``: the commit whose entry was expunged.
    """

    def __init__(self, path: str, commit_id: str):
        super().__init__(path)
        self.commit_id = commit_id


@dataclass(frozen=True)
class VersionInfo:
    path: str
    commit_id: str                 # the commit of the entry (the listing's resume marker)
    time_ns: int
    object: ObjectInfo | None      # None: a delete (delete marker)
    is_latest: bool
    version_id: str | None = None  # the S3 version id, when not ``commit_id``: ``null``, or
                                   # the version a restore entry shows (docs/versioning.md)
    origin: str | None = None      # the commit whose version this is, when not ``commit_id``
    depth: int = -1
    expunged: bool = False         # (``path_log`` only) deleted by id

    @property
    def s3_id(self) -> str:
        """The version id S3 clients see."""
        return self.version_id or self.commit_id

    @property
    def source(self) -> str:
        """The commit that made this version's content (a restore shows an older one)."""
        return self.origin or self.commit_id


@dataclass
class VersionPage:
    versions: list[VersionInfo]
    prefixes: list[str]
    truncated: bool = False
    next_key_marker: str | None = None
    next_version_marker: str | None = None


@dataclass(frozen=True)
class DiffEntry:
    status: str                    # "A", "M" or "D"
    path: str


# -- version specs (pure) -----------------------------------------------------------------
_SPEC = re.compile(r"(HEAD|[0-9a-f]{32})((?:[\^~][0-9]{0,9})*)")
_STEP = re.compile(r"[\^~]([0-9]{0,9})")


def parse_version(spec: str) -> tuple[str, int] | None:
    """``"null"`` -> None; ``HEAD~2`` -> ("HEAD", 2); ``<id>^^`` -> (id, 2).

    Raises:
        InvalidVersion: anything else.
    """
    if spec == "null":
        return None
    m = _SPEC.fullmatch(spec)
    if m is None:
        raise InvalidVersion(spec)
    back = sum(int(n) if n else 1 for n in _STEP.findall(m.group(2)))
    return m.group(1), back


# -- the skip list ----------------------------------------------------------------------
def _clear_lowest(n: int) -> int:
    return n & (n - 1)


def skip_depth(depth: int) -> int:
    """The depth of the ancestor a commit at ``depth`` keeps a skip pointer to."""
    if depth < 2:
        return 0
    if depth & 1:
        return _clear_lowest(_clear_lowest(depth - 1)) + 1
    return _clear_lowest(depth)


def _walk(step, start: str, depth: int, target: int) -> str:
    """Ancestor of ``start`` (at ``depth``) at depth ``target`` <= depth.

    ``step(id) -> (parent, skip | None)``.
    """
    walk, h = start, depth
    while h > target:
        parent, skip = step(walk)
        hs, hsp = skip_depth(h), skip_depth(h - 1)
        if skip is not None and (hs == target or (
                hs > target and not (hsp < hs - 2 and hsp >= target))):
            walk, h = skip, hs
        else:
            if parent is None:
                raise NoSuchCommit(walk)   # inconsistent depths: never expected
            walk, h = parent, h - 1
    return walk


def db_step(conn):
    """``step`` for ``_walk``: (parent, skip) of a commit, from the database."""
    return query_step(lambda sql, params: conn.execute(sql, params).fetchall())


def query_step(query):
    """``db_step`` over ``query(sql, params) -> rows``."""
    def step(cid: str):
        rows = query(
            "SELECT c.parent, s.skip FROM commits c LEFT JOIN commit_skip s ON s.id = c.id "
            "WHERE c.id=?", (cid,))
        if not rows:
            raise NoSuchCommit(cid)
        return rows[0]
    return step


def record_commit(cur, commit_id: str, parent: str | None, depth: int) -> None:
    """Store the new commit's skip pointer (inside its commit transaction)."""
    if parent is None:
        return
    skip = skip_of(db_step(cur), parent, depth)
    cur.execute("INSERT INTO commit_skip(id, skip) VALUES(?, ?) "
                "ON CONFLICT(id) DO UPDATE SET skip=excluded.skip", (commit_id, skip))


def skip_of(step, parent: str, depth: int) -> str:
    """The skip pointer of a new commit at ``depth`` whose parent is ``parent``;
    ``step(id) -> (parent, skip)`` reads the ancestors."""
    return _walk(step, parent, depth - 1, skip_depth(depth))


def ensure_schema(conn) -> None:
    """Create ``commit_skip`` (outside a transaction: ``executescript`` commits)."""
    conn.executescript(SCHEMA)


def backfill(cur) -> int:
    """Store skip pointers of commits written before ``commit_skip`` existed (inside a
    write transaction); returns how many."""
    missing = cur.execute(
        "SELECT count(*) FROM commits c WHERE c.parent IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM commit_skip s WHERE s.id = c.id)").fetchone()[0]
    if not missing:
        return 0
    parent_of: dict[str, str | None] = {}
    skip_of: dict[str, str] = {}
    for cid, parent, skip in cur.execute(
            "SELECT c.id, c.parent, s.skip FROM commits c LEFT JOIN commit_skip s "
            "ON s.id = c.id"):
        parent_of[cid] = parent
        if skip is not None:
            skip_of[cid] = skip

    def step(cid):
        return parent_of[cid], skip_of.get(cid)

    rows = []
    for cid, parent, depth in cur.execute(
            "SELECT id, parent, depth FROM commits WHERE parent IS NOT NULL ORDER BY depth"
    ).fetchall():
        if cid not in skip_of:
            skip_of[cid] = _walk(step, parent, depth - 1, skip_depth(depth))
            rows.append((cid, skip_of[cid]))
    cur.executemany("INSERT OR REPLACE INTO commit_skip(id, skip) VALUES(?, ?)", rows)
    return len(rows)


class Lineage:
    """The ancestors of one commit (the tip), resolved on demand and memoised.

    Every commit a walk passes is remembered (depth -> id), so resolving many
    depths of one lineage (a listing, a key's versions) visits each commit
    at most about once.  ``step`` may be shared: (parent, skip) of a commit
    never changes.
    """

    def __init__(self, conn, tip: CommitInfo | None, step=None):
        self.conn = conn
        self.tip = tip
        self._step = step or db_step(conn)
        self._known: dict[int, str] = {} if tip is None else {tip.depth: tip.id}
        self._depths: list[int] = sorted(self._known)

    def at(self, depth: int) -> str | None:
        """The id of the tip's ancestor at ``depth`` (None above the tip or below 0)."""
        if self.tip is None or depth > self.tip.depth or depth < 0:
            return None
        known = self._known
        hit = known.get(depth)
        if hit is not None:
            return hit
        i = bisect_left(self._depths, depth)
        h = self._depths[i]
        walk = known[h]
        while h > depth:                     # _walk, remembering each commit passed
            parent, skip = self._step(walk)
            hs, hsp = skip_depth(h), skip_depth(h - 1)
            if skip is not None and (hs == depth or (
                    hs > depth and not (hsp < hs - 2 and hsp >= depth))):
                walk, h = skip, hs
            else:
                if parent is None:
                    raise NoSuchCommit(walk)
                walk, h = parent, h - 1
            if h not in known:
                known[h] = walk
                insort(self._depths, h)
        return walk

    def contains(self, commit_id: str, depth: int) -> bool:
        return self.at(depth) == commit_id


class _StepCache:
    """(parent, skip) per commit id, read through to the database; bounded, shared."""

    def __init__(self, history: "History", limit: int = 1 << 18):
        self.history, self.limit = history, limit
        self.cache: dict[str, tuple[str | None, str | None]] = {}

    def __call__(self, cid: str):
        hit = self.cache.get(cid)
        if hit is None:
            hit = tuple(db_step(self.history.conn)(cid))
            if len(self.cache) >= self.limit:
                self.cache.clear()
            self.cache[cid] = hit
        return hit


# -- the S3 view of a key's versions (docs/versioning.md) -----------------------------------
class NullRule:
    """Which commits of one lineage are *null* (made while their branch was
    ``Suspended``), from the repo's ``versioning_changes`` (``pfs.versioning``).

    A commit made on branch ``b`` at depth ``d`` is null when the last change of
    ``b`` (by ``seq``) recorded at a head shallower than ``d`` that is an ancestor
    of it (the lineage's commit at that depth) said ``Suspended``.
    """

    def __init__(self, conn, repo: str, lineage: "Lineage"):
        self.lineage = lineage
        self.by_branch: dict[str, list[tuple[int, str | None, str]]] = {}
        for branch, head, head_depth, status in conn.execute(
                "SELECT branch, head, head_depth, status FROM versioning_changes WHERE repo=? "
                "ORDER BY branch, seq", (repo,)):
            self.by_branch.setdefault(branch, []).append((head_depth, head, status))

    def __bool__(self) -> bool:
        return bool(self.by_branch)

    def is_null(self, branch: str, depth: int) -> bool:
        status = "Enabled"
        for head_depth, head, st in self.by_branch.get(branch, ()):
            if head_depth < depth and (head is None or self.lineage.at(head_depth) == head):
                status = st
        return status == "Suspended"


def key_entries(conn, repo: str, lineage: "Lineage", path: str) -> Iterator[tuple]:
    """The path's entries on the lineage, newest first, as
    ``(depth, commit_id, object_id | None, time_ns, branch, expunged, alias)``
    (``alias``: the version a restore entry shows, else None)."""
    tip = lineage.tip
    if tip is None:
        return
    for row in conn.execute(
            "SELECT e.depth, e.commit_id, e.object, c.time_ns, c.branch, "
            "x.commit_id IS NOT NULL, a.version FROM entries e "
            "JOIN commits c ON c.id = e.commit_id "
            "LEFT JOIN expunged x ON x.repo = e.repo AND x.path = e.path "
            "AND x.commit_id = e.commit_id "
            "LEFT JOIN version_alias a ON a.repo = e.repo AND a.path = e.path "
            "AND a.commit_id = e.commit_id "
            "WHERE e.repo=? AND e.path=? AND e.depth<=? ORDER BY e.depth DESC",
            (repo, path, tip.depth)).fetchall():
        if lineage.contains(row[1], row[0]):
            yield row


def key_versions(conn, repo: str, lineage: "Lineage", path: str,
                 nulls: NullRule | None = None) -> list[VersionInfo]:
    """The key's versions as S3 shows them on the lineage, newest first.

    Expunged entries are skipped; a restore entry shows the version it restored
    (its id and time) and that version's own entry is not shown again; with
    ``nulls``, an entry of a null commit is version ``null`` and only the newest
    of them is shown (a later null version replaces an earlier one).
    ``ObjectInfo`` carries id, size and ETag only (no manifest).
    """
    out: list[VersionInfo] = []
    seen: set[str] = set()
    null_seen = False
    for depth, cid, oid, time_ns, branch, gone, alias in key_entries(conn, repo, lineage, path):
        if gone:
            continue
        source = alias or cid
        if source in seen:
            continue
        seen.add(source)
        src_depth = depth
        if alias:
            row = conn.execute("SELECT time_ns, branch, depth FROM commits WHERE id=?",
                               (alias,)).fetchone()
            if row is not None:
                time_ns, branch, src_depth = row
        version_id = alias
        if nulls and nulls.is_null(branch, src_depth):
            if null_seen:
                continue
            null_seen = True
            version_id = "null"
        obj = None
        if oid is not None:
            size, etag = conn.execute("SELECT size, etag FROM objects WHERE id=?",
                                      (oid,)).fetchone()
            obj = ObjectInfo(size=size, etag=etag, manifest=b"", id=oid)
        out.append(VersionInfo(path, cid, time_ns, obj, not out, version_id=version_id,
                               origin=alias, depth=depth))
    return out


# -- reads --------------------------------------------------------------------------------
_OBJ_COLS = "o.id, o.size, o.etag, o.manifest, o.headers, o.checksums, o.parts"
_ROWS_MAX = 4096       # entries rows read at once by a listing at a commit
# a listing at a commit: an entry, its restore alias, the times of its commit and of the
# alias's, its object.  Each join is on a primary key (a commit's time is not joined on
# ``coalesce(alias, commit)``: PostgreSQL cannot look that up in the index, and scanned
# every commit for each row)
_TIP_COLS = ("e.path, e.depth, e.commit_id, e.object, a.version, c.time_ns, ca.time_ns, "
             + _OBJ_COLS)
_TIP_JOINS = ("LEFT JOIN version_alias a ON a.repo = e.repo AND a.path = e.path "
              "AND a.commit_id = e.commit_id LEFT JOIN commits c ON c.id = e.commit_id "
              "LEFT JOIN commits ca ON ca.id = a.version LEFT JOIN objects o ON o.id = e.object")


def _object(row) -> ObjectInfo:
    oid, size, etag, manifest, headers, checksums, parts = row
    return ObjectInfo(size=size, etag=etag, manifest=manifest, headers=json.loads(headers),
                      checksums=json.loads(checksums), parts=tuple(json.loads(parts)), id=oid)


class History:
    """History queries over a ``MetadataStore`` (its per-thread ``reader`` connection)."""

    def __init__(self, meta):
        self.meta = meta
        self._step = _StepCache(self)
        self._tips: dict[str, CommitInfo] = {}   # list_at's commits (immutable), bounded

    @property
    def conn(self):
        return self.meta.reader

    # -- commits ----------------------------------------------------------------------
    def _commit(self, commit_id: str) -> CommitInfo:
        row = self.conn.execute(
            "SELECT id, repo, branch, parent, depth, time_ns, message FROM commits WHERE id=?",
            (commit_id,)).fetchone()
        if row is None:
            raise NoSuchCommit(commit_id)
        return CommitInfo(*row)

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """True if ``ancestor`` is ``descendant`` or one of its ancestors."""
        a, d = self._commit(ancestor), self._commit(descendant)
        return a.repo == d.repo and self.lineage(d).contains(a.id, a.depth)

    def resolve(self, repo: str, branch: str, spec: str,
                pinned: str | None = None) -> CommitInfo | None:
        """The commit a version spec names on a branch (or below a pinned commit).

        Returns None for ``null`` (the current file).
        Raises:
            InvalidVersion: the spec does not parse.
            NoSuchBranch: the branch does not exist.
            NoSuchCommit: unknown, of another repo, not on the lineage, or
                stepping back past the first commit.
        """
        parsed = parse_version(spec)
        if parsed is None:
            return None
        base, back = parsed
        head_id = pinned if pinned is not None else self.meta.get_branch(repo, branch).head
        if head_id is None:
            raise NoSuchCommit(spec)
        head = self._commit(head_id)
        if head.repo != repo:
            raise NoSuchCommit(spec)
        lineage = self.lineage(head)
        if base == "HEAD":
            start = head
        else:
            start = self._commit(base)
            if start.repo != repo or not lineage.contains(start.id, start.depth):
                raise NoSuchCommit(spec)
        if back == 0:
            return start
        target = lineage.at(start.depth - back)
        if target is None:
            raise NoSuchCommit(spec)
        return self._commit(target)

    # -- files at a commit ------------------------------------------------------------
    def _latest(self, repo: str, lineage: Lineage, path: str):
        """(depth, commit_id, object id | None) of the path's last change on the lineage."""
        tip = lineage.tip
        if tip is None:
            return None
        for depth, cid, obj in self.conn.execute(
                "SELECT depth, commit_id, object FROM entries WHERE repo=? AND path=? AND "
                "depth<=? ORDER BY depth DESC", (repo, path, tip.depth)):
            if lineage.contains(cid, depth):
                return depth, cid, obj
        return None

    def _file(self, path: str, cid: str, oid: int, repo: str | None = None) -> FileInfo:
        """The file of entry ``(path, cid) -> oid``; with ``repo``, a restore entry
        reads as the version it restored (its id and time)."""
        row = self.conn.execute(f"SELECT {_OBJ_COLS} FROM objects o WHERE o.id=?",
                                (oid,)).fetchone()
        if repo is not None:
            alias = self.conn.execute(
                "SELECT version FROM version_alias WHERE repo=? AND path=? AND commit_id=?",
                (repo, path, cid)).fetchone()
            if alias is not None:
                cid = alias[0]
        time_ns = self.conn.execute("SELECT time_ns FROM commits WHERE id=?",
                                    (cid,)).fetchone()[0]
        return FileInfo(path, _object(row), cid, time_ns)

    def stat_at(self, repo: str, branch: str, commit: str, path: str) -> FileInfo:
        """The file ``path`` as it was at ``commit`` (a version spec) on ``branch``.

        ``FileInfo.commit_id`` is the commit that last changed the file at
        that point (its version id), ``time_ns`` that commit's time.
        Raises:
            NoSuchBranch, NoSuchCommit, InvalidVersion: see ``resolve``.
            FileDeleted: the last change at that commit was a delete.
            NoSuchFile: the path never existed on that lineage.
        """
        c = self.resolve(repo, branch, commit)
        if c is None:
            return self.meta.stat(repo, branch, path)
        return self.stat_in(repo, self.lineage(c), path)

    def lineage(self, commit: CommitInfo | None) -> Lineage:
        return Lineage(self.conn, commit, self._step)

    def stat_in(self, repo: str, lineage: Lineage, path: str) -> FileInfo:
        """The file at the lineage's tip (see ``stat_at``)."""
        hit = self._latest(repo, lineage, path)
        if hit is None:
            raise NoSuchFile(path)
        _depth, cid, oid = hit
        if oid is None:
            if self.conn.execute("SELECT 1 FROM expunged WHERE repo=? AND path=? AND "
                                 "commit_id=?", (repo, path, cid)).fetchone():
                raise VersionExpunged(path, cid)
            time_ns = self.conn.execute("SELECT time_ns FROM commits WHERE id=?",
                                        (cid,)).fetchone()[0]
            raise FileDeleted(path, cid, time_ns)
        return self._file(path, cid, oid, repo)

    def null_version(self, repo: str, branch: str, path: str,
                     pinned: str | None = None) -> VersionInfo | None:
        """The key's visible ``null`` version on the branch (or below the pinned
        commit), or None when it has none (docs/versioning.md)."""
        head_id = pinned if pinned is not None else self.meta.get_branch(repo, branch).head
        if head_id is None:
            return None
        lineage = self.lineage(self._commit(head_id))
        nulls = NullRule(self.conn, repo, lineage)
        if not nulls:
            return None
        for v in key_versions(self.conn, repo, lineage, path, nulls):
            if v.version_id == "null":
                return v
        return None

    def file_of(self, repo: str, v: VersionInfo) -> FileInfo:
        """The file of a version from ``key_versions`` (an object, not a marker)."""
        assert v.object is not None and v.object.id is not None
        return self._file(v.path, v.commit_id, v.object.id, repo)

    def _next_path(self, repo: str, pos: str, upper: str | None,
                   inclusive: bool) -> str | None:
        """The first path of the repo's history > ``pos`` (>= with ``inclusive``) and
        < ``upper``, in UTF-8 byte order: one index seek."""
        sql = f"SELECT path FROM entries WHERE repo=? AND path {'>=' if inclusive else '>'} ?"
        args = [repo, pos]
        if upper is not None:
            sql += " AND path < ?"
            args.append(upper)
        row = self.conn.execute(sql + " ORDER BY path LIMIT 1", args).fetchone()
        return None if row is None else row[0]

    def _paths(self, repo: str, prefix: str, after: str | None,
               inclusive: bool = False) -> "_PathCursor":
        return _PathCursor(self, repo, prefix, after, inclusive)

    def list_at(self, repo: str, commit: str, prefix: str = "", after: str | None = None,
                limit: int = 1000, *, inclusive: bool = False) -> list[FileInfo]:
        """Files of a commit's tree in UTF-8 byte order (as ``list_files`` for a branch)."""
        c = self._tips.get(commit)
        if c is None:
            c = self._commit(commit)
            if len(self._tips) >= 1024:
                self._tips.clear()
            self._tips[commit] = c
        if c.repo != repo:
            raise NoSuchCommit(commit)
        out: list[FileInfo] = []
        if limit <= 0:
            return out
        for path, cid, oid, row in self._tip_entries(repo, self.lineage(c), prefix, after,
                                                     inclusive, limit + 1):
            if oid is None:
                continue
            if row is None:
                out.append(self._file(path, cid, oid, repo))
            else:        # alias, time, alias's time, object columns (_TIP_COLS)
                alias, time_ns, alias_time = row[4], row[5], row[6]
                out.append(FileInfo(path, _object(row[7:]), alias or cid,
                                    time_ns if alias is None else alias_time))
            if len(out) >= limit:
                break
        if not out and self._tips.pop(commit, None) is not None:
            self._commit(commit)     # a cached commit since deleted with its repo: NoSuchCommit
        return out

    def _tip_entries(self, repo: str, lineage: Lineage, prefix: str, after: str | None,
                     inclusive: bool, rows: int) -> Iterator[tuple]:
        """``(path, commit_id, object id | None, row | None)`` of each path's last
        change on the lineage, in UTF-8 byte order, for the paths under ``prefix``
        past ``after``; ``row`` is the query's row (``_TIP_COLS``: the restore alias,
        the commit times, the object), None when the path was resolved alone.

        Reads ``entries`` in batches (first ``rows`` rows, then doubling up to
        ``_ROWS_MAX``): ``ORDER BY path, depth``, the primary key's order, with
        ``depth <=`` the tip's in the query, so the paths made after the tip (a
        commit listed long after, the bucket grown since) are skipped inside the
        database, not one round trip each; each row carries its object, restore
        alias and commit times (joins on primary keys), so a batch is one query.
        A path's entries cut by the batch's end are read again with the next
        batch; a path with more entries than a batch holds is resolved alone
        (``_latest``).
        """
        tip = lineage.tip
        if tip is None:
            return
        upper = prefix_upper_bound(prefix) if prefix else None
        if after is None or after < prefix:
            pos, incl = prefix, True
        else:
            pos, incl = after, inclusive
        tail = "" if upper is None else " AND e.path < ?"
        rows = sql_limit(rows)     # a literal in the SQL (pfs.keys: PostgreSQL's plans)
        while True:
            args: list = [repo, pos, tip.depth]
            if upper is not None:
                args.append(upper)
            batch = self.conn.execute(
                f"SELECT {_TIP_COLS} FROM entries e {_TIP_JOINS} WHERE e.repo=? AND "
                f"e.path {'>=' if incl else '>'} ? AND e.depth <= ?{tail} "
                f"ORDER BY e.path, e.depth LIMIT {rows}", args).fetchall()
            full = len(batch) == rows
            end = len(batch)
            if full:                       # the last path may have more entries
                last = batch[-1][0]
                while end > 0 and batch[end - 1][0] == last:
                    end -= 1
                if end == 0:               # one path filled the batch
                    hit = self._latest(repo, lineage, last)
                    if hit is not None:
                        yield last, hit[1], hit[2], None
                    pos, incl = last, False
                    continue
            i = 0
            while i < end:                 # one path's entries, depths ascending
                j = i
                while j + 1 < end and batch[j + 1][0] == batch[i][0]:
                    j += 1
                for k in range(j, i - 1, -1):
                    row = batch[k]
                    if lineage.contains(row[2], row[1]):
                        yield row[0], row[2], row[3], row
                        break
                i = j + 1
            if not full:
                return
            pos, incl = batch[end - 1][0], False
            rows = min(rows * 2, _ROWS_MAX)

    # -- versions ---------------------------------------------------------------------
    def versions(self, repo: str, branch: str, prefix: str = "", key_marker: str | None = None,
                 version_marker: str | None = None, limit: int = 1000,
                 delimiter: str | None = None, pinned: str | None = None) -> VersionPage:
        """One page of ListObjectVersions for a branch (or a pinned commit).

        Keys in UTF-8 byte order; per key one version per commit that changed
        it, newest first, deletes as delete markers; ``is_latest`` on the
        newest.  ``limit`` counts versions and common prefixes (``limit=0``: an empty
        page, not truncated).  Resumes after
        ``(key_marker, version_marker)``; ``key_marker`` alone resumes after
        every version of that key (or, with a delimiter, past a common prefix).
        ``ObjectInfo`` of versions carries size and ETag only (no manifest).
        Raises:
            InvalidVersion: ``version_marker`` without ``key_marker``, or not a commit id.
        """
        head_id = pinned if pinned is not None else self.meta.get_branch(repo, branch).head
        page = VersionPage([], [])
        if head_id is None or limit <= 0:
            return page     # limit 0: empty and complete (S3: max-keys=0 is not truncated)
        lineage = self.lineage(self._commit(head_id))
        nulls = NullRule(self.conn, repo, lineage)
        count = 0

        def view(path: str) -> list[VersionInfo]:
            return key_versions(self.conn, repo, lineage, path, nulls)

        def emit(v: VersionInfo) -> bool:
            nonlocal count
            if count >= limit:
                page.truncated = True
                return False
            page.versions.append(v)
            page.next_key_marker, page.next_version_marker = v.path, v.commit_id
            count += 1
            return True

        after, inclusive = key_marker or None, False
        if key_marker and version_marker:
            if not re.fullmatch(r"[0-9a-f]{32}", version_marker):
                raise InvalidVersion(version_marker)
            row = self.conn.execute("SELECT depth FROM commits WHERE id=? AND repo=?",
                                    (version_marker, repo)).fetchone()
            if row is None:
                raise InvalidVersion(version_marker)
            if key_marker.startswith(prefix):
                for v in view(key_marker):
                    if v.depth >= row[0]:
                        continue           # the marker's version and those before it
                    if not emit(v):
                        return self._finish(page)
        elif version_marker:
            raise InvalidVersion(version_marker)
        elif key_marker and delimiter and key_marker.startswith(prefix) and \
                key_marker.endswith(delimiter) and delimiter in key_marker[len(prefix):]:
            upper = prefix_upper_bound(key_marker)
            if upper is None:
                return self._finish(page)
            after, inclusive = upper, True

        paths = self._paths(repo, prefix, after, inclusive)
        for path in paths:
            cut = path.find(delimiter, len(prefix)) if delimiter else -1
            versions = view(path)
            if cut >= 0:
                if not versions:
                    continue           # only other branches changed this path, or expunged
                cp = path[:cut + len(delimiter)]
                if count >= limit:
                    page.truncated = True
                    return self._finish(page)
                page.prefixes.append(cp)
                page.next_key_marker, page.next_version_marker = cp, None
                count += 1
                paths.skip_prefix(cp)
                continue
            for v in versions:
                if not emit(v):
                    return self._finish(page)
        return self._finish(page)

    @staticmethod
    def _finish(page: VersionPage) -> VersionPage:
        if not page.truncated:
            page.next_key_marker = page.next_version_marker = None
        return page

    def path_log(self, repo: str, branch: str, path: str, limit: int = 100,
                 pinned: str | None = None) -> list[VersionInfo]:
        """Commits that changed ``path`` on the branch's lineage, newest first, expunged
        versions included (``VersionInfo.expunged``; their ``object`` is None)."""
        head_id = pinned if pinned is not None else self.meta.get_branch(repo, branch).head
        if head_id is None:
            return []
        lineage = self.lineage(self._commit(head_id))
        out: list[VersionInfo] = []
        for depth, cid, oid, time_ns, _branch, gone, alias in key_entries(
                self.conn, repo, lineage, path):
            obj = None
            if oid is not None:
                size, etag = self.conn.execute("SELECT size, etag FROM objects WHERE id=?",
                                               (oid,)).fetchone()
                obj = ObjectInfo(size=size, etag=etag, manifest=b"", id=oid)
            out.append(VersionInfo(path, cid, time_ns, obj, not out, origin=alias, depth=depth,
                                   expunged=bool(gone)))
            if len(out) >= limit:
                break
        return out

    # -- diff -------------------------------------------------------------------------
    def common_ancestor(self, a: CommitInfo, b: CommitInfo) -> CommitInfo | None:
        if a.repo != b.repo:
            return None
        la, lb = self.lineage(a), self.lineage(b)
        lo, hi = -1, min(a.depth, b.depth)   # invariant: shared at lo (or none), not above hi
        if la.at(hi) == lb.at(hi):
            return self._commit(la.at(hi))
        while hi - lo > 1:                   # the lineages coincide below their fork
            mid = (lo + hi) // 2
            if la.at(mid) == lb.at(mid):
                lo = mid
            else:
                hi = mid
        return None if lo < 0 else self._commit(la.at(lo))

    def diff(self, old: str, new: str) -> list[DiffEntry]:
        """Paths added (A), modified (M) or deleted (D) going from ``old`` to ``new``.

        Modified means different content or stored headers; re-writing the
        same bytes is no change.
        """
        a, b = self._commit(old), self._commit(new)
        if a.repo != b.repo:
            raise NoSuchCommit(f"{old} and {new} are in different repos")
        base = self.common_ancestor(a, b)
        floor = -1 if base is None else base.depth
        changed: set[str] = set()
        for tip in (a, b):
            cid: str | None = tip.id
            depth = tip.depth
            while cid is not None and depth > floor:
                changed.update(p for (p,) in self.conn.execute(
                    "SELECT path FROM entries WHERE commit_id=?", (cid,)))
                cid = self.conn.execute("SELECT parent FROM commits WHERE id=?",
                                        (cid,)).fetchone()[0]
                depth -= 1
        la, lb = self.lineage(a), self.lineage(b)
        out = []
        for path in sorted(changed, key=lambda p: p.encode("utf-8")):
            fa, fb = self._state(a.repo, la, path), self._state(b.repo, lb, path)
            if fa is None and fb is not None:
                out.append(DiffEntry("A", path))
            elif fa is not None and fb is None:
                out.append(DiffEntry("D", path))
            elif fa is not None and fb is not None and fa != fb:
                out.append(DiffEntry("M", path))
        return out

    # -- one commit's changes (the console's commit page) -------------------------------
    def changes(self, commit_id: str, after: str | None = None,
                limit: int = 200) -> list[tuple[str, int | None, str | None]]:
        """The paths ``commit_id`` wrote or deleted, in UTF-8 byte order, ``> after``:
        ``(path, size, etag)``, size and etag None for a delete.  One range scan of
        the ``entries_commit`` index."""
        c = self._commit(commit_id)
        rows = self.conn.execute(
            "SELECT e.path, o.size, o.etag FROM entries e LEFT JOIN objects o ON o.id = e.object "
            "WHERE e.commit_id=? AND e.repo=? AND e.path>? ORDER BY e.path LIMIT ?",
            (c.id, c.repo, after or "", limit))
        return [(p, size, etag) for p, size, etag in rows]

    def change_count(self, commit_id: str) -> int:
        """How many paths ``commit_id`` wrote or deleted."""
        return self.conn.execute("SELECT count(*) FROM entries WHERE commit_id=?",
                                 (commit_id,)).fetchone()[0]

    def _state(self, repo: str, lineage: Lineage, path: str):
        hit = self._latest(repo, lineage, path)
        if hit is None or hit[2] is None:
            return None
        if hit[2] is None:
            return None
        row = self.conn.execute("SELECT size, etag, headers FROM objects WHERE id=?",
                                (hit[2],)).fetchone()
        return tuple(row)


class _PathCursor:
    """Iterates the distinct paths under a prefix; ``skip_prefix`` jumps past a subtree."""

    def __init__(self, history: History, repo: str, prefix: str, after: str | None,
                 inclusive: bool):
        self.h, self.repo = history, repo
        self.upper = prefix_upper_bound(prefix) if prefix else None
        if after is None or after < prefix:
            self.pos, self.inclusive = prefix, True
        else:
            self.pos, self.inclusive = after, inclusive
        self.done = False

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if self.done:
            raise StopIteration
        path = self.h._next_path(self.repo, self.pos, self.upper, self.inclusive)
        if path is None:
            self.done = True
            raise StopIteration
        self.pos, self.inclusive = path, False
        return path

    def skip_prefix(self, prefix: str) -> None:
        upper = prefix_upper_bound(prefix)
        if upper is None:
            self.done = True
        else:
            self.pos, self.inclusive = upper, True
