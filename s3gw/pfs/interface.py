"""The metadata-store and auth-store interfaces: what the layers above (s3, pps, ingest,
console, cli) call.

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

``AuthStore``: users, access keys and per-repo roles.  Two implementations, chosen
with the metadata store (``pfs.backends.open_auth_store``): ``pfs.auth.SqliteAuthStore``
(``<data>/auth.sqlite``) and ``pfs.postgres_auth.PostgresAuthStore`` (tables in the
PostgreSQL database, shared by every gateway).  The S3 layer reads an immutable
``AuthSnapshot`` (``snapshot``), cheap enough for the event loop; everything else
blocks.  ``tests/pfs/test_auth_conformance.py`` runs one suite on both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, Sequence, runtime_checkable

from .model import BranchInfo, CommitInfo, Delete, FileInfo, Put, RepoInfo
from .roles import AuthRows, AuthSnapshot, Credentials, Grant, KeyInfo, Role

if TYPE_CHECKING:       # the neutral helpers are typed, not imported at run time
    from .history import History, VersionPage
    from .uploads import UploadStaging

__all__ = ["MetadataStore", "SqlAccess", "AuthStore", "Condition", "AlsoHook", "CommitRequest"]

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
    def branch_usage(self, repo: str, branch: str) -> tuple[int, int]: ...  # (files, bytes)
    def repo_usage(self, repo: str) -> tuple[int, int]: ...  # (head bytes, distinct bytes)

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


@runtime_checkable
class AuthStore(Protocol):
    """Users, access keys (pairs and tokens) and roles on repos; off until ``enable``.

    Changes are atomic and durable when they return, and show in this handle's
    ``snapshot`` at once; changes made through another handle (``s3gw auth`` in
    another process, another gateway) show within the backend's bound (see each
    backend's module).  ``AuthStoreError`` refuses a change (unknown user or key,
    bad name or role, enabling twice)."""

    # -- reading
    def snapshot(self, max_age: float = 0.0) -> AuthSnapshot: ...   # see the backends
    @property
    def enabled(self) -> bool: ...
    def list_keys(self, user: str | None = None) -> list[KeyInfo]: ...
    def grants(self, user: str | None = None, repo: str | None = None) -> list[Grant]: ...
    def users(self) -> list[tuple[str, bool]]: ...                    # (name, admin)

    # -- changing (administrators: ``s3gw auth``)
    def enable(self) -> Credentials: ...          # exactly one of concurrent callers wins
    def disable(self) -> None: ...
    def create_key(self, user: str, *, admin: bool = False,
                   token: bool = False) -> Credentials: ...
    def revoke_key(self, key: str) -> KeyInfo: ...
    def grant(self, user: str, repo: str, role: Role | str) -> Grant: ...
    def revoke(self, user: str, repo: str) -> bool: ...

    # -- changing (the S3 layer: CreateBucket, PutBucketAcl, DeleteBucket)
    def claim_repo(self, user: str, repo: str) -> None: ...
    def set_repo_grants(self, repo: str, roles: dict[str, Role]) -> None: ...
    def drop_repo(self, repo: str) -> None: ...

    # -- copying between backends (``s3gw migrate``, ``s3gw auth import``)
    def export_rows(self) -> AuthRows: ...
    def import_rows(self, rows: AuthRows) -> dict[str, int]: ...

    def close(self) -> None: ...
