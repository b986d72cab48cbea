"""The S3 service: route a request, run its operation, answer S3 XML errors.

``S3Service.handle`` is the HTTP server's handler.  It routes the request
(pure: ``s3.wire.router``), looks the operation up in ``s3.ops.HANDLERS`` (one async
function per S3 operation, keyed by its AWS name) and runs it.  Every
exception is translated once (``s3.translate.to_s3_error``): an S3 error goes
out as its XML document with its status (HEAD: no body); anything unknown is
logged with its traceback and answered ``InternalError`` with the request id
only -- a 500 is always a bug.

What operations are given (stores, settings, helpers) is ``s3.context.Context``,
which ``S3Service`` extends.
"""

from __future__ import annotations

import logging

from ..http import ClientDisconnected, Request, Response, current_request, current_request_id
from ..pfs.roles import AuthSnapshot
from ..pps.jobs import JobView
from ..store.chunkstore import ChunkError, ChunkStoreUnavailable
from .auth.access import Principal, authenticate, authorize
from .context import OUTPUTS_RECHECK, PRINCIPAL, VIEW, Context
from .damage import damaged
from .jobviews import check_output_write, check_view_request
from .ops import HANDLERS
from .translate import to_s3_error
from .wire import unsupported
from .wire.errors import ERRORS, S3Error, error_xml
from .wire.names import parse_bucket
from .wire.router import route

__all__ = ["S3Service", "AUTH_RECHECK"]

log = logging.getLogger("s3gw.s3")

# Seconds between checks of the auth store for changes made by `s3gw auth` (see
# SqliteAuthStore.snapshot: the check costs a GIL round trip on a busy server; a
# PostgreSQL store is kept fresh by a thread of its own and ignores it).
AUTH_RECHECK = 0.05


class S3Service(Context):
    """The HTTP server's handler for S3 (``handle``); see the module doc."""

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
            # for the access log and the metrics (http.Request.notes)
            request.notes = {"operation": routed.endpoint.name, "bucket": routed.bucket,
                             "key": routed.key}
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
            op = HANDLERS.get(routed.endpoint.name)
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
        except ChunkStoreUnavailable as exc:   # the object store is down or busy: retry
            log.warning("chunk store unavailable in request %s: %s", request.id, exc)
            return self.error_response(request, S3Error("ServiceUnavailable"))
        except ChunkError as exc:
            return self.error_response(request, damaged(self.store, exc, routed, request.id))
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
        user = f"job-{view.job_id}"
        snapshot = AuthSnapshot(True, {view.access_key: (view.secret_key, user)}, {},
                                frozenset({user}), frozenset({user}), {})
        return authenticate(request.method, request.path, request.query, request.headers,
                            snapshot, self.clock() / 1e9,
                            vhost_bucket=routed.bucket if routed.virtual_host else None)

    async def authorize(self, principal: Principal, request: Request, routed) -> None:
        """Check the caller's role for the operation (``s3.auth.access.authorize``).

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
        if request.notes is None:
            request.notes = {}
        request.notes["error"] = err.code
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
        if request is not None:
            request.notes = {**(request.notes or {}), "error": code}
        request_id = current_request_id() or "-"
        body = error_xml(err, resource=request.path if request is not None else "/",
                         request_id=request_id)
        headers = [("content-type", "application/xml"), ("x-amz-request-id", request_id)]
        return Response(status, headers, body)
