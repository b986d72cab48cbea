"""The S3 service: route a request, run its operation, answer S3 XML errors.

``S3Service.handle`` is the HTTP server's handler.  It routes the request
(pure: ``s3.router``), looks the operation up in ``OPERATIONS`` (one async
function per S3 operation, named as AWS names it) and runs it.  Every
exception is translated once (``s3.errors.to_s3_error``): an S3 error goes
out as its XML document with its status (HEAD: no body); anything unknown is
logged with its traceback and answered ``InternalError`` with the request id
only -- a 500 is always a bug.

Operations reach PFS and the chunk store through worker threads
(``self.run``, capped by the app's ``CapacityLimiter``): SQLite and file I/O
block.  One exception: a GET/HEAD at a branch head looks the file up on the
event loop (one indexed read) and reads a small object's chunk there when the
page cache holds it (``ops.objects._resolve_and_read_cached``), because the
thread hop costs more than that work; a slow lookup turns this off for a while
(``inline_reads_now``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from contextvars import ContextVar
from typing import Awaitable, Callable

import trio

from ...http import ClientDisconnected, Request, Response, current_request, current_request_id
from ...pfs.auth import SqliteAuthStore
from ...pfs.metadata import SqliteMetadata
from ...store.chunkstore import ChunkError, LocalChunkStore
from ...store.ids import INLINE_MAX
from .. import unsupported
from .. import xml as s3xml
from ...pfs.auth import AuthSnapshot
from ...pps.jobs import JobView
from ..auth import Principal, authenticate, authorize
from ..errors import ERRORS, S3Error, error_xml, to_s3_error
from ..jobviews import check_output_write, check_view_request, view_ref
from ..names import BucketRef, parse_bucket
from ..router import route
from .smallputs import SmallPutWriter

__all__ = ["S3Service", "OPERATIONS", "OWNER", "PRINCIPAL", "VIEW"]

log = logging.getLogger("s3gw.s3")
OWNER = s3xml.Owner(id="s3gw", display_name="s3gw")

# The authenticated caller of the request being handled (None: auth is off).  Set by
# ``S3Service.handle`` for the duration of one operation; child tasks inherit it.
PRINCIPAL: ContextVar[Principal | None] = ContextVar("s3gw_principal", default=None)
# The pipeline job view the request came through (None: the main port).  Set by
# ``S3Service.handle_view``; ``S3Service.bucket`` maps bucket names through it.
VIEW: ContextVar[JobView | None] = ContextVar("s3gw_view", default=None)
# Seconds between re-reads of the pipelines' output repos (``output_repos``).
OUTPUTS_RECHECK = 0.05

# Seconds between checks of the auth store for changes made by `s3gw auth` (see
# SqliteAuthStore.snapshot: the check costs a GIL round trip on a busy server).
AUTH_RECHECK = 0.05

# Lookups on the event loop slower than INLINE_SLOW seconds, INLINE_STRIKES of them
# within INLINE_WINDOW seconds (a cold database), or one slower than INLINE_SEVERE,
# send lookups back to worker threads for INLINE_BACKOFF seconds.  One slow lookup
# alone is usually the thread being preempted (a 2-core machine shared with the
# clients): backing off on it cost a 4 KiB GET phase half its rate for a second.
INLINE_SLOW = 0.002
INLINE_STRIKES = 3
INLINE_WINDOW = 1.0
INLINE_SEVERE = 0.02
INLINE_BACKOFF = 1.0

Operation = Callable[["S3Service", Request, object], Awaitable[Response]]
OPERATIONS: dict[str, Operation] = {}


def operation(name: str):
    """Register an async operation handler under its AWS operation name."""

    def register(fn):
        OPERATIONS[name] = fn
        return fn

    return register


class S3Service:
    def __init__(self, meta: SqliteMetadata, store: LocalChunkStore, *, region: str = "us-east-1",
                 domain: str | None = None, limiter: trio.CapacityLimiter | None = None,
                 clock: Callable[[], int] = time.time_ns, auth: SqliteAuthStore | None = None,
                 inline_object_max: int = INLINE_MAX,
                 output_repos: Callable[[float], frozenset[str]] | None = None):
        self.meta = meta
        # output_repos(max_age): the repos only pipeline jobs write (None: no pipelines)
        self.output_repos = output_repos
        # a PutObject body up to this size is kept in its manifest (store.ids); 0: never
        self.inline_object_max = inline_object_max
        self._inline_after = 0.0
        self._inline_strikes: deque[float] = deque(maxlen=INLINE_STRIKES)
        self.small_puts = SmallPutWriter(meta, store)
        self.auth = auth
        self.store = store
        self.region = region
        self.domain = domain
        self.limiter = limiter
        self.clock = clock

    def inline_reads_now(self) -> bool:
        """Whether a GET/HEAD may look its file up on the event loop now."""
        return time.monotonic() >= self._inline_after

    def inline_read_took(self, seconds: float) -> None:
        """Report an event-loop lookup's duration (slow ones pause inline reads)."""
        if seconds <= INLINE_SLOW:
            return
        now = time.monotonic()
        strikes = self._inline_strikes
        strikes.append(now)
        if seconds > INLINE_SEVERE or (len(strikes) == INLINE_STRIKES
                                       and now - strikes[0] <= INLINE_WINDOW):
            strikes.clear()
            self._inline_after = now + INLINE_BACKOFF
            log.info("a lookup on the event loop took %.1f ms: lookups go to worker threads "
                     "for %.0f s", seconds * 1e3, INLINE_BACKOFF)

    async def run(self, fn, *args):
        """Run a blocking PFS/store call in a worker thread."""
        return await trio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    # -- the handler ----------------------------------------------------------------------
    async def handle_view(self, view: JobView, request: Request) -> Response:
        """The handler of a pipeline job's endpoint: ``handle`` within ``view``."""
        token = VIEW.set(view)
        try:
            return await self.handle(request)
        finally:
            VIEW.reset(token)

    async def handle(self, request: Request) -> Response:
        routed = None
        try:
            routed = route(request.method, request.path, request.query, request.headers,
                           domain=self.domain, host=request.headers.get("host"))
            view = VIEW.get()
            if view is not None:
                principal = self.authenticate_view(view, request, routed)
                check_view_request(view, routed.endpoint, routed.bucket, request.headers)
            else:
                principal = self.authenticate(request, routed)
                if principal is not None:
                    await self.authorize(principal, request, routed)
                if self.output_repos is not None and routed.endpoint.access == "WRITE":
                    check_output_write(routed.endpoint, routed.bucket,
                                       self.output_repos(OUTPUTS_RECHECK))
            op = OPERATIONS.get(routed.endpoint.name)
            if op is None or not routed.endpoint.implemented:
                raise S3Error("NotImplemented",
                              f"{routed.endpoint.name} is not implemented by s3gw.")
            if request.headers.has_any(unsupported.HEADERS):
                unsupported.check(routed.endpoint.name, request.headers)
            token = PRINCIPAL.set(principal)
            try:
                response = await op(self, request, routed)
            finally:
                PRINCIPAL.reset(token)
        except ClientDisconnected:
            raise
        except ChunkError:
            log.exception("chunk store error in request %s", request.id)
            return self.error_response(request, S3Error("InternalError"))
        except Exception as exc:
            err = to_s3_error(exc)
            if err.code == "InternalError":
                log.exception("unhandled error in request %s", request.id)
            elif routed is not None and not isinstance(exc, S3Error):
                if err.code == "NoSuchKey":
                    err.fields.setdefault("Key", routed.key or "")
                elif err.code == "NoSuchBucket":
                    err.fields.setdefault("BucketName", routed.bucket or "")
            return self.error_response(request, err)
        response.headers.extend(self.common_headers(request))
        return response

    def authenticate(self, request: Request, routed) -> Principal | None:
        """Verify the signature: the caller (None when auth is off).

        The auth store is re-checked at most every ``AUTH_RECHECK`` seconds
        (one cheap query), so key and grant changes made with ``s3gw auth``
        apply within 50 ms; the server's own grant changes apply at once.  Refused
        requests never read their body (the HTTP layer then closes the
        connection instead of sending ``100 Continue``).
        """
        if self.auth is None:
            return None
        snapshot = self.auth.snapshot(max_age=AUTH_RECHECK)
        if not snapshot.enabled:
            return None
        return authenticate(request.method, request.path, request.query, request.headers,
                            snapshot, self.clock() / 1e9,
                            vhost_bucket=routed.bucket if routed.virtual_host else None)

    def authenticate_view(self, view: JobView, request: Request, routed) -> Principal:
        """A job's endpoint accepts the job's own key only, whether auth is on or off."""
        snapshot = AuthSnapshot(True, {view.access_key: (view.secret_key, f"job-{view.job_id}")},
                                {}, frozenset({f"job-{view.job_id}"}),
                                frozenset({f"job-{view.job_id}"}), {})
        return authenticate(request.method, request.path, request.query, request.headers,
                            snapshot, self.clock() / 1e9,
                            vhost_bucket=routed.bucket if routed.virtual_host else None)

    async def authorize(self, principal: Principal, request: Request, routed) -> None:
        """Check the caller's role for the operation (``s3.auth.authorize``).

        A caller refused on a bucket whose repo is unknown gets ``NoSuchBucket`` instead
        of ``AccessDenied`` (see ``_repo_known``)."""
        try:
            authorize(principal, self.auth.snapshot(max_age=AUTH_RECHECK), routed.endpoint,
                      routed.bucket, request.headers)
        except S3Error as exc:
            if exc.code == "AccessDenied" and routed.bucket and \
                    not await self.run(self._repo_known, routed.bucket):
                raise S3Error("NoSuchBucket", bucket_name=routed.bucket) from None
            raise

    def _repo_known(self, bucket: str) -> bool:
        """Blocking: whether the repo of ``bucket`` exists or has roles granted on it.

        A signed caller without a role on an unknown repo gets ``NoSuchBucket``, as S3
        answers for a bucket that does not exist (``if not bucket_exists: make_bucket``
        is how clients create theirs); a repo that exists stays ``AccessDenied``, so a
        caller without a role learns nothing of its branches.  That a repo does not
        exist is no secret: CreateBucket of it would succeed."""
        try:
            repo = parse_bucket(bucket).repo
        except S3Error:
            return True        # malformed: keep the refusal
        return bool(self.meta.list_branches(repo)) or self.auth.snapshot().granted(repo)

    def common_headers(self, request: Request) -> list[tuple[str, str]]:
        return [("x-amz-request-id", request.id), ("x-amz-id-2", request.id)]

    def error_response(self, request: Request, err: S3Error) -> Response:
        headers = [("content-type", "application/xml")]
        headers.extend(err.headers.items())
        headers.extend(self.common_headers(request))
        if request.method == "HEAD" or not err.has_body:
            return Response(err.status, headers, None, content_length=0)
        body = error_xml(err, resource=request.path, request_id=request.id)
        return Response(err.status, headers, body)

    def http_error_response(self, status: int, reason: str = "") -> Response:
        """Errors the HTTP layer answers itself (malformed requests, 500s): S3 XML too."""
        code = {400: "InvalidRequest", 408: "RequestTimeout", 413: "EntityTooLarge",
                431: "RequestHeaderSectionTooLarge", 501: "NotImplemented"}.get(status,
                                                                                 "InternalError")
        if code not in ERRORS:
            code = "InvalidRequest"
        err = S3Error(code)
        request = current_request()
        request_id = current_request_id() or "-"
        body = error_xml(err, resource=request.path if request is not None else "/",
                         request_id=request_id)
        headers = [("content-type", "application/xml"), ("x-amz-request-id", request_id)]
        return Response(status, headers, body)

    # -- helpers shared by operations -----------------------------------------------------
    def bucket(self, name: str | None) -> BucketRef:
        if not name:
            raise S3Error("InvalidBucketName", "A bucket name is required.")
        view = VIEW.get()
        if view is not None:
            target = view.get(name)
            if target is None:
                raise S3Error("NoSuchBucket", bucket_name=name)
            return view_ref(target)
        return parse_bucket(name)

    def writable(self, name: str | None) -> BucketRef:
        ref = self.bucket(name)
        if ref.commit is not None:
            raise S3Error("AccessDenied", "Bucket is pinned to a commit and is read-only.",
                          bucket_name=name)
        return ref


