"""What the console reads: blocking calls into pfs, pps and the chunk store.

Theory of operation
-------------------
Each function here answers one page's question with a bounded amount of
work, using the metadata store's range scans: a commit log page walks
``limit`` parents from a cursor commit; a folder page reads about ``limit``
files (a subfolder costs one seek past its subtree, whatever it holds); a
commit's changes are a range of the ``entries_commit`` index.  Nothing loads
a whole repo.  The exceptions are written down: a branch's size is one scan
of its tree rows (cached per head commit: heads are immutable, so the figure
never goes stale), and a diff walks the commits between the two tips (see
``pfs.history.History.diff``).

Every function blocks; the console runs them in its own worker threads
(``console.server``), never on the S3 limiter.  Visibility is decided here:
``Viewer.can_read`` (auth off: everything but internal repos; on: what
``AuthSnapshot.may`` allows at READER, admins everything).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ..pfs.roles import AuthSnapshot, Role
from ..pfs.history import FileDeleted
from ..pfs.metadata import SqliteMetadata, prefix_upper_bound
from ..pfs.model import BranchInfo, CommitInfo, FileInfo, NoSuchBranch, NoSuchCommit, NoSuchFile
from ..pps.jobs import JobInfo, is_internal_repo
from ..pps.interface import NoSuchJob, PipelineStore
from ..store.manifest import Manifest
from .dag import Graph, Node

__all__ = ["Viewer", "Ref", "NotVisible", "BranchRow", "RepoRow", "LogRow", "Folder",
           "DiffRow", "UsageCache", "overview", "resolve_ref", "branch_log", "commit_changes",
           "folder", "stat", "read_prefix", "diff", "graph", "jobs", "job", "job_log_tail",
           "version", "read_chunks"]

_COMMIT = re.compile(r"[0-9a-f]{32}")


class NotVisible(Exception):
    """Unknown, or not readable by this viewer: the console answers 404 for both, so a
    user learns nothing of repos it may not read."""


@dataclass(frozen=True)
class Viewer:
    """Who is looking: ``user`` None with auth off."""

    user: str | None
    snapshot: AuthSnapshot | None

    def can_read(self, repo: str) -> bool:
        if is_internal_repo(repo):
            return False
        if self.snapshot is None or not self.snapshot.enabled:
            return True
        return self.user is not None and self.snapshot.may(self.user, repo, Role.READER)

    def check(self, repo: str) -> None:
        if not self.can_read(repo):
            raise NotVisible(repo)


@dataclass(frozen=True)
class BranchRow:
    branch: BranchInfo
    head: CommitInfo | None
    files: int
    bytes: int


@dataclass(frozen=True)
class RepoRow:
    name: str
    branches: list[BranchRow]
    logical: int          # bytes of every branch head as plain copies
    unique: int           # bytes of the distinct objects those heads hold

    @property
    def last_change(self) -> int | None:
        return max((b.head.time_ns for b in self.branches if b.head), default=None)


class UsageCache:
    """Branch and repo sizes, keyed by head commits (immutable, so never stale)."""

    def __init__(self, limit: int = 4096):
        self.limit = limit
        self._d: dict[tuple, tuple[int, int]] = {}

    def get(self, key: tuple, compute) -> tuple[int, int]:
        hit = self._d.get(key)
        if hit is None:
            hit = compute()
            if len(self._d) >= self.limit:
                self._d.clear()
            self._d[key] = hit
        return hit


def overview(meta: SqliteMetadata, viewer: Viewer, cache: UsageCache) -> list[RepoRow]:
    by_repo: dict[str, list[BranchInfo]] = {}
    for b in meta.list_branches():
        if viewer.can_read(b.repo):
            by_repo.setdefault(b.repo, []).append(b)
    rows = []
    for repo, branches in by_repo.items():
        out = []
        for b in branches:
            head = meta.get_commit(b.head) if b.head else None
            files, nbytes = cache.get(("branch", repo, b.name, b.head),
                                      lambda r=repo, n=b.name: meta.branch_usage(r, n))
            out.append(BranchRow(b, head, files, nbytes))
        key = ("repo", repo, tuple((b.name, b.head) for b in branches))
        logical, unique = cache.get(key, lambda r=repo: meta.repo_usage(r))
        rows.append(RepoRow(repo, out, logical, unique))
    return rows


@dataclass(frozen=True)
class Ref:
    """What a ``ref`` in a URL names: a branch (its head) or a commit."""

    repo: str
    name: str                      # as given
    branch: str | None             # set when the ref is a branch
    commit: CommitInfo | None      # the branch head, or the commit; None: empty branch


def resolve_ref(meta: SqliteMetadata, viewer: Viewer, repo: str, ref: str) -> Ref:
    viewer.check(repo)
    if _COMMIT.fullmatch(ref):
        try:
            c = meta.get_commit(ref)
        except NoSuchCommit:
            raise NotVisible(ref) from None
        if c.repo != repo:
            raise NotVisible(ref)
        return Ref(repo, ref, None, c)
    try:
        b = meta.get_branch(repo, ref)
    except NoSuchBranch:
        raise NotVisible(ref) from None
    return Ref(repo, ref, ref, meta.get_commit(b.head) if b.head else None)


@dataclass(frozen=True)
class LogRow:
    commit: CommitInfo
    changes: int
    provenance: dict | None


def branch_log(meta: SqliteMetadata, ref: Ref, before: str | None,
               limit: int) -> tuple[list[LogRow], str | None]:
    """``limit`` commits of the ref's lineage, newest first, starting at ``before``
    (a commit id of that lineage; None: the tip); and the cursor of the next page."""
    start = ref.commit
    if before is not None:
        if not _COMMIT.fullmatch(before):
            raise NotVisible(before)
        try:
            start = meta.get_commit(before)
        except NoSuchCommit:
            raise NotVisible(before) from None
        if ref.commit is None or start.repo != ref.repo or \
                not meta.history.is_ancestor(start.id, ref.commit.id):
            raise NotVisible(before)
    rows: list[LogRow] = []
    c = start
    while c is not None and len(rows) < limit:
        rows.append(LogRow(c, meta.history.change_count(c.id), meta.provenance_of(c.id)))
        c = meta.get_commit(c.parent) if c.parent else None
    return rows, (c.id if c is not None else None)


def commit_changes(meta: SqliteMetadata, commit: CommitInfo, after: str | None,
                   limit: int) -> tuple[list[tuple[str, int | None, str | None]], str | None]:
    rows = meta.history.changes(commit.id, after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1][0] if more else None)


@dataclass(frozen=True)
class Folder:
    folders: list[str]           # full prefixes, ending in "/"
    files: list[FileInfo]
    entries: list[tuple[str, object]]   # ("dir", prefix) | ("file", FileInfo), in order
    next_after: str | None


def _lister(meta: SqliteMetadata, ref: Ref):
    if ref.commit is None:
        return lambda prefix, after, limit, inclusive: []
    if ref.branch is not None:
        return lambda prefix, after, limit, inclusive: meta.list_files(
            ref.repo, ref.branch, prefix, after, limit, inclusive=inclusive)
    cid = ref.commit.id
    return lambda prefix, after, limit, inclusive: meta.list_at(
        ref.repo, cid, prefix, after, limit, inclusive=inclusive)


def folder(meta: SqliteMetadata, ref: Ref, prefix: str, after: str | None,
           limit: int = 200) -> Folder:
    """One page of a folder: subfolders (prefixes up to the next ``/``) and files, in
    UTF-8 byte order, resuming after ``after`` (a file path, or a subfolder prefix).

    A subfolder costs one listing call that returns its first file, then the listing
    seeks past it (``prefix_upper_bound``), so a folder of a few big subfolders is as
    cheap as one of a few files.  Batches start small and double while they hold only
    files, so little is read and thrown away at a subfolder."""
    list_ = _lister(meta, ref)
    entries: list[tuple[str, object]] = []
    pos, inclusive = after, False
    if after and after != prefix and after.startswith(prefix) and after.endswith("/"):
        pos = prefix_upper_bound(after)                   # resume past a subfolder
        inclusive = True
        if pos is None:
            return Folder([], [], [], None)
    batch = 16
    done = False
    while len(entries) < limit and not done:
        want = min(batch, limit - len(entries))
        got = list_(prefix, pos, want, inclusive)
        if len(got) < want:
            done = True
        jumped = False
        for f in got:
            rest = f.path[len(prefix):]
            cut = rest.find("/")
            if cut >= 0:
                sub = prefix + rest[:cut + 1]
                entries.append(("dir", sub))
                upper = prefix_upper_bound(sub)
                if upper is None:
                    done = True
                else:
                    pos, inclusive = upper, True
                    done = False
                jumped = True
                break
            entries.append(("file", f))
            pos, inclusive = f.path, False
            if len(entries) >= limit:
                break
        batch = 8 if jumped else min(batch * 2, 256)
    next_after = None
    if len(entries) >= limit and not done:
        kind, last = entries[-1]
        cursor = last if kind == "dir" else last.path
        if _more(list_, prefix, cursor, kind):
            next_after = cursor
    return Folder([e for k, e in entries if k == "dir"],
                  [e for k, e in entries if k == "file"], entries, next_after)


def _more(list_, prefix: str, cursor: str, kind: str) -> bool:
    if kind == "dir":
        upper = prefix_upper_bound(cursor)
        return upper is not None and bool(list_(prefix, upper, 1, True))
    return bool(list_(prefix, cursor, 1, False))


def stat(meta: SqliteMetadata, ref: Ref, path: str) -> FileInfo:
    """The file at the ref.  Raises NotVisible (also for a deleted file)."""
    if ref.commit is None:
        raise NotVisible(path)
    try:
        if ref.branch is not None:
            return meta.stat(ref.repo, ref.branch, path)
        h = meta.history
        return h.stat_in(ref.repo, h.lineage(ref.commit), path)
    except (NoSuchFile, FileDeleted, NoSuchBranch):
        raise NotVisible(path) from None


def read_prefix(store, info: FileInfo, limit: int) -> bytes:
    """Up to ``limit`` bytes from the start of a file (whole chunks, verified)."""
    out = bytearray()
    for ref in Manifest.unpack(info.object.manifest).chunks:
        if len(out) >= limit:
            break
        out += store.read(ref, 0, min(ref.length, limit - len(out)))
    return bytes(out)


def read_chunks(info: FileInfo) -> list:
    """The chunk references of a file, in order (for streaming a download)."""
    return list(Manifest.unpack(info.object.manifest).chunks)


@dataclass(frozen=True)
class DiffRow:
    status: str               # A, M, D
    path: str
    old_size: int | None
    new_size: int | None


def diff(meta: SqliteMetadata, old: CommitInfo, new: CommitInfo,
         limit: int = 1000) -> tuple[list[DiffRow], int]:
    """Paths added, changed and deleted from ``old`` to ``new`` with their sizes at
    each side (the first ``limit`` of them), and how many there are in all."""
    h = meta.history
    entries = h.diff(old.id, new.id)
    la, lb = h.lineage(old), h.lineage(new)

    def size_in(lineage, path):
        try:
            return h.stat_in(old.repo, lineage, path).object.size
        except (NoSuchFile, FileDeleted):
            return None

    rows = [DiffRow(e.status, e.path, size_in(la, e.path) if e.status != "A" else None,
                    size_in(lb, e.path) if e.status != "D" else None)
            for e in entries[:limit]]
    return rows, len(entries)


def graph(meta: SqliteMetadata, pps: PipelineStore, viewer: Viewer) -> Graph:
    """Repos and pipelines the viewer may read (a pipeline: if its output repo is)."""
    g = Graph()
    heads = {}
    for b in meta.list_branches():
        if viewer.can_read(b.repo):
            heads.setdefault(b.repo, []).append(b)
    for repo, branches in sorted(heads.items()):
        detail = ", ".join(b.name for b in branches)
        g.add(Node(f"repo:{repo}", "repo", repo, f"/repo/{repo}", None, detail))
    for p in pps.pipelines():
        if not viewer.can_read(p.name):
            continue
        latest = pps.latest_job(p.name)
        state = latest.state.value if latest else None
        g.add(Node(f"pipeline:{p.name}", "pipeline", p.name, f"/jobs?pipeline={p.name}",
                   state, f"v{p.version} · {state or 'no job yet'}"))
        if f"repo:{p.name}" not in g.nodes:
            g.add(Node(f"repo:{p.name}", "repo", p.name, f"/repo/{p.name}", None, "(no commit)"))
        g.edge(f"pipeline:{p.name}", f"repo:{p.name}")
        for inp in _inputs(p.spec):
            if viewer.can_read(inp):
                g.edge(f"repo:{inp}", f"pipeline:{p.name}")
    return g


def _inputs(spec) -> list[str]:
    """The repos a pipeline spec reads (any nesting of cross), each once."""
    return sorted({i.repo for i in spec.inputs})


def jobs(pps: PipelineStore, viewer: Viewer, pipeline: str | None, limit: int = 200) -> list[JobInfo]:
    if pipeline is not None:
        viewer.check(pipeline)
    return [j for j in pps.jobs(pipeline, limit=limit) if viewer.can_read(j.pipeline)]


def job(pps: PipelineStore, viewer: Viewer, job_id: str) -> JobInfo:
    if not re.fullmatch(r"[0-9a-f]{32}", job_id):
        raise NotVisible(job_id)
    try:
        j = pps.job(job_id)
    except NoSuchJob:
        raise NotVisible(job_id) from None
    viewer.check(j.pipeline)
    return j


def job_log_tail(pps: PipelineStore, j: JobInfo, limit: int = 64 * 1024) -> tuple[bytes, int]:
    """The last ``limit`` bytes of a job's log, and the log's whole size."""
    total = pps.log_size(j.id)
    return pps.read_log(j.id, max(0, total - limit), limit), total


def version(meta: SqliteMetadata, pps: PipelineStore, viewer: Viewer) -> str:
    """A short token that changes when a visible branch head or a job's state changes."""
    h = hashlib.blake2b(digest_size=12)
    for b in meta.list_branches():
        if viewer.can_read(b.repo):
            h.update(f"{b.repo}\0{b.name}\0{b.head}\n".encode())
    for j in pps.jobs(None, limit=100):
        if viewer.can_read(j.pipeline):
            h.update(f"{j.id}\0{j.state.value}\n".encode())
    return h.hexdigest()
