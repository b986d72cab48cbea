"""Request and Response: the values a handler receives and returns.

Theory of operation
-------------------
``Request`` is built by the connection from h11's ``Request`` event: every
field is a decoded str except the body, which is a live ``Body`` the handler
pulls from.  Nothing is unquoted: ``target``, ``path`` and ``query`` are the
raw bytes of the request line decoded as latin-1, because the S3 layer signs
and routes the path exactly as the client sent it.

``Response`` is a plain value.  The server frames it:

* ``body`` is ``bytes`` (Content-Length = its length), ``None`` (empty; or, with
  ``content_length``, a HEAD-style answer that advertises a length), or an
  async iterable of bytes-like pieces, streamed as they come: with
  Content-Length when ``content_length`` is given, else chunked (HTTP/1.1) or
  close-delimited (HTTP/1.0).
* To a HEAD request only the head is sent, including the Content-Length the
  handler gave; a streamed body is closed (``aclose``) without being iterated.
* Framing headers in ``headers`` (Content-Length, Transfer-Encoding) are
  replaced by what the server computes from ``body``/``content_length``; a
  Content-Length header stands in for ``content_length`` when that is None.
  ``Connection: close`` is honoured.  ``Server`` and ``Date`` are added when
  absent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import AsyncIterable, Union

from .body import Body
from .headers import Headers

__all__ = ["Request", "Response", "ResponseBody"]

ResponseBody = Union[bytes, bytearray, memoryview, AsyncIterable[Union[bytes, bytearray, memoryview]], None]


class Request:
    """One HTTP request as the handler sees it.

    Attributes:
        method: e.g. ``"PUT"`` (as sent; h11 does not case-fold it).
        target: the raw request-target, e.g. ``"/b/k%20y?uploads="``.
        path: ``target`` up to the first ``?`` (raw, percent-encoded); for a
            target in absolute form (``http://host/b/k``, which RFC 9112 3.2.2
            says a server must accept) the part after the authority.
        query: ``target`` after the first ``?`` (raw), ``""`` if none.
        headers: ``Headers`` (case-insensitive ``get``/``get_all``).
        http_version: ``"1.1"`` or ``"1.0"``.
        id: 16 uppercase hex characters, unique per request, also logged.
        remote: the peer address (``(host, port)``) or ``None`` if unknown.
        body: the request ``Body``; pull it with ``await body.receive_some()``.
        notes: ``None``, or a dict the handler fills with what it made of the
            request (e.g. the operation's name); the server passes it on, unread,
            to the access log and the ``ServerConfig.observer``.
    """

    __slots__ = ("method", "target", "path", "query", "headers", "http_version", "id", "remote", "body",
                 "notes")

    def __init__(
        self,
        *,
        method: str,
        target: str,
        headers: Headers,
        http_version: str,
        id: str,
        remote: object,
        body: Body,
    ) -> None:
        self.method = method
        self.target = target
        path, sep, query = target.partition("?")
        if not path.startswith("/") and path[:8].lower().startswith(("http://", "https://")):
            rest = path.partition("://")[2]
            path = "/" + rest.partition("/")[2]     # absolute form: drop scheme and authority
        self.path = path
        self.query = query
        self.headers = headers
        self.http_version = http_version
        self.id = id
        self.remote = remote
        self.body = body
        self.notes: dict | None = None

    def __repr__(self) -> str:
        return f"<Request {self.id} {self.method} {self.target!r}>"


@dataclass(slots=True)
class Response:
    """What a handler returns.

    Args:
        status: the status code (200..599).
        headers: ``(name, value)`` str pairs; values are sent latin-1 encoded.
        body: bytes, ``None``, or an async iterable of bytes-like pieces.
        content_length: the body length; required to send Content-Length for
            a streamed body, and what a HEAD answer advertises.
    """

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: ResponseBody = None
    content_length: int | None = None
