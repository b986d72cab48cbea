"""CORS preflight (``OPTIONS``): answered as AWS answers for a bucket without a CORS
configuration (s3gw has none): ``403 AccessForbidden`` "CORSResponse: CORS is not
enabled for this bucket.", after the checks AWS makes first (an ``Origin`` and an
``Access-Control-Request-Method`` header are required: ``400 BadRequest``; the
bucket must exist: ``404 NoSuchBucket``).  Never ``405``: browsers and
S3 test suites send it.
"""

from __future__ import annotations

from ...http import Request, Response
from ..context import Context
from ..resolve import existing_bucket
from ..wire.errors import S3Error


async def options_bucket(svc: Context, req: Request, r) -> Response:
    return await _preflight(svc, req, r)


async def options_object(svc: Context, req: Request, r) -> Response:
    return await _preflight(svc, req, r)


async def _preflight(svc: Context, req: Request, r) -> Response:
    if not req.headers.get("origin"):
        raise S3Error("BadRequest", "Insufficient information. Origin request header needed.")
    method = req.headers.get("access-control-request-method")
    if not method:
        raise S3Error("BadRequest", "Invalid Access-Control-Request-Method: null")
    await svc.run(existing_bucket, svc, r.bucket)
    raise S3Error("AccessForbidden", method="OPTIONS",
                  resource_type="OBJECT" if r.key is not None else "BUCKET")
