"""s3gw.http: a small HTTP/1.1 server on trio + h11 that knows nothing about S3.

Theory of operation
-------------------
The app gives ``serve`` an ``async handler(Request) -> Response``.  Each
accepted connection runs in the server's nursery; each request's body is
pulled from the socket only as the handler reads it (``Body.receive_some``),
and responses are streamed piece by piece.  Errors raised into handlers derive
from ``HttpError``; the answers the server makes itself (400, 408, 431, 500)
come from the app's ``error_response(status, reason)``.  See ``connection.py``
for the connection lifecycle and ``config.py`` for limits and timeouts.
"""

from .body import Body
from .config import ServerConfig
from .connection import (
    ErrorResponseFactory,
    Handler,
    current_request,
    current_request_id,
    serve_connection,
)
from .errors import BodyAborted, BodyTimeout, ClientDisconnected, HttpError, MalformedBody
from .headers import Headers
from .messages import Request, Response
from .server import serve, serve_listeners, tune_malloc

__all__ = [
    "Body",
    "BodyAborted",
    "BodyTimeout",
    "ClientDisconnected",
    "ErrorResponseFactory",
    "Handler",
    "Headers",
    "HttpError",
    "MalformedBody",
    "Request",
    "Response",
    "ServerConfig",
    "current_request",
    "current_request_id",
    "serve",
    "serve_connection",
    "serve_listeners",
    "tune_malloc",
]
