"""``/_s3gw/healthz``, ``/_s3gw/readyz`` and ``/_s3gw/metrics`` in front of the S3 handler.

``OpsEndpoints.handle`` is the HTTP server's handler: a request for a path under
``/_s3gw/`` on the bare host (see the package doc) is answered here, every
other goes to the S3 service unchanged (one ``str.startswith`` per request).

Answers: ``GET`` or ``HEAD`` only (else 405 with ``Allow``); unknown names 404;
bodies are tiny JSON documents (metrics: the Prometheus text format);
``Cache-Control: no-store``.  Each request gets ``Request.notes`` with its
``operation`` (``s3gw.healthz``, ``s3gw.readyz``, ``s3gw.metrics``), so it shows
in the access log and in the metrics like any other.

Readiness and the metrics' data-folder gauges run in worker threads of their
own (a ``CapacityLimiter`` of 1 each, not the S3 worker pool, so a stuck probe
never takes an upload's thread), bounded by ``probe_timeout``: a readiness
check that does not finish in time is answered 503 (its thread is abandoned
and finishes on its own); a slow gauge refresh serves the previous values.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from typing import Awaitable, Callable

import trio

from ..http import Request, Response
from .health import Readiness
from .metrics import CONTENT_TYPE, Metrics

__all__ = ["OpsEndpoints", "PREFIX"]

log = logging.getLogger("s3gw.observe")

PREFIX = "/_s3gw/"
_HEADERS = [("cache-control", "no-store")]


def _json(status: int, doc: dict, extra: list[tuple[str, str]] = ()) -> Response:
    body = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
    return Response(status, [("content-type", "application/json"), *_HEADERS, *extra], body)


def is_loopback(remote) -> bool:
    """Whether the peer ``(host, port, ...)`` is this machine's loopback."""
    if not isinstance(remote, tuple) or not remote:
        return False
    try:
        addr = ipaddress.ip_address(str(remote[0]).split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


class OpsEndpoints:
    """The handler: operators' endpoints, then S3.

    Args:
        inner: the S3 service's handler.
        metrics: the app's ``Metrics``.
        readiness: the app's ``Readiness``.
        auth_enabled: ``() -> bool``, whether S3 auth is on now.
        metrics_token: with auth on, a bearer token that opens /metrics to any peer
            (``None``: loopback peers only).
        domain: the virtual-host domain (requests to ``<bucket>.<domain>`` are S3).
        probe_timeout: seconds a readiness check or a gauge refresh may take.
    """

    def __init__(self, inner: Callable[[Request], Awaitable[Response]], metrics: Metrics,
                 readiness: Readiness, *, auth_enabled: Callable[[], bool],
                 metrics_token: str | None = None, domain: str | None = None,
                 probe_timeout: float = 2.0) -> None:
        self.inner = inner
        self.metrics = metrics
        self.readiness = readiness
        self.auth_enabled = auth_enabled
        self.metrics_token = metrics_token or None
        self.domain_suffix = f".{domain.lower()}" if domain else None
        self.probe_timeout = probe_timeout
        self._ready_threads = trio.CapacityLimiter(1)
        self._gauge_threads = trio.CapacityLimiter(1)

    async def handle(self, request: Request) -> Response:
        if request.path.startswith(PREFIX) and not self._virtual_host(request):
            return await self._serve(request)
        return await self.inner(request)

    def _virtual_host(self, request: Request) -> bool:
        if self.domain_suffix is None:
            return False
        host = (request.headers.get("host") or "").lower().rsplit(":", 1)[0]
        return host.endswith(self.domain_suffix)

    async def _serve(self, request: Request) -> Response:
        name = request.path[len(PREFIX):]
        page = {"healthz": self._healthz, "readyz": self._readyz, "metrics": self._metrics}.get(name)
        request.notes = {"operation": f"s3gw.{name}" if page else "s3gw.unknown"}
        if page is None:
            request.notes["error"] = "NotFound"
            return _json(404, {"error": "not found", "endpoints": ["healthz", "readyz", "metrics"]})
        if request.method not in ("GET", "HEAD"):
            request.notes["error"] = "MethodNotAllowed"
            return _json(405, {"error": "method not allowed"}, [("allow", "GET, HEAD")])
        return await page(request)

    async def _healthz(self, request: Request) -> Response:
        return _json(200, {"status": "ok"})

    async def _readyz(self, request: Request) -> Response:
        checks = None
        with trio.move_on_after(self.probe_timeout):
            ready, checks = await trio.to_thread.run_sync(
                self.readiness.check, limiter=self._ready_threads, abandon_on_cancel=True)
        if checks is None:
            ready, checks = False, {"metadata": f"no answer within {self.probe_timeout:g} s"}
        if not ready:
            request.notes["error"] = "NotReady"
            log.warning("not ready: %s", ", ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok"))
        return _json(200 if ready else 503, {"status": "ready" if ready else "not ready",
                                             "checks": checks})

    def _may_read_metrics(self, request: Request) -> bool:
        if is_loopback(request.remote) or not self.auth_enabled():
            return True
        if self.metrics_token is None:
            return False
        given = request.headers.get("authorization") or ""
        scheme, _, token = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(),
                                                                  self.metrics_token.encode())

    async def _metrics(self, request: Request) -> Response:
        if not self._may_read_metrics(request):
            request.notes["error"] = "AccessDenied"
            return _json(403, {"error": "auth is on: /_s3gw/metrics is open to loopback peers, "
                                        "or with the bearer token of S3GW_METRICS_TOKEN"})
        with trio.move_on_after(self.probe_timeout):
            try:
                await trio.to_thread.run_sync(self.metrics.refresh, limiter=self._gauge_threads,
                                              abandon_on_cancel=True)
            except Exception:
                log.exception("reading the data folder's gauges failed")
        body = self.metrics.render()
        return Response(200, [("content-type", CONTENT_TYPE), *_HEADERS], body)
