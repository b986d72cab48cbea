"""The http layer's one error vocabulary.

Theory of operation
-------------------
Everything the http layer raises *into a handler* derives from ``HttpError``
so the layer above (S3) can translate it in one table.  The server itself
catches these when a handler lets them escape, and answers (or not) as the
table below says.  Exception text is for logs only; it never reaches the wire.

=====================  ==========================================  =================
error                  raised by ``Body.receive_some`` when        unhandled -> wire
=====================  ==========================================  =================
ClientDisconnected     peer closed / reset the socket mid-body,    nothing; close
                       or a send (100 Continue) failed
BodyTimeout            no body bytes for ``config.body_timeout``   408; close
MalformedBody          bad chunked framing, or similar             400; close
=====================  ==========================================  =================

After any of them the request body is dead: further ``receive_some`` calls
raise the same error again, and the connection is closed after the response.
"""

from __future__ import annotations

__all__ = ["HttpError", "ClientDisconnected", "BodyTimeout", "MalformedBody", "BodyAborted"]


class HttpError(Exception):
    """Base of every error the http layer raises into a handler.

    ``status`` is the HTTP status the server answers with when the handler
    does not catch the error (``None``: no answer is possible).
    """

    status: int | None = 400


class ClientDisconnected(HttpError):
    """The client went away (EOF, reset, broken pipe) before the body ended."""

    status = None


class BodyTimeout(HttpError):
    """The client sent no body bytes for ``ServerConfig.body_timeout`` seconds."""

    status = 408


class MalformedBody(HttpError):
    """The body framing (HTTP chunked encoding) is invalid."""

    status = 400


class BodyAborted(Exception):
    """Raised by a response body's iterator that cannot go on and has already
    logged why: the server drops the connection (the client sees a body short
    of its Content-Length) and logs one line, without a traceback."""
