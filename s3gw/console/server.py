"""The console's HTTP handler: routing, sign-in, worker threads, responses.

Theory of operation
-------------------
``Console.handle`` is an ``http`` handler like the S3 service's, served on
a listener of its own (``app.run_server`` starts it under the same nursery).
A request is routed by method and path (``_ROUTES``: one regular expression
per page); the page's reads run in a worker thread through the console's
own ``trio.CapacityLimiter`` (2 threads), never the S3 limiter, so a slow
page can hold back only other console pages.  The reads happen in one
thread call per request (``queries`` + ``pages``), so a page costs one
thread hand-over.

The console is read-only: the only POSTs are sign-in and sign-out.  With auth
on (``s3gw auth enable``) every page but ``/login`` and ``/static/`` needs a
session (``sessions``); without one, pages redirect to ``/login`` and
``/api/version`` answers 401.  Repos the viewer may not read answer 404 like
repos that do not exist.  With auth off, the console is open, as the S3 port is.

Every HTML answer carries a Content-Security-Policy that allows only this
origin's script and style (no inline script), ``nosniff`` and ``no-store``.
File downloads (``/raw/``) are served as ``application/octet-stream``
attachments, except the image types the preview shows inline; stored
content is never served as HTML from the console's origin.

Errors: a ``NotVisible`` is 404; anything unexpected is logged with the
request id and answered 500 with no detail.
"""

from __future__ import annotations

import logging
import os
import re
import time
from importlib import resources
from typing import Callable
from urllib.parse import parse_qs, unquote

import trio

from ..http import Request, Response
from ..pfs.history import InvalidVersion
from ..pfs.model import NoSuchCommit
from . import pages, queries
from .dag import svg
from .queries import NotVisible, UsageCache, Viewer
from .render import PREVIEW_BYTES, page
from .sessions import (SessionStore, check_login, clear_cookie_header, cookie_header,
                       session_id_from)

__all__ = ["Console", "DEFAULT_CONSOLE_PORT"]

DEFAULT_CONSOLE_PORT = 30601
log = logging.getLogger("s3gw.console")

LOG_PAGE = 50          # commits per log page
FOLDER_PAGE = 200      # entries per folder page
CHANGES_PAGE = 200     # paths per commit page
IMAGE_MAX = 16 * 1024 * 1024   # larger images are not previewed inline
LOGIN_BODY_MAX = 8 * 1024
FAILED_LOGIN_DELAY = 0.5

