"""S3 versioning over commits: each bucket's status, and deleting a version by id.

Theory of operation (the whole mapping is docs/versioning.md)
-------------------------------------------------------------
* ``versioning_changes`` records each PutBucketVersioning: ``(repo, branch,
  seq) -> status, head, head_depth, time_ns``.  Nothing else changes when a
  status changes; which commits are *null* (made while ``Suspended``) is
  decided when reading (``history.NullRule``).  No record: ``Enabled``.
* An *expunge* deletes one version of a key (``expunge``): the entries that
  are that version -- the entry of its commit, and restore entries showing it
  (``version_alias``) -- are recorded in ``expunged`` and their ``object`` is
  set to NULL, so every read at every commit finds the key absent there (an
  expunged NULL is told apart from a delete marker by its ``expunged`` row);
  the branches whose head file is that version lose it from ``tree``; when it
  was the current version of the bucket's branch, a *restore commit* writes
  the newest remaining version back (its entry recorded in ``version_alias``
  as showing that version).  Commit rows, parents, skip pointers and
  provenance are never touched.  The object rows, now unreferenced, are left
  to ``s3gw gc`` (``SqliteMetadata.delete_unreferenced_objects``), which
  then frees their chunks: deleting a row here could hand its id to a new
  object while a copy that read it is about to commit.

All functions take a cursor inside the caller's write transaction (or a
reader connection for reads) and block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .history import Lineage, NullRule, db_step, key_entries, key_versions, record_commit
from .model import CommitInfo, NoSuchBranch, PfsError

__all__ = [
    "SCHEMA", "ENABLED", "SUSPENDED", "ExpungeResult", "ExpungeRecord", "InvalidVersionStatus",
    "status", "set_status", "expunge", "records", "forget_branch", "forget_repo",
]

ENABLED, SUSPENDED = "Enabled", "Suspended"

SCHEMA = """
CREATE TABLE IF NOT EXISTS versioning_changes(
    repo TEXT NOT NULL, branch TEXT NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL,
    head TEXT, head_depth INTEGER NOT NULL, time_ns INTEGER NOT NULL,
    PRIMARY KEY(repo, branch, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS expunged(
    repo TEXT NOT NULL, path TEXT NOT NULL, commit_id TEXT NOT NULL, object INTEGER,
    version TEXT NOT NULL, branch TEXT NOT NULL, time_ns INTEGER NOT NULL, principal TEXT,
    restore_commit TEXT,
    PRIMARY KEY(repo, path, commit_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS expunged_commit ON expunged(commit_id);
CREATE TABLE IF NOT EXISTS version_alias(
    repo TEXT NOT NULL, path TEXT NOT NULL, commit_id TEXT NOT NULL, version TEXT NOT NULL,
    PRIMARY KEY(repo, path, commit_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS version_alias_version ON version_alias(repo, path, version);
"""


class InvalidVersionStatus(PfsError):
    """A versioning status other than Enabled or Suspended."""


@dataclass(frozen=True)
class ExpungeResult:
    """What ``expunge`` did.

    Attributes:
        version_id: the version asked for (a commit id or ``null``).
        removed: the commits whose entries of the key were expunged (empty: no-op).
        delete_marker: the version removed was a delete marker.
        restored: the restore commit made on the branch, if the version was current
            and an older object version is current again.
    """

    version_id: str
    removed: tuple[str, ...]
    delete_marker: bool
    restored: CommitInfo | None


@dataclass(frozen=True)
class ExpungeRecord:
    """One expunged entry, for ``s3gw log``."""

    repo: str
    path: str
    commit_id: str          # the commit whose entry of ``path`` was expunged
    version: str            # the version id the request named
    branch: str             # the bucket's branch the request came through
    time_ns: int
    principal: str | None   # the user (None: auth was off)
    restore_commit: str | None


# -- status ------------------------------------------------------------------------------
def status(conn, repo: str, branch: str) -> str:
    """The branch's current status (``Enabled`` when never set)."""
    row = conn.execute("SELECT status FROM versioning_changes WHERE repo=? AND branch=? "
                       "ORDER BY seq DESC LIMIT 1", (repo, branch)).fetchone()
    return ENABLED if row is None else row[0]


def set_status(cur, repo: str, branch: str, new_status: str, now_ns: int) -> bool:
    """Record a status change at the branch's current head; False if unchanged."""
    if new_status not in (ENABLED, SUSPENDED):
        raise InvalidVersionStatus(new_status)
    row = cur.execute("SELECT b.head, c.depth FROM branches b LEFT JOIN commits c "
                      "ON c.id = b.head WHERE b.repo=? AND b.name=?", (repo, branch)).fetchone()
    if row is None:
        raise NoSuchBranch(f"{branch}.{repo}")
    if status(cur, repo, branch) == new_status:
        return False
    head, depth = row
    seq = cur.execute("SELECT coalesce(max(seq), 0) + 1 FROM versioning_changes WHERE repo=? "
                      "AND branch=?", (repo, branch)).fetchone()[0]
    cur.execute("INSERT INTO versioning_changes VALUES(?,?,?,?,?,?,?)",
                (repo, branch, seq, new_status, head, -1 if head is None else depth, now_ns))
    return True


def suspended_branches(conn) -> set[tuple[str, str]]:
    """Every (repo, branch) whose current status is ``Suspended``."""
    return {(repo, branch) for repo, branch, st in conn.execute(
        "SELECT v.repo, v.branch, v.status FROM versioning_changes v WHERE v.seq = "
        "(SELECT max(seq) FROM versioning_changes w WHERE w.repo = v.repo AND "
        "w.branch = v.branch)") if st == SUSPENDED}


def forget_branch(cur, repo: str, branch: str) -> None:
    """A deleted branch's status history goes with it (a new branch starts Enabled)."""
    cur.execute("DELETE FROM versioning_changes WHERE repo=? AND branch=?", (repo, branch))


def forget_repo(cur, repo: str) -> None:
    """A deleted repo's expunge records and restore aliases go with its history."""
    cur.execute("DELETE FROM expunged WHERE repo=?", (repo,))
    cur.execute("DELETE FROM version_alias WHERE repo=?", (repo,))
    cur.execute("DELETE FROM versioning_changes WHERE repo=?", (repo,))


# -- expunge -----------------------------------------------------------------------------
def expunge(cur, repo: str, branch: str, path: str, version: str, now_ns: int,
            principal: str | None, new_commit_id: Callable[[], str]) -> ExpungeResult:
    """Delete version ``version`` (a commit id or ``null``) of ``path`` as seen from
    the branch; see the module doc.  Runs inside the caller's write transaction.

    A version the branch's view does not have (never, or already expunged) is a
    no-op (``removed`` empty).
    Raises:
        NoSuchBranch: no such branch.
    """
    row = cur.execute("SELECT head FROM branches WHERE repo=? AND name=?",
                      (repo, branch)).fetchone()
    if row is None:
        raise NoSuchBranch(f"{branch}.{repo}")
    none = ExpungeResult(version, (), False, None)
    if row[0] is None:
        return none
    tip = _commit(cur, row[0])
    lineage = Lineage(cur, tip, db_step(cur))
    nulls = NullRule(cur, repo, lineage)
    view = key_versions(cur, repo, lineage, path, nulls)
    # the versions (by source commit) the request names, on this lineage
    sources: set[str] = set()
    marker = False
    for depth, cid, _oid, _t, cbranch, gone, alias in key_entries(cur, repo, lineage, path):
        if gone:
            continue
        source = alias or cid
        if version == "null":
            src_branch, src_depth = (cbranch, depth) if not alias else _branch_depth(cur, alias)
            hit = nulls.is_null(src_branch, src_depth)
        else:
            hit = source == version
        if hit:
            sources.add(source)
    if not sources:
        return none
    for v in view:
        if v.source in sources and (version != "null" or v.version_id == "null"):
            marker = v.object is None
            break
    else:  # only hidden null versions: they are objects or markers alike
        marker = False
    current = bool(view) and view[0].source in sources
    marks = ",".join("?" * len(sources))
    ids = sorted(sources)
    targets = cur.execute(
        f"SELECT depth, commit_id, object FROM entries WHERE repo=? AND path=? AND "
        f"commit_id IN ({marks}) UNION "
        f"SELECT e.depth, e.commit_id, e.object FROM version_alias a JOIN entries e "
        f"ON e.repo = a.repo AND e.path = a.path AND e.commit_id = a.commit_id "
        f"WHERE a.repo=? AND a.path=? AND a.version IN ({marks})",
        (repo, path, *ids, repo, path, *ids)).fetchall()
    removed = []
    for depth, cid, oid in targets:
        if cur.execute("INSERT INTO expunged VALUES(?,?,?,?,?,?,?,?,NULL) "
                       "ON CONFLICT(repo, path, commit_id) DO NOTHING",
                       (repo, path, cid, oid, version, branch, now_ns, principal)).rowcount:
            cur.execute("UPDATE entries SET object=NULL WHERE repo=? AND path=? AND depth=? "
                        "AND commit_id=?", (repo, path, depth, cid))
            removed.append(cid)
    cur.execute(f"DELETE FROM tree WHERE repo=? AND path=? AND commit_id IN ({marks})",
                (repo, path, *ids))
    restored = None
    if current:
        after = key_versions(cur, repo, lineage, path, nulls)
        if after and after[0].object is not None:
            restored = _restore(cur, tip, branch, path, after[0], version, now_ns,
                                new_commit_id)
            cur.execute(f"UPDATE expunged SET restore_commit=? WHERE repo=? AND path=? AND "
                        f"commit_id IN ({','.join('?' * len(removed))})",
                        (restored.id, repo, path, *removed))
    return ExpungeResult(version, tuple(sorted(removed)), marker, restored)


def _restore(cur, tip: CommitInfo, branch: str, path: str, v, deleted: str, now_ns: int,
             new_commit_id: Callable[[], str]) -> CommitInfo:
    """A commit on the branch head writing version ``v``'s object back to ``path``; its
    entry shows ``v``'s version (``version_alias``) and the head tree row names it."""
    repo = tip.repo
    source = v.source
    src_time = _commit(cur, source).time_ns
    cid, depth = new_commit_id(), tip.depth + 1
    message = f"RESTORE /{path} to version {source} (version {deleted} deleted)"
    cur.execute("INSERT INTO commits VALUES(?,?,?,?,?,?,?)",
                (cid, repo, branch, tip.id, depth, now_ns, message))
    cur.execute("INSERT INTO entries VALUES(?,?,?,?,?)", (repo, path, depth, cid, v.object.id))
    cur.execute("INSERT INTO version_alias VALUES(?,?,?,?)", (repo, path, cid, source))
    cur.execute("INSERT INTO tree VALUES(?,?,?,?,?,?) ON CONFLICT(repo, branch, path) DO "
                "UPDATE SET object=excluded.object, commit_id=excluded.commit_id, "
                "time_ns=excluded.time_ns", (repo, branch, path, v.object.id, source, src_time))
    record_commit(cur, cid, tip.id, depth)
    cur.execute("UPDATE branches SET head=? WHERE repo=? AND name=?", (cid, repo, branch))
    return CommitInfo(cid, repo, branch, tip.id, depth, now_ns, message)


def records(conn, repo: str, commit_ids: list[str] | None = None,
            path: str | None = None) -> list[ExpungeRecord]:
    """Expunge records of a repo (of those commits, or that path), oldest first."""
    sql = ("SELECT repo, path, commit_id, version, branch, time_ns, principal, restore_commit "
           "FROM expunged WHERE repo=?")
    args: list = [repo]
    if commit_ids is not None:
        if not commit_ids:
            return []
        sql += f" AND commit_id IN ({','.join('?' * len(commit_ids))})"
        args += commit_ids
    if path is not None:
        sql += " AND path=?"
        args.append(path)
    return [ExpungeRecord(*r) for r in conn.execute(sql + " ORDER BY time_ns, path", args)]


def _commit(cur, cid: str) -> CommitInfo:
    row = cur.execute("SELECT id, repo, branch, parent, depth, time_ns, message FROM commits "
                      "WHERE id=?", (cid,)).fetchone()
    return CommitInfo(*row)


def _branch_depth(cur, cid: str) -> tuple[str, int]:
    row = cur.execute("SELECT branch, depth FROM commits WHERE id=?", (cid,)).fetchone()
    return row[0], row[1]
