"""Bucket operations: a bucket is a branch of a repo (``<branch>.<repo>``).

CreateBucket creates the repo if missing, then the branch; DeleteBucket
deletes the branch even when it holds files, and the repo with its last
branch.  The location answer is canned: one region (versioning is
``ops.versions``).  With auth on, ListBuckets shows the
readable repos only, and CreateBucket of a new repo makes the caller its owner
(bucket ACLs, the repo's roles: ``ops.acl``).

ListBuckets lists every branch of every repo, by name.  With any of the
paginated ListBuckets parameters (``prefix``, ``max-buckets``,
``continuation-token``, ``bucket-region``) it answers one page of at most
``max-buckets`` (1..10000, default 10000) buckets whose names start with
``prefix``, each with its ``BucketRegion``, echoes ``Prefix``, and adds a
``ContinuationToken`` when more remain: the next bucket's name, encoded like
the listing tokens (:func:`s3.wire.listing.encode_token`).  ``bucket-region`` other
than ours matches no bucket.  Without them, every bucket in one answer, as
before.  The plan is :func:`bucket_page`; every branch is read first (a
store holds branches by the thousand, not by the million).
"""

from __future__ import annotations

from functools import partial

from ...http import Request, Response
from ...pfs.model import BranchExists, PfsError, RepoExists
from ...pps.jobs import is_internal_repo
from ..auth.access import may_create_branch, may_read
from ..context import OWNER, PRINCIPAL, VIEW, Context
from ..payload import read_small_body
from ..resolve import existing_bucket
from ..wire import xml_out as s3xml
from ..wire.errors import S3Error
from ..wire.listing import count_param, decode_token, encode_token
from ..wire.names import bucket_name
from ..wire.object_headers import check_acl
from ..wire.xml_in import parse_create_bucket

__all__ = ["bucket_page"]

XML = [("content-type", "application/xml")]
MAX_BUCKETS = 10000       # the largest max-buckets, and the page size when it is not given
_PAGED = ("prefix", "max-buckets", "continuation-token", "bucket-region")


def bucket_page(entries: list[s3xml.BucketEntry], prefix: str, start: str | None,
                limit: int | None) -> tuple[list[s3xml.BucketEntry], str | None]:
    """Plan one ListBuckets page.

    Args:
        entries: every bucket the caller may see, sorted by name.
        prefix: keep names starting with it.
        start: the first name to list (from a continuation token), or ``None``.
        limit: the page size, or ``None`` for all.

    Returns:
        The page, and the name of the first bucket after it (``None`` when none is).
    """
    chosen = [e for e in entries
              if e.name.startswith(prefix) and (start is None or e.name >= start)]
    if limit is None or len(chosen) <= limit:
        return chosen, None
    return chosen[:limit], chosen[limit].name


def _max_buckets(raw: str | None) -> int:
    if raw is None:
        return MAX_BUCKETS
    count = count_param(raw)
    if count is None or not 1 <= count <= MAX_BUCKETS:
        raise S3Error("InvalidArgument", f"max-buckets must be an integer between 1 and "
                                         f"{MAX_BUCKETS}.",
                      argument_name="max-buckets", argument_value=raw)
    return count


async def list_buckets(svc: Context, req: Request, r) -> Response:
    q = r.query
    paged = any(name in q for name in _PAGED)
    limit = _max_buckets(q.get("max-buckets")) if paged else None
    token = q.get("continuation-token")
    start = decode_token(token) if token else None
    prefix = q.get("prefix")
    region = q.get("bucket-region")
    view = VIEW.get()
    if view is not None:                    # a pipeline job's endpoint: its buckets only
        created = {(b.repo, b.name): b.created_ns for b in await svc.run(_view_branches, svc,
                                                                             view)}
        entries = [s3xml.BucketEntry(b.name, created.get((b.repo, b.branch), 0))
                   for b in view.buckets]
    else:
        branches = await svc.run(svc.meta.list_branches)
        principal = PRINCIPAL.get()
        if principal is not None:
            snapshot = svc.auth.snapshot()
            branches = [b for b in branches if may_read(principal, snapshot, b.repo)]
        branches = [b for b in branches if not is_internal_repo(b.repo)]
        entries = [s3xml.BucketEntry(bucket_name(b.repo, b.name), b.created_ns)
                   for b in branches]
    if region and region != svc.region:
        entries = []                        # every bucket is in our one region
    entries.sort(key=lambda e: e.name)
    page, after = bucket_page(entries, prefix or "", start, limit)
    next_token = None if after is None else encode_token(after)
    doc = s3xml.list_buckets_result(page, OWNER, prefix=prefix, continuation_token=next_token,
                                    region=svc.region if paged else None)
    return Response(200, list(XML), doc)


async def create_bucket(svc: Context, req: Request, r) -> Response:
    ref = svc.writable(r.bucket)
    check_acl(req.headers.get("x-amz-acl"))
    principal = PRINCIPAL.get()
    repo_exists = True
    if principal is not None:
        repo_exists = await svc.run(_repo_exists, svc, ref.repo)
        if not may_create_branch(principal, svc.auth.snapshot(), ref.repo, repo_exists):
            raise S3Error("AccessDenied", f"User {principal.user} may not create branches "
                                          f"in repo {ref.repo}.")
    parse_create_bucket(await read_small_body(req, limit=64 * 1024))
    claim = principal is not None and not repo_exists
    try:
        try:
            # a new repo is created only if it is still new: of two users creating it
            # at once, one gets it (and owns it); the other is decided again below
            await svc.run(partial(svc.meta.create_branch, ref.repo, ref.branch, svc.clock(),
                                  new_repo=claim))
        except RepoExists:
            claim = False
            if not may_create_branch(principal, svc.auth.snapshot(), ref.repo, True):
                raise S3Error("AccessDenied", f"User {principal.user} may not create branches "
                                              f"in repo {ref.repo}.") from None
            await svc.run(svc.meta.create_branch, ref.repo, ref.branch, svc.clock())
    except BranchExists:
        raise S3Error("BucketAlreadyOwnedByYou", bucket_name=r.bucket) from None
    if claim:
        await svc.run(svc.auth.claim_repo, principal.user, ref.repo)
    return Response(200, [("location", f"/{r.bucket}")], b"")


def _repo_exists(svc: Context, repo: str) -> bool:
    return bool(svc.meta.list_branches(repo))   # a repo lives exactly as long as a branch


async def head_bucket(svc: Context, req: Request, r) -> Response:
    await svc.run(existing_bucket, svc, r.bucket)
    return Response(200, [("x-amz-bucket-region", svc.region)], None, content_length=0)


async def delete_bucket(svc: Context, req: Request, r) -> Response:
    ref = svc.writable(r.bucket)
    await svc.run(svc.meta.delete_branch, ref.repo, ref.branch)
    if svc.auth is not None and not await svc.run(_repo_exists, svc, ref.repo):
        await svc.run(svc.auth.drop_repo, ref.repo)   # the repo went with its last branch
    return Response(204, [], b"")


async def get_bucket_location(svc: Context, req: Request, r) -> Response:
    await svc.run(existing_bucket, svc, r.bucket)
    return Response(200, list(XML), s3xml.location_constraint(svc.region))


def _view_branches(svc: Context, view) -> list:
    """Blocking: the branches behind a job view's buckets (for their creation times)."""
    out = []
    for b in view.buckets:
        try:
            out.append(svc.meta.get_branch(b.repo, b.branch))
        except PfsError:
            pass
    return out
