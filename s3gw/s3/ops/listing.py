"""ListObjects (v1) and ListObjectsV2 over a branch head's file tree.

The plan (``collect``) walks the tree in UTF-8 byte order from the start
position, rolling keys that contain the delimiter after the prefix into
common prefixes and jumping past each common prefix in one index seek, so a
listing of a folder with a million files under one sub-folder costs one row.
``max-keys`` counts keys and common prefixes together, as S3 does;
``max-keys=0`` answers an empty page that is *not* truncated (no
NextMarker, no NextContinuationToken, KeyCount 0), as S3 does -- a paginator
that got ``IsTruncated=true`` with no token would loop or fail.

Continuation tokens (v2) are opaque to clients: base64url of the last key or
common prefix returned (:func:`encode_token`; ListBuckets uses the same
encoding for its tokens).  A v1 marker or v2 start position equal to a common
prefix skips everything under it.
"""

from __future__ import annotations

import base64
import binascii

from ...http import Request, Response
from ...pfs.metadata import prefix_upper_bound
from .. import xml as s3xml
from ..errors import S3Error
from .service import OWNER, S3Service, operation
from .versions import pinned_commit

__all__ = ["collect", "count_param", "decode_token", "encode_token", "Listing",
           "list_params"]

MAX_KEYS = 1000
_BATCH = 1000


class Listing:
    def __init__(self):
        self.entries: list[s3xml.ListEntry] = []
        self.prefixes: list[str] = []
        self.truncated = False
        self.last: str | None = None     # last key or common prefix returned


def collect(meta, repo: str, branch: str, prefix: str, delimiter: str | None, after: str | None,
            max_keys: int, commit: str | None = None) -> Listing:
    """Blocking: one page of a listing (keys > ``after``) of the branch head, or of
    ``commit`` (a pinned bucket).  ``max_keys=0``: an empty page, not truncated."""
    out = Listing()
    if max_keys <= 0:
        return out
    cursor, inclusive = after, False
    if after is not None and delimiter and after.startswith(prefix) and \
            after.endswith(delimiter) and delimiter in after[len(prefix):]:
        cursor, inclusive = _past(after)
    count = 0
    while cursor is not _END:
        if commit is None:
            files = meta.list_files(repo, branch, prefix=prefix, after=cursor, limit=_BATCH,
                                    inclusive=inclusive)
        else:
            files = meta.list_at(repo, commit, prefix=prefix, after=cursor, limit=_BATCH,
                                 inclusive=inclusive)
        inclusive = False
        for f in files:
            if count >= max_keys:
                out.truncated = True
                return out
            rest = f.path[len(prefix):]
            cut = rest.find(delimiter) if delimiter else -1
            count += 1
            if cut >= 0:
                cp = prefix + rest[:cut + len(delimiter)]
                out.prefixes.append(cp)
                out.last = cp
                cursor, inclusive = _past(cp)
                break  # seek past everything under the common prefix
            out.entries.append(s3xml.ListEntry(f.path, f.time_ns, f.object.etag, f.object.size))
            out.last = cursor = f.path
        else:
            if len(files) < _BATCH:
                return out
    return out


_END = object()


def _past(common_prefix: str):
    """The (inclusive) position just after every key starting with ``common_prefix``."""
    upper = prefix_upper_bound(common_prefix)
    return (_END, False) if upper is None else (upper, True)


def list_params(svc: S3Service, r):
    """The common listing parameters: (bucket ref, prefix, delimiter, max-keys, encoding-type)."""
    ref = svc.bucket(r.bucket)
    q = r.query
    prefix = q.get("prefix", "")
    delimiter = q.get("delimiter") or None
    raw = q.get("max-keys", str(MAX_KEYS))
    count = count_param(raw)
    if count is None:
        raise S3Error("InvalidArgument", "max-keys must be a non-negative integer.",
                      argument_name="max-keys", argument_value=raw)
    max_keys = min(count, MAX_KEYS)
    encoding = s3xml.check_encoding_type(q.get("encoding-type"))
    return ref, prefix, delimiter, max_keys, encoding


def count_param(raw: str) -> int | None:
    """A non-negative decimal count from a query value, or ``None`` if it is not one.

    ASCII digits only (``str.isdigit`` also takes ``'²'``, which ``int`` refuses);
    values past 10**9 read as 10**9, so a thousand-digit value is a large count,
    not an ``int`` conversion error.
    """
    if not (raw.isascii() and raw.isdigit()):
        return None
    digits = raw.lstrip("0") or "0"
    return int(digits) if len(digits) <= 9 else 10**9


async def _page(svc, ref, prefix, delimiter, after, max_keys) -> Listing:
    await svc.run(svc.meta.get_branch, ref.repo, ref.branch)
    commit = await svc.run(pinned_commit, svc, ref)
    return await svc.run(collect, svc.meta, ref.repo, ref.branch, prefix, delimiter, after,
                         max_keys, commit)


@operation("ListObjects")
async def list_objects(svc: S3Service, req: Request, r) -> Response:
    ref, prefix, delimiter, max_keys, encoding = list_params(svc, r)
    marker = r.query.get("marker", "")
    page = await _page(svc, ref, prefix, delimiter, marker or None, max_keys)
    doc = s3xml.list_objects_v1(
        r.bucket, page.entries, page.prefixes, prefix=prefix, marker=marker, delimiter=delimiter,
        max_keys=max_keys, is_truncated=page.truncated,
        next_marker=page.last if page.truncated and delimiter else None,
        encoding_type=encoding, owner=OWNER)
    return Response(200, [("content-type", "application/xml")], doc)


@operation("ListObjectsV2")
async def list_objects_v2(svc: S3Service, req: Request, r) -> Response:
    ref, prefix, delimiter, max_keys, encoding = list_params(svc, r)
    token = r.query.get("continuation-token")
    start_after = r.query.get("start-after") or None
    after = start_after
    if token is not None:
        after = decode_token(token)
    page = await _page(svc, ref, prefix, delimiter, after, max_keys)
    next_token = encode_token(page.last) if page.truncated and page.last is not None else None
    fetch_owner = r.query.get("fetch-owner", "").lower() == "true"
    doc = s3xml.list_objects_v2(
        r.bucket, page.entries, page.prefixes, prefix=prefix, delimiter=delimiter,
        max_keys=max_keys, is_truncated=page.truncated, continuation_token=token,
        next_continuation_token=next_token, start_after=start_after, encoding_type=encoding,
        owner=OWNER if fetch_owner else None)
    return Response(200, [("content-type", "application/xml")], doc)


def encode_token(position: str) -> str:
    """The opaque continuation token for a listing position (a key or bucket name)."""
    return base64.urlsafe_b64encode(position.encode("utf-8")).decode("ascii")


def decode_token(token: str) -> str:
    """The position in a token from :func:`encode_token`.

    Raises:
        S3Error: ``InvalidArgument`` (continuation-token) if it is not one.
    """
    try:
        # validate: a token with characters outside the alphabet is refused, not
        # read as the shorter token those characters hide
        raw = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect.",
                      argument_name="continuation-token") from None