_CSP = ("default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
_HTML_HEADERS = [("content-type", "text/html; charset=utf-8"), ("cache-control", "no-store"),
                 ("content-security-policy", _CSP), ("x-content-type-options", "nosniff"),
                 ("x-frame-options", "DENY"), ("referrer-policy", "same-origin")]
_STATIC = {"console.css": "text/css; charset=utf-8",
           "console.js": "text/javascript; charset=utf-8"}


class _Page:
    """What a route's blocking part returns: a page body and its title/crumbs."""

    __slots__ = ("title", "body", "crumbs", "live", "status")

    def __init__(self, title, body, crumbs=(), live=False, status=200):
        self.title, self.body, self.crumbs, self.live, self.status = (
            title, body, crumbs, live, status)


class Console:
    """The web console of one gateway (see the module docstring)."""

    def __init__(self, meta, store, pps, auth, data_dir: str, *, threads: int = 2,
                 clock: Callable[[], float] = time.monotonic):
        self.meta, self.store, self.pps, self.auth = meta, store, pps, auth
        self.data_dir = data_dir
        self.limiter = trio.CapacityLimiter(threads)
        self.sessions = SessionStore()
        self.usage = UsageCache()
        self.clock = clock
        self._static = {name: resources.files(__package__).joinpath("static", name).read_bytes()
                        for name in _STATIC}

    async def run(self, fn, *args):
        return await trio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    # -- the handler ----------------------------------------------------------------------
    async def handle(self, request: Request) -> Response:
        try:
            return await self._handle(request)
        except NotVisible:
            return self._html(404, "Not found", pages.error(
                "Not found (or not visible to you)."), None, False)
        except Exception:
            log.exception("console error in request %s", request.id)
            return self._html(500, "Error", pages.error(
                f"Something went wrong (request {request.id})."), None, False)

    async def _handle(self, request: Request) -> Response:
        path = request.path
        method = request.method
        if path.startswith("/static/"):
            return self._static_file(path[len("/static/"):])
        if path == "/favicon.ico":
            return Response(404, [("content-type", "text/plain")], b"")
        snapshot = self.auth.snapshot(max_age=0.05) if self.auth is not None else None
        auth_on = snapshot is not None and snapshot.enabled
        sid = session_id_from(request.headers.get_all("cookie"))
        now = self.clock()
        session = self.sessions.get(sid, now, snapshot) if auth_on else None
        if path == "/login":
            if not auth_on:
                return _redirect("/")
            if method == "POST":
                return await self._login(request, snapshot, sid)
            return self._html(200, "Sign in", pages.login(), None, False)
        if path == "/logout" and method == "POST":
            self.sessions.end(sid)
            return _redirect("/login" if auth_on else "/", [clear_cookie_header()])
        if auth_on and session is None:
            if path.startswith("/api/"):
                return Response(401, [("content-type", "text/plain"),
                                      ("cache-control", "no-store")], b"sign in\n")
            return _redirect("/login")
        if method not in ("GET", "HEAD"):
            return Response(405, [("allow", "GET, HEAD"), ("content-type", "text/plain")],
                            b"the console is read-only\n")
        viewer = Viewer(session.user if session else None, snapshot if auth_on else None)
        query = {k: v[0] for k, v in parse_qs(request.query, keep_blank_values=True).items()}
        for pattern, name in _ROUTES:
            m = pattern.fullmatch(path)
            if m is not None:
                args = [unquote(g) for g in m.groups()]
                handler = getattr(self, name)
                result = await handler(viewer, query, *args)
                if isinstance(result, Response):
                    return result
                return self._html(result.status, result.title, result.body,
                                  viewer.user, auth_on, result.crumbs, result.live)
        raise NotVisible(path)

    def _html(self, status: int, title: str, body, user, auth_on, crumbs=(), live=False):
        doc = page(title, body, user=user, auth=auth_on, crumbs=crumbs, live=live)
        return Response(status, list(_HTML_HEADERS), doc)

    def _static_file(self, name: str) -> Response:
        data = self._static.get(name)
        if data is None:
            return Response(404, [("content-type", "text/plain")], b"")
        return Response(200, [("content-type", _STATIC[name]), ("cache-control", "max-age=300"),
                              ("x-content-type-options", "nosniff")], data)

    async def _login(self, request: Request, snapshot, old_sid) -> Response:
        body = bytearray()
        while True:
            piece = await request.body.receive_some(LOGIN_BODY_MAX)
            if not piece:
                break
            body += piece
            if len(body) > LOGIN_BODY_MAX:
                return Response(413, [("content-type", "text/plain")], b"too large\n")
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        access_key = form.get("access_key", "")
        user = check_login(snapshot, access_key, form.get("secret_key", ""))
        if user is None:
            await trio.sleep(FAILED_LOGIN_DELAY)      # slows guessing; logs no key
            log.info("console: failed sign-in from %s", _peer(request))
            return self._html(403, "Sign in", pages.login("Unknown key or wrong secret."),
                              None, False)
        self.sessions.end(old_sid)
        session = self.sessions.create(user, access_key.strip(), self.clock())
        log.info("console: %s signed in from %s", user, _peer(request))
        return _redirect("/", [cookie_header(session, self.sessions.lifetime)])

    # -- pages ----------------------------------------------------------------------------
    async def overview(self, viewer: Viewer, q) -> _Page:
        rows = await self.run(queries.overview, self.meta, viewer, self.usage)
        return _Page("Repos", pages.overview(rows), live=True)

    async def repo(self, viewer: Viewer, q, repo: str) -> _Page:
        def read():
            viewer.check(repo)
            rows = [r for r in queries.overview(self.meta, viewer, self.usage) if r.name == repo]
            if not rows:
                raise NotVisible(repo)
            return rows[0]
        row = await self.run(read)
        return _Page(f"Repo {repo}", pages.repo(row), [("Repos", "/")], live=True)

    async def log(self, viewer: Viewer, q, repo: str, ref: str) -> _Page:
        def read():
            r = queries.resolve_ref(self.meta, viewer, repo, ref)
            rows, nxt = queries.branch_log(self.meta, r, q.get("before") or None, LOG_PAGE)
            return pages.log(r, rows, nxt)
        body = await self.run(read)
        return _Page(f"Commits of {ref}", body, _crumbs(repo), live=not q.get("before"))

    async def commit(self, viewer: Viewer, q, repo: str, cid: str) -> _Page:
        def read():
            r = queries.resolve_ref(self.meta, viewer, repo, cid)
            if r.branch is not None:
                raise NotVisible(cid)
            c = r.commit
            changes, nxt = queries.commit_changes(self.meta, c, q.get("after") or None,
                                                  CHANGES_PAGE)
            prov = pages.provenance(repo, self.meta.provenance_of(c.id), viewer.can_read)
            return pages.commit(c, changes, nxt, self.meta.history.change_count(c.id), prov)
        body = await self.run(read)
        return _Page(f"Commit {cid[:12]}", body, _crumbs(repo))

    async def files(self, viewer: Viewer, q, repo: str, ref: str) -> _Page:
        prefix = q.get("prefix", "")

        def read():
            r = queries.resolve_ref(self.meta, viewer, repo, ref)
            f = queries.folder(self.meta, r, prefix, q.get("after") or None, FOLDER_PAGE)
            return pages.folder(r, prefix, f)
        body = await self.run(read)
        title = f"Files of {ref}" + (f": /{prefix}" if prefix else "")
        return _Page(title, body, _crumbs(repo), live=len(ref) != 32)

    async def file(self, viewer: Viewer, q, repo: str, ref: str) -> _Page:
        path = q.get("path", "")

        def read():
            r = queries.resolve_ref(self.meta, viewer, repo, ref)
            info = queries.stat(self.meta, r, path)
            head = queries.read_prefix(self.store, info, PREVIEW_BYTES)
            kind = pages.preview_kind(path, info.object.headers.get("content-type", ""), head)
            if kind == "image" and info.object.size > IMAGE_MAX:
                kind = "binary"
            return pages.file(r, info, kind, head)
        body = await self.run(read)
        return _Page(f"/{path}", body, _crumbs(repo))

    async def raw(self, viewer: Viewer, q, repo: str, ref: str) -> Response:
        path = q.get("path", "")

        def read():
            r = queries.resolve_ref(self.meta, viewer, repo, ref)
            return queries.stat(self.meta, r, path)
        info = await self.run(read)
        ext = os.path.splitext(path.lower())[1]
        image = pages.IMAGE_TYPES.get(ext)
        name = os.path.basename(path) or "file"
        headers = [("x-content-type-options", "nosniff"), ("cache-control", "no-store"),
                   ("content-security-policy", "default-src 'none'; sandbox"),
                   ("etag", f'"{info.object.etag}"')]
        if image and not q.get("download"):
            headers.append(("content-type", image))
        else:
            headers.append(("content-type", "application/octet-stream"))
            headers.append(("content-disposition", _attachment(name)))
        chunks = queries.read_chunks(info)
        return Response(200, headers, self._stream(chunks), content_length=info.object.size)

    async def _stream(self, chunks):
        """A file's chunks, each read (and verified) in a console worker thread: at most
        one chunk (4 MiB) in memory per download."""
        for ref in chunks:
            yield await self.run(self.store.read, ref)

    async def diff(self, viewer: Viewer, q, repo: str) -> _Page:
        old, new = q.get("from", "").strip(), q.get("to", "").strip()

        def read():
            viewer.check(repo)
            if not old or not new:
                return pages.diff(repo, old, new, [], 0)
            try:
                a = queries.resolve_ref(self.meta, viewer, repo, old).commit
                b = queries.resolve_ref(self.meta, viewer, repo, new).commit
            except NotVisible:
                return pages.diff(repo, old, new, [], 0, "Unknown commit or branch in this repo.")
            if a is None or b is None:
                return pages.diff(repo, old, new, [], 0, "An empty branch has no commit.")
            rows, total = queries.diff(self.meta, a, b)
            return pages.diff(repo, a.id, b.id, rows, total)
        try:
            body = await self.run(read)
        except (NoSuchCommit, InvalidVersion):
            body = pages.diff(repo, old, new, [], 0, "Unknown commit.")
        return _Page(f"Diff in {repo}", body, _crumbs(repo))

    async def dag(self, viewer: Viewer, q) -> _Page:
        def read():
            g = queries.graph(self.meta, self.pps, viewer)
            pipelines = []
            for p in self.pps.pipelines():
                if viewer.can_read(p.name):
                    latest = self.pps.latest_job(p.name)
                    pipelines.append((p, latest.state.value if latest else None))
            return pages.dag(svg(g), pipelines)
        body = await self.run(read)
        return _Page("Pipelines", body, live=True)

    async def jobs(self, viewer: Viewer, q) -> _Page:
        pipeline = q.get("pipeline") or None
        items = await self.run(queries.jobs, self.pps, viewer, pipeline)
        return _Page("Jobs", pages.jobs(items, pipeline), live=True)

    async def job(self, viewer: Viewer, q, job_id: str) -> _Page:
        def read():
            j = queries.job(self.pps, viewer, job_id)
            tail, total = queries.job_log_tail(self.pps, j)
            return pages.job(j, tail, total, viewer.can_read)
        body = await self.run(read)
        return _Page(f"Job {job_id[:12]}", body, [("Jobs", "/jobs")], live=True)

    async def job_log(self, viewer: Viewer, q, job_id: str) -> Response:
        def read():
            j = queries.job(self.pps, viewer, job_id)
            return queries.job_log_tail(self.pps, j, limit=16 * 1024 * 1024)[0]
        data = await self.run(read)
        return Response(200, [("content-type", "text/plain; charset=utf-8"),
                              ("x-content-type-options", "nosniff"),
                              ("cache-control", "no-store")], data)

    async def api_version(self, viewer: Viewer, q) -> Response:
        token = await self.run(queries.version, self.meta, self.pps, viewer)
        return Response(200, [("content-type", "text/plain"), ("cache-control", "no-store")],
                        token.encode())


_SEG = r"([^/]+)"
_ROUTES = [(re.compile(p), name) for p, name in [
    (r"/", "overview"),
    (rf"/repo/{_SEG}", "repo"),
    (rf"/repo/{_SEG}/log/{_SEG}", "log"),
    (rf"/repo/{_SEG}/commit/([0-9a-f]{{32}})", "commit"),
    (rf"/repo/{_SEG}/files/{_SEG}", "files"),
    (rf"/repo/{_SEG}/file/{_SEG}", "file"),
    (rf"/repo/{_SEG}/raw/{_SEG}", "raw"),
    (rf"/repo/{_SEG}/diff", "diff"),
    (r"/dag", "dag"),
    (r"/jobs", "jobs"),
    (r"/job/([0-9a-f]{32})", "job"),
    (r"/job/([0-9a-f]{32})/log", "job_log"),
    (r"/api/version", "api_version"),
]]


def _crumbs(repo: str):
    from .render import url
    return [("Repos", url("/")), (repo, url(f"/repo/{repo}"))]


def _redirect(location: str, extra: list | None = None) -> Response:
    return Response(303, [("location", location), ("cache-control", "no-store"),
                          ("content-type", "text/plain"), *(extra or [])], b"")


def _attachment(name: str) -> str:
    safe = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in name)
    from urllib.parse import quote
    return f"attachment; filename=\"{safe}\"; filename*=UTF-8''{quote(name, safe='')}"


def _peer(request: Request) -> str:
    remote = request.remote
    return str(remote[0]) if isinstance(remote, tuple) else "-"
