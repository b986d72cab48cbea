"""Bucket names <-> (repo, branch, commit), object keys, copy sources.

Theory of operation
-------------------
A bucket name is up to three dot-separated *segments*, read right to left::

    images                               repo images, branch master
    master.images                        repo images, branch master
    0123456789abcdef0123456789abcdef.master.images
                                         that commit of images (read-only)

Rules we chose (InvalidBucketName otherwise):

* A segment (repo or branch name) is 1-63 characters of ASCII letters,
  digits, ``_`` and ``-``, starting and ending with a letter or digit.  Case
  is kept and significant (path-style addressing carries it; botocore and
  minio-go's default validation accept upper case and ``_``).  Dots are the
  separator, so they cannot occur inside a repo or branch name.
* The branch bucket name (``branch.repo``, or ``repo`` alone) is 3-63
  characters long overall, as S3 requires and minio-go/s3cmd check on the
  client side.  A commit pin is ``<32 lowercase hex>.`` followed by a valid
  branch bucket name, so it may be up to 96 characters (strict clients
  cannot address long pins; botocore can).
* A first segment of 32 hex characters in a two-segment name is a branch
  whose name happens to look like a commit id: only three segments pin a
  commit.

Keys are data, not paths.  The store never maps a key to a file name, so
``..``, ``//``, a leading ``/`` and trailing ``/`` are ordinary key bytes
and need no special treatment.  :func:`validate_key` enforces what S3
enforces -- 1 to 1024 bytes of UTF-8 -- and additionally rejects NUL, which
S3 allows but which no file-system-facing tool (s3fs, the CLI's ``/key``
paths) can represent; that is a deliberate, documented deviation.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from .errors import S3Error

__all__ = [
    "DEFAULT_BRANCH",
    "MAX_KEY_BYTES",
    "BucketRef",
    "CopySource",
    "bucket_name",
    "parse_bucket",
    "parse_copy_source",
    "validate_key",
    "validate_segment",
]

DEFAULT_BRANCH = "master"
MAX_KEY_BYTES = 1024
_SEGMENT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?")
_COMMIT = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class BucketRef:
    """What a bucket name designates.  ``commit`` set means read-only."""

    repo: str
    branch: str
    commit: str | None = None

    @property
    def read_only(self) -> bool:
        return self.commit is not None


def validate_segment(name: str) -> bool:
    """True if *name* is a valid repo or branch name (see module rules)."""
    return _SEGMENT.fullmatch(name) is not None


def _invalid(name: str, why: str) -> S3Error:
    return S3Error("InvalidBucketName", f"The specified bucket is not valid: {why}.", bucket_name=name)


@functools.lru_cache(maxsize=1024)   # pure; every request parses its bucket name
def parse_bucket(name: str) -> BucketRef:
    """Map a bucket name to (repo, branch, commit).

    Raises:
        S3Error: ``InvalidBucketName`` when *name* breaks the module's rules.
    """
    parts = name.split(".")
    commit = None
    if len(parts) == 3:
        commit = parts[0]
        if not _COMMIT.fullmatch(commit):
            raise _invalid(name, "a three-part name must start with a 32-hex commit id")
        parts = parts[1:]
        branch_bucket = name[33:]
    elif len(parts) in (1, 2):
        branch_bucket = name
    else:
        raise _invalid(name, "expected [commit.][branch.]repo")
    if not 3 <= len(branch_bucket) <= 63:
        raise _invalid(name, "a branch bucket name must be 3 to 63 characters long")
    for seg in parts:
        if not validate_segment(seg):
            raise _invalid(name, "repo and branch names are letters, digits, '_' and '-'")
    if len(parts) == 1:
        return BucketRef(parts[0], DEFAULT_BRANCH, commit)
    return BucketRef(parts[1], parts[0], commit)


def bucket_name(repo: str, branch: str, commit: str | None = None) -> str:
    """The bucket name for *branch* of *repo* (``branch.repo``), optionally pinned.

    Always the explicit two-part form, so ListBuckets shows every branch the
    same way.

    Raises:
        S3Error: ``InvalidBucketName`` if the result would not parse back.
    """
    name = f"{branch}.{repo}" if commit is None else f"{commit}.{branch}.{repo}"
    ref = parse_bucket(name)
    if (ref.repo, ref.branch, ref.commit) != (repo, branch, commit):
        raise _invalid(name, "does not round-trip")
    return name


def validate_key(key: str) -> str:
    """Check an object key; return it unchanged.

    Raises:
        S3Error: ``KeyTooLongError`` above 1024 UTF-8 bytes;
            ``InvalidArgument`` when empty, containing NUL, or not encodable
            as UTF-8 (lone surrogates).
    """
    if not key:
        raise S3Error("InvalidArgument", "Object key must not be empty.", argument_name="key")
    if "\x00" in key:
        raise S3Error("InvalidArgument", "Object key must not contain NUL.", argument_name="key")
    try:
        n = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise S3Error("InvalidArgument", "Object key is not valid UTF-8.", argument_name="key") from None
    if n > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", size=n, max_size_allowed=MAX_KEY_BYTES)
    return key


@dataclass(frozen=True, slots=True)
class CopySource:
    bucket: str
    key: str
    version_id: str | None = None


def parse_copy_source(value: str) -> CopySource:
    """Parse ``x-amz-copy-source``: ``[/]bucket/key[?versionId=v]``, maybe escaped whole.

    Percent-escapes are decoded (``+`` stays a plus); characters clients
    leave raw (rclone: ``@ , ; : $ = &``) pass through.  The query is split
    off at the first ``?`` before decoding, so an escaped ``%3F`` stays part
    of the key.

    Raises:
        S3Error: ``InvalidArgument`` when bucket or key is missing or the
            decoded bytes are not UTF-8.
    """
    raw, _, query = value.strip().partition("?")
    version_id = None
    for item in query.split("&") if query else ():
        name, _, v = item.partition("=")
        if name == "versionId":
            version_id = _decode(v, value)
    # decoded before the split, as S3 does: ``encodeURIComponent("bucket/key")`` (%2F) works
    path = _decode(raw, value)
    bucket, slash, key = (path[1:] if path.startswith("/") else path).partition("/")
    if not slash or not bucket or not key:
        raise S3Error(
            "InvalidArgument",
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            argument_name="x-amz-copy-source",
            argument_value=value,
        )
    return CopySource(bucket, key, version_id or None)


def _decode(text: str, whole: str) -> str:
    # Header values arrive as latin-1 text (one code point per octet): get
    # the octets back before percent-decoding; fall back to UTF-8 for text
    # that did not come off the wire.
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape")
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise S3Error(
            "InvalidArgument",
            "Copy Source is not valid UTF-8 after percent-decoding.",
            argument_name="x-amz-copy-source",
            argument_value=whole,
        ) from None
