"""ListObjects (v1) and ListObjectsV2 over a branch head's file tree.

The plan (``collect``) walks the tree in UTF-8 byte order from the start
position, rolling keys that contain the delimiter after the prefix into
common prefixes and jumping past each common prefix in one index seek, so a
listing of a folder with a million files under one sub-folder costs one row.
With a delimiter, the rows asked for after each seek start at ``_FIRST`` and
double while no common prefix interrupts them (up to ``_BATCH``): a root
listing of 100 folders of 1,000 keys reads a few rows per folder, not the
1,000 a fixed batch would read past each one (the whole bucket).
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

from ...http import Request, Response
from ...pfs.keys import prefix_upper_bound
from ..context import OWNER, Context
from ..resolve import pinned_commit
from ..wire import xml_out as s3xml
from ..wire.listing import decode_token, encode_token, list_params

__all__ = ["collect", "Listing"]

_BATCH = 1000
_FIRST = 2          # rows read after a seek past a common prefix (then doubling)


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
    batch = _FIRST if delimiter else _BATCH
    while cursor is not _END:
        limit = min(batch, max_keys - count + 1)
        if commit is None:
            files = meta.list_files(repo, branch, prefix=prefix, after=cursor, limit=limit,
                                    inclusive=inclusive)
        else:
            files = meta.list_at(repo, commit, prefix=prefix, after=cursor, limit=limit,
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
                batch = _FIRST
                break  # seek past everything under the common prefix
            out.entries.append(s3xml.ListEntry(f.path, f.time_ns, f.object.etag, f.object.size))
            out.last = cursor = f.path
        else:
            if len(files) < limit:
                return out
            batch = min(batch * 2, _BATCH)
    return out


_END = object()


def _past(common_prefix: str):
    """The (inclusive) position just after every key starting with ``common_prefix``."""
    upper = prefix_upper_bound(common_prefix)
    return (_END, False) if upper is None else (upper, True)


async def _page(svc, ref, prefix, delimiter, after, max_keys) -> Listing:
    await svc.run(svc.meta.get_branch, ref.repo, ref.branch)
    commit = await svc.run(pinned_commit, svc, ref)
    return await svc.run(collect, svc.meta, ref.repo, ref.branch, prefix, delimiter, after,
                         max_keys, commit)


async def list_objects(svc: Context, req: Request, r) -> Response:
    ref = svc.bucket(r.bucket)
    prefix, delimiter, max_keys, encoding = list_params(r.query)
    marker = r.query.get("marker", "")
    page = await _page(svc, ref, prefix, delimiter, marker or None, max_keys)
    doc = s3xml.list_objects_v1(
        r.bucket, page.entries, page.prefixes, prefix=prefix, marker=marker, delimiter=delimiter,
        max_keys=max_keys, is_truncated=page.truncated,
        next_marker=page.last if page.truncated and delimiter else None,
        encoding_type=encoding, owner=OWNER)
    return Response(200, [("content-type", "application/xml")], doc)


async def list_objects_v2(svc: Context, req: Request, r) -> Response:
    ref = svc.bucket(r.bucket)
    prefix, delimiter, max_keys, encoding = list_params(r.query)
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


