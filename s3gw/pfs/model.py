"""PFS values and errors: repos, branches, commits, objects and files.

Plain immutable values, no I/O.  An *object* is one stored content (size,
ETag, chunk manifest, the headers S3 returns with it); a *file* is a path
in a commit's tree that points at an object.  Several files (other paths,
versions, branches, repos, or a copy) may point at one object: copies cost
no data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "RepoInfo", "BranchInfo", "CommitInfo", "ObjectInfo", "FileInfo", "Put", "Delete",
    "PfsError", "NoSuchRepo", "NoSuchBranch", "BranchExists", "NoSuchFile", "NoSuchCommit",
    "InvalidName", "ConditionFailed",
]


@dataclass(frozen=True)
class RepoInfo:
    name: str
    created_ns: int


@dataclass(frozen=True)
class BranchInfo:
    repo: str
    name: str
    head: str | None
    created_ns: int


@dataclass(frozen=True)
class CommitInfo:
    id: str
    repo: str
    branch: str
    parent: str | None
    depth: int
    time_ns: int
    message: str


@dataclass(frozen=True)
class ObjectInfo:
    """Content plus the response headers stored with it."""

    size: int
    etag: str                      # unquoted: md5 hex, or md5-of-md5s "-N"
    manifest: bytes                # packed chunk list (store.manifest.Manifest)
    headers: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)  # e.g. {"crc32": base64}
    parts: tuple[int, ...] = ()    # part sizes of a multipart object
    id: int | None = None          # metadata row id, once stored


@dataclass(frozen=True)
class FileInfo:
    path: str
    object: ObjectInfo
    commit_id: str                 # the commit that last changed this file
    time_ns: int                   # that commit's time (Last-Modified)


@dataclass(frozen=True)
class Put:
    path: str
    object: ObjectInfo


@dataclass(frozen=True)
class Delete:
    path: str


class PfsError(Exception):
    """Base of the PFS errors (translated to S3 once, in s3/errors)."""


class NoSuchRepo(PfsError):
    pass


class NoSuchBranch(PfsError):
    pass


class BranchExists(PfsError):
    pass


class RepoExists(PfsError):
    """``create_branch(..., new_repo=True)``: the repo has a branch already."""


class NoSuchFile(PfsError):
    pass


class NoSuchCommit(PfsError):
    pass


class InvalidName(PfsError):
    pass


class ConditionFailed(PfsError):
    """A conditional write's precondition did not hold inside the transaction."""


class MetadataBusy(PfsError):
    """A ``*_nowait`` read found the database locked; the blocking call would wait."""
