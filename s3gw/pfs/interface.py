"""The metadata-store interface: what the layers above (s3, pps, ingest, cli) call.

Two implementations: ``pfs.metadata.SqliteMetadata`` (embedded, one file) and
``pfs.postgres.PostgresMetadata`` (a shared PostgreSQL database, several
gateways).  Code outside ``pfs`` and the wiring (``app.py``, ``cli``) names
only ``MetadataStore``; ``tests/unit/test_layers.py`` forbids ``s3`` and
``pps`` to import a concrete backend, and ``tests/pfs/test_metadata_conformance.py``
runs one suite on every implementation.

Three parts:

* the store proper (repos, branches, commits, files at the head, provenance,
  GC support): each backend implements these with its own transactions;
* ``history`` (``pfs.history.History``) and ``uploads``
  (``pfs.uploads.UploadStaging``): written once, in the subset of SQL both
  engines speak, over the backend's ``SqlAccess``;
* ``SqlAccess``: ``reader`` (this thread's read connection) and
  ``write(fn)`` (``fn(cursor)`` in one write transaction), both taking
  ``?`` placeholders and returning rows as tuples (``execute(sql, params)``
  -> a cursor with ``fetchone``, ``fetchall``, iteration and ``rowcount``).

Extending the interface (e.g. new history operations): add the method here,
implement it in both backends, and add its case to the conformance suite.
All methods block; callers run them in worker threads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, Sequence, runtime_checkable

from .model import BranchInfo, CommitInfo, Delete, FileInfo, Put, RepoInfo

if TYPE_CHECKING:       # the neutral helpers are typed, not imported at run time
    from .history import History, VersionPage
    from .uploads import UploadStaging

__all__ = ["MetadataStore", "SqlAccess", "Condition", "AlsoHook", "CommitRequest"]

# condition(path, current file or None), run inside the commit's transaction; raises
# ConditionFailed (or another pfs error) to refuse the change
Condition = Callable[[str, FileInfo | None], None]
# also(cursor): more writes in the commit's transaction (e.g. UploadStaging.remove_in)
AlsoHook = Callable[[Any], None]
# commit_many's request: (repo, branch, changes, message, now_ns, condition)
CommitRequest = tuple


@runtime_checkable
class SqlAccess(Protocol):
    """The SQL the backend-neutral helpers (history, uploads) run on."""

    @property
    def reader(self) -> Any: ...                      # this thread's read connection
    def write(self, fn: Callable[[Any], Any]) -> Any: ...   # fn(cursor) in one transaction


@runtime_checkable
class MetadataStore(SqlAccess, Protocol):
    """Repos, branches, immutable commits and their file trees."""

    # -- repos and branches
    def list_repos(self) -> list[RepoInfo]: ...
    def list_branches(self, repo: str | None = None) -> list[BranchInfo]: ...
    def get_branch(self, repo: str, branch: str) -> BranchInfo: ...
    def create_branch(self, repo: str, branch: str, now_ns: int,
                      from_commit: str | None = None, new_repo: bool = False) -> BranchInfo: ...
    def delete_branch(self, repo: str, branch: str) -> None: ...

    # -- commits: each is atomic and durable when it returns; ``condition`` and
    # ``also`` run inside its transaction; concurrent commits on one branch all land
    def commit(self, repo: str, branch: str, changes: Sequence[Put | Delete], message: str,
               now_ns: int, condition: Condition | None = None, also: AlsoHook | None = None,
               provenance: dict | None = None, allow_empty: bool = False,
               ) -> CommitInfo | None: ...
    def commit_many(self, requests: Sequence[CommitRequest],
                    ) -> list[tuple[CommitInfo | None, BaseException | None]]: ...
    def get_commit(self, commit_id: str) -> CommitInfo: ...
    def log(self, repo: str, branch: str, limit: int = 100) -> list[CommitInfo]: ...
    def provenance_of(self, commit_id: str) -> dict | None: ...
    def commit_of_job(self, job_id: str) -> str | None: ...

    # -- S3 versioning (pfs.versioning; contracts in SqliteMetadata's docstrings)
    def get_versioning(self, repo: str, branch: str) -> str: ...
    def set_versioning(self, repo: str, branch: str, status: str, now_ns: int) -> bool: ...
    def suspended_branches(self) -> set[tuple[str, str]]: ...
    def expunge_version(self, repo: str, branch: str, path: str, version: str, now_ns: int,
                        principal: str | None = None): ...
    def expunges(self, repo: str, commit_ids: list[str] | None = None,
                 path: str | None = None) -> list: ...

    # -- files at a branch head
    def stat(self, repo: str, branch: str, path: str) -> FileInfo: ...
    def stat_nowait(self, repo: str, branch: str, path: str) -> FileInfo: ...
    def list_files(self, repo: str, branch: str, prefix: str = "", after: str | None = None,
                   limit: int = 1000, *, inclusive: bool = False) -> list[FileInfo]: ...

    # -- history (delegating to ``history``)
    @property
    def history(self) -> "History": ...
    def stat_at(self, repo: str, branch: str, commit: str, path: str) -> FileInfo: ...
    def list_at(self, repo: str, commit: str, prefix: str = "", after: str | None = None,
                limit: int = 1000, *, inclusive: bool = False) -> list[FileInfo]: ...
    def versions(self, repo: str, branch: str, prefix: str = "",
                 key_marker: str | None = None, version_marker: str | None = None,
                 limit: int = 1000, **kw) -> "VersionPage": ...
    def resolve_version(self, repo: str, branch: str, spec: str,
                        pinned: str | None = None) -> CommitInfo | None: ...

    # -- multipart staging
    @property
    def uploads(self) -> "UploadStaging": ...

    # -- statistics and GC
    def stats(self) -> dict[str, int]: ...
    def referenced_manifests(self) -> Iterable[bytes]: ...
    def delete_unreferenced_objects(self) -> int: ...

    def close(self) -> None: ...
