"""The reads both metadata backends serve with the same backend-neutral code.

``HistoryReads`` is a mixin of ``SqliteMetadata`` and ``PostgresMetadata``: history
(``pfs.history``), multipart staging (``pfs.uploads``) and the S3 versioning reads
(``pfs.versioning``), and the usage figures the console shows all run portable SQL through the backend's ``reader`` (and
``write``), so each backend gets them from here instead of repeating the delegation.
A backend provides ``reader`` and ``get_branch``.
"""

from __future__ import annotations

from functools import cached_property

from . import history as _history
from . import versioning as _versioning
from .model import FileInfo
from .uploads import UploadStaging

__all__ = ["HistoryReads"]


class HistoryReads:
    @cached_property
    def history(self) -> "_history.History":
        """History reads: commit ancestry, files and listings at a commit, versions, diff."""
        return _history.History(self)

    @cached_property
    def uploads(self) -> UploadStaging:
        """Multipart upload staging in this store (``pfs.uploads.UploadStaging``)."""
        return UploadStaging(self)

    def stat_at(self, repo: str, branch: str, commit: str, path: str) -> FileInfo:
        """The file as it was at ``commit`` (a version spec) on the branch's lineage."""
        return self.history.stat_at(repo, branch, commit, path)

    def list_at(self, repo: str, commit: str, prefix: str = "", after: str | None = None,
                limit: int = 1000, *, inclusive: bool = False) -> list[FileInfo]:
        """Files of a commit's tree, as ``list_files`` lists a branch head."""
        return self.history.list_at(repo, commit, prefix, after, limit, inclusive=inclusive)

    def versions(self, repo: str, branch: str, prefix: str = "", key_marker: str | None = None,
                 version_marker: str | None = None, limit: int = 1000, **kw):
        """One page of ListObjectVersions (``pfs.history.History.versions``)."""
        return self.history.versions(repo, branch, prefix, key_marker, version_marker, limit,
                                     **kw)

    def resolve_version(self, repo: str, branch: str, spec: str, pinned: str | None = None):
        """The commit a version spec names on the branch (None for ``null``)."""
        return self.history.resolve(repo, branch, spec, pinned)

    def get_versioning(self, repo: str, branch: str) -> str:
        """The bucket's versioning status: ``Enabled`` (never set) or ``Suspended``.

        Contract: one read (no transaction needed); raises ``NoSuchBranch``.
        """
        self.get_branch(repo, branch)
        return _versioning.status(self.reader, repo, branch)

    def suspended_branches(self) -> set[tuple[str, str]]:
        """Every ``(repo, branch)`` whose versioning is ``Suspended`` (one read)."""
        return _versioning.suspended_branches(self.reader)

    def expunges(self, repo: str, commit_ids: list[str] | None = None,
                 path: str | None = None) -> list["_versioning.ExpungeRecord"]:
        """Expunge records of a repo (optionally of those commits / that path), oldest
        first (one read)."""
        return _versioning.records(self.reader, repo, commit_ids, path)

    def branch_usage(self, repo: str, branch: str) -> tuple[int, int]:
        """(files, logical bytes) of a branch head: one scan of its tree rows."""
        row = self.reader.execute(
            "SELECT count(*), coalesce(sum(o.size), 0) FROM tree t JOIN objects o "
            "ON o.id = t.object WHERE t.repo=? AND t.branch=?", (repo, branch)).fetchone()
        return int(row[0]), int(row[1])        # PostgreSQL's sum() is numeric

    def repo_usage(self, repo: str) -> tuple[int, int]:
        """(logical bytes of every branch head, bytes of the distinct objects they hold):
        what the repo's heads would take as plain copies, and what they take stored
        once per object (branches and copies share objects)."""
        row = self.reader.execute(
            "SELECT coalesce(sum(o.size), 0) FROM tree t JOIN objects o ON o.id = t.object "
            "WHERE t.repo=?", (repo,)).fetchone()
        unique = self.reader.execute(
            "SELECT coalesce(sum(size), 0) FROM objects WHERE id IN "
            "(SELECT object FROM tree WHERE repo=?)", (repo,)).fetchone()
        return int(row[0]), int(unique[0])
