"""One HTTP/1.1 connection: read a head, call the handler, send, repeat.

Theory of operation
-------------------
``serve_connection`` owns one stream and one ``h11.Connection`` and runs
request/response cycles on them in a single task (the handler may open its own
nursery; it returns before the cycle goes on):

1. **Head.**  Wait for the first byte of the next request (bounded by
   ``keepalive_timeout``, or by ``header_timeout`` on a fresh connection), then
   for the whole head (``header_timeout``).  h11 refuses heads longer than
   ``max_header_bytes`` (-> 431) and malformed ones (-> 400); those are
   answered through ``error_response`` and the connection is closed.
2. **Handler.**  Build a ``Request`` whose ``Body`` pulls the socket on demand
   (see ``body.py``) and await the handler.  An exception becomes a response
   from the table in ``errors.py`` (``HttpError``) or a 500 (anything else,
   traceback logged under the request id, never sent).
3. **Send.**  The head goes out with the first body piece (so a streamed body
   that fails before its first piece still gets a clean 500).  Pieces at least
   ``coalesce_limit`` long are handed to ``stream.send_all`` as they are; small
   pieces and framing bytes are joined into one send.  Every send is bounded
   by ``send_timeout``; a failed send calls ``h11.send_failed()``.
4. **Reuse or close.**  If the handler left body bytes unread: when the client
   still waits for ``100 Continue`` it never sent them, and h11 cannot start a
   new cycle, so the answer carries ``Connection: close``; when more than
   ``drain_limit`` bytes are known to remain, likewise.  Otherwise up to
   ``drain_limit`` bytes are discarded after the answer and the connection is
   reused if the body ended.  Closing with unread input "lingers": send EOF,
   discard input for ``close_linger`` seconds, so the client reads the answer
   instead of a TCP reset.

**Plain cycles** (``fasthead``, ``ServerConfig.fast_heads``): when h11 is idle and
has nothing buffered, the next read is looked at before h11 sees it.  A plain
HTTP/1.1 request that arrived whole (or whose client waits for ``100 Continue``)
is served without h11: ``_plain_exchange`` gives the handler a ``BufferedBody``
(or a ``Body`` over a ``body.ContinueState``) and ``_PlainFramer`` frames the
answer with h11's bytes and errors; bytes past it stay in ``pending`` for the
next cycle.  Anything else is given to h11 and the cycle goes on as above.
``tests/http/test_fasthead.py`` checks both paths answer byte for byte alike.

Teardown is in ``finally``: a shielded scope bounded by ``cleanup_timeout``
around ``trio.aclose_forcefully``.  No exception escapes a connection (a bug
is logged), so one bad connection never takes the server's nursery down.

Logging: ``s3gw.access`` gets one INFO line per request (method, path, status,
response body bytes, duration ms, request id, peer; a sink installed with
``accesslog.install`` also gets the request body bytes and the handler's
``Request.notes``), and ``config.observer`` (metrics) hears of every connection
and exchange; ``s3gw.http`` gets
tracebacks and protocol trouble.  ``current_request_id()`` /
``current_request()`` read the cycle's context, so ``error_response`` can put
the request id into its body.

Memory per connection: h11's buffer (<= ``max_header_bytes`` for a head, one
``receive_size`` read during a body) + one read in flight + the handler's own.
"""

from __future__ import annotations

import contextlib
import http
import itertools
import logging
import math
import os
import re
import socket
import time
from contextvars import ContextVar
from email.utils import formatdate
from typing import Any, AsyncIterator, Awaitable, Callable

import h11
import trio

from . import accesslog, fasthead
from .body import Body, BufferedBody, ContinueFeeder, ContinueState, Feeder
from .config import ServerConfig
from .errors import BodyAborted, ClientDisconnected, HttpError
from .headers import Headers
from .messages import Request, Response

__all__ = [
    "Handler",
    "ErrorResponseFactory",
    "serve_connection",
    "current_request",
    "current_request_id",
]

Handler = Callable[[Request], Awaitable[Response]]
ErrorResponseFactory = Callable[[int, str], Response]

log = logging.getLogger("s3gw.http")

_request_id: ContextVar[str | None] = ContextVar("s3gw_http_request_id", default=None)
_request: ContextVar[Request | None] = ContextVar("s3gw_http_request", default=None)

_BYTES_LIKE = (bytes, bytearray, memoryview)
_EOM = h11.EndOfMessage()
_NO_BODY_STATUS = frozenset((204, 304))
_FRAMING = frozenset(("content-length", "transfer-encoding"))
_BIG_BODY = 4 << 20
_SNDBUF = 2 << 20  # the kernel doubles it: 4 MiB


def _write_until_full(fd: int, view: memoryview) -> int:
    """Non-blocking writes of ``view`` to ``fd`` until it is all written or the
    socket is full; the bytes written.  Raises OSError if the socket failed."""
    sent, total = 0, len(view)
    while sent < total:
        try:
            sent += os.write(fd, view[sent:])
        except BlockingIOError:
            break
    return sent


REQUESTS = [0]   # requests started by this process (one int, no lock: the trio thread only)


def current_request_id() -> str | None:
    """The id of the request being served by the calling task (None outside)."""
    return _request_id.get()


def current_request() -> Request | None:
    """The ``Request`` being served by the calling task (None before its head parsed)."""
    return _request.get()


_ID_PREFIX = int.from_bytes(os.urandom(4), "big")   # per process, so restarts don't repeat ids
_ID_COUNTER = itertools.count(int.from_bytes(os.urandom(4), "big"))


def new_request_id() -> str:
    """16 uppercase hex characters, unique within the process (a random 32-bit
    process prefix and a counter from a random start).  Not secret: an id names
    a request in the log; it was ``os.urandom`` per request, a syscall that cost
    ~4% of a small GET's event-loop time."""
    return f"{_ID_PREFIX:08X}{next(_ID_COUNTER) & 0xFFFFFFFF:08X}"


def reason_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


_date_cache: tuple[int, bytes] = (0, b"")


def _http_date() -> bytes:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode("ascii"))
    return _date_cache[1]


def plain_error_response(status: int, reason: str) -> Response:
    """The minimal answer used when the app gave no ``error_response``."""
    return Response(status, [("content-type", "text/plain")], f"{status} {reason}\n".encode())


class _Abort(Exception):
    """Internal: the response is broken mid-stream; drop the connection."""


class _EarlyFailure(Exception):
    """Internal: the response failed before any byte of it was sent."""


async def serve_connection(
    stream: trio.abc.HalfCloseableStream | trio.abc.Stream,
    handler: Handler,
    config: ServerConfig = ServerConfig(),
    *,
    error_response: ErrorResponseFactory | None = None,
    remote: Any = None,
) -> None:
    """Serve HTTP/1.1 on one connected stream until it closes; then close it.

    Args:
        stream: a connected trio stream (``SocketStream``, or a
            ``trio.testing`` memory/lockstep stream).
        handler: ``async (Request) -> Response``.
        config: limits and timeouts.
        error_response: ``(status, reason) -> Response`` for answers the server
            makes itself (400, 408, 431, 500); plain text when ``None``.
        remote: the peer address to report in ``Request.remote`` and logs;
            taken from the socket when omitted.

    Never raises (except ``Cancelled``); the stream is closed on return.
    """
    if remote is None:
        sock = getattr(stream, "socket", None)
        if sock is not None:
            try:
                remote = sock.getpeername()
            except OSError:
                remote = None
    await _Connection(stream, handler, config, error_response, remote).run()


class _Connection:
    def __init__(
        self,
        stream: Any,
        handler: Handler,
        config: ServerConfig,
        error_response: ErrorResponseFactory | None,
        remote: Any,
    ) -> None:
        self.stream = stream
        self.handler = handler
        self.config = config
        self.error_response = error_response
        self.remote = remote
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=config.max_header_bytes)
        self.feeder = Feeder(stream, self.h11, config.receive_size)
        self.out: list[Any] = []
        self.out_len = 0
        self.eof = False
        self.linger = False
        self._refused_method: bytes | None = None   # see _check_head_size
        self._sndbuf_set = False
        # fasthead: bytes read but not given to h11 (a plain request's pipelined
        # successor); the byte count just handed over to h11 when a head was not plain
        self.fast = config.fast_heads and fasthead.AVAILABLE
        self.pending = b""
        self._handed = 0
        self._h11_framer = _H11Framer(self)

    # -- lifecycle ----------------------------------------------------------

    async def run(self) -> None:
        observer = self.config.observer
        if observer is not None:
            observer.connection_opened()
        drain = self.config.drain
        if drain is not None:
            drain.connections += 1
        try:
            first = True
            while await self._cycle(first):
                first = False
                if self.h11.our_state is h11.DONE:   # a plain cycle leaves h11 idle
                    self.h11.start_next_cycle()
            if self.linger:
                await self._linger()
        except (ClientDisconnected, _Abort):
            pass
        except Exception:
            log.exception("internal error on connection from %s", self.remote)
        finally:
            if drain is not None:
                drain.connections -= 1
            if observer is not None:
                observer.connection_closed()
            with trio.move_on_after(self.config.cleanup_timeout) as scope:
                scope.shield = True
                await trio.aclose_forcefully(self.stream)

    async def _cycle(self, first: bool) -> bool:
        """One request/response exchange.  Returns True to keep the connection."""
        rid = new_request_id()
        _request_id.set(rid)
        _request.set(None)
        drain = self.config.drain
        if drain is None:
            head = await self._read_head(first)
        else:
            head = await self._read_head_or_drain(drain, first)
        started = time.perf_counter()
        if head is None:
            return False
        if isinstance(head, int):
            status = head
            self.linger = not self.eof
            # the method of a head parsed but refused (431): a HEAD's answer has no body
            method = self._refused_method or b"GET"
            self._refused_method = None
            nbytes = await self._send_final(self._error(status), method, close=True)
            self._log("-", "-", status, nbytes, started, rid)
            return False
        if type(head) is fasthead.SimpleHead:
            return await self._plain_exchange(head, rid, started)
        return await self._exchange(head, rid, started)

    async def _read_head_or_drain(self, drain, first: bool) -> h11.Request | int | None:
        """``_read_head``, given up (None: close) when a graceful stop starts before
        a whole head has arrived (``drain.Drain``)."""
        if drain.draining:
            return None
        with trio.CancelScope() as scope:
            drain.idle.add(scope)
            try:
                return await self._read_head(first)
            finally:
                drain.idle.discard(scope)
        return None

    async def _read_head(self, first: bool) -> h11.Request | fasthead.SimpleHead | int | None:
        """The next request head; an error status to answer; None to close quietly.

        A plain request that arrived whole (``fasthead``) comes back as a
        ``SimpleHead``, without h11; any other bytes are given to h11.
        h11 checks ``max_incomplete_event_size`` only while a head is still
        incomplete, so a long head that arrives in one read would pass; we
        count the bytes fed to h11 and check the parsed head's size too.
        """
        conn = self.h11
        fed = len(conn.trailing_data[0])  # pipelined bytes from the last cycle
        deadline = None
        if self.fast and not fed and conn.their_state is h11.IDLE:
            if first:    # one deadline for a new connection's whole head, as below
                deadline = trio.current_time() + self.config.header_timeout
            head = await self._read_plain_head(first)
            if head is not _TO_H11:
                return head
            fed = self._handed
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            return exc.error_status_hint
        if type(event) is h11.Request:
            return self._check_head_size(event, fed)
        if event is not h11.NEED_DATA:
            return None
        if not first and not fed:
            n = await self._receive(self.config.keepalive_timeout)
            if not n:
                return None  # idle timeout, EOF or a broken connection
            fed += n
        # One deadline for the whole head.  The reads pay for a cancel scope only
        # when they have to wait (Feeder.feed), so a head that has already arrived,
        # the usual case, costs none.
        if deadline is None:
            deadline = trio.current_time() + self.config.header_timeout
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                return None if self.eof else exc.error_status_hint
            if type(event) is h11.Request:
                return self._check_head_size(event, fed)
            if event is not h11.NEED_DATA:
                return None
            n = await self._receive(deadline - trio.current_time())
            if n is None:
                return 408 if fed else None  # the head did not arrive in time
            if not n:
                self.eof = True
            fed += n

    async def _read_plain_head(self, first: bool):
        """The next request as a ``SimpleHead`` if it is plain and whole; None to
        close quietly (nothing arrived in time, EOF, a broken connection: as
        ``_read_head``); else ``_TO_H11`` once the bytes are given to h11."""
        data = self.pending
        if not data:
            timeout = self.config.header_timeout if first else self.config.keepalive_timeout
            try:
                data = await self.feeder.read_bytes(timeout)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if data is None:
                return None
            if not data:
                self.h11.receive_data(b"")  # EOF for h11 too
                self.eof = True
                return None
        head = fasthead.parse(data, self.config.max_header_bytes)
        if head is not None:
            self.pending = data[head.end:] if head.end < len(data) else b""
            return head
        self.pending = b""
        self.h11.receive_data(data)
        self._handed = len(data)
        return _TO_H11

    def _check_head_size(self, event: h11.Request, fed: int) -> h11.Request | int:
        if fed > self.config.max_header_bytes:
            head_size = fed - len(self.h11.trailing_data[0])
            if head_size > self.config.max_header_bytes:
                self._refused_method = event.method
                return 431
        return event

    async def _receive(self, timeout: float = math.inf) -> int | None:
        """One read into h11; returns the byte count (0: EOF or broken; None:
        nothing arrived within ``timeout`` seconds)."""
        if timeout <= 0:
            return None
        try:
            return await self.feeder.feed(timeout)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.h11.receive_data(b"")  # EOF for h11 too
            self.eof = True
            return 0

    # -- one exchange -------------------------------------------------------

    async def _exchange(self, event: h11.Request, rid: str, started: float) -> bool:
        REQUESTS[0] += 1        # for the idle memory trim (server.return_memory)
        config = self.config
        conn = self.h11
        headers = Headers.from_raw(event.headers)
        # Both framings in one request (RFC 9112 6.1): Transfer-Encoding wins, and
        # the connection is closed after the answer (request smuggling).
        smuggled = "transfer-encoding" in headers and "content-length" in headers
        if "transfer-encoding" in headers:
            length: int | None = None
        else:
            length = int(headers.get("content-length", "0"))
        body = Body(
            conn,
            self.feeder,
            length=length,
            timeout=config.body_timeout,
            send=self._send_all,
            min_rate=config.body_min_rate,
            rate_grace=config.body_rate_grace,
        )
        method = event.method.decode("ascii")
        request = Request(
            method=method,
            target=event.target.decode("latin-1"),
            headers=headers,
            http_version=event.http_version.decode("ascii"),
            id=rid,
            remote=self.remote,
            body=body,
        )
        _request.set(request)
        status = 499  # nginx's "client closed request", for the log only
        nbytes = 0
        try:
            response = await self._call_handler(request)
            if response is None:
                return False
            status = response.status
            if length == 0 and not body.complete:
                await body.drain(0, io=False)  # free: only consumes EndOfMessage
            close = smuggled
            if not body.complete:
                remaining = None if length is None else length - body.consumed
                if (
                    body.failed is not None
                    or conn.they_are_waiting_for_100_continue
                    or (remaining is not None and remaining > config.drain_limit)
                ):
                    close = True
                    self.linger = not isinstance(body.failed, ClientDisconnected)
            try:
                nbytes = await self._send_final(response, event.method, close=close)
            except _EarlyFailure:
                status = 500
                nbytes = await self._send_final(self._error(500), event.method, close=close)
            if close:
                return False
            if not await self._drained(body):
                return False
            return conn.our_state is h11.DONE and conn.their_state is h11.DONE
        finally:
            body.detach()
            self._log(method, request.path, status, nbytes, started, rid, body.consumed,
                      request.notes)

    async def _plain_exchange(self, head: fasthead.SimpleHead, rid: str, started: float) -> bool:
        """``_exchange`` for a plain request (``fasthead``): its body is in memory,
        or, when the client waits for ``100 Continue``, a ``Body`` over a
        ``ContinueState`` in h11's place; the answer is framed here
        (``_PlainFramer``) instead of by h11, which stays idle.  The same answers
        and the same keep-alive decisions as ``_exchange``."""
        REQUESTS[0] += 1
        config = self.config
        state = None
        if head.expect:
            state = ContinueState(head.length)
            body = Body(state, ContinueFeeder(self.feeder, state), length=head.length,
                        timeout=config.body_timeout, send=self._send_all,
                        min_rate=config.body_min_rate, rate_grace=config.body_rate_grace)
        else:
            body = BufferedBody(head.body)
        method = head.method.decode("ascii")
        request = Request(
            method=method,
            target=head.target.decode("latin-1"),
            headers=Headers.from_raw(head.headers),
            http_version="1.1",
            id=rid,
            remote=self.remote,
            body=body,
        )
        _request.set(request)
        status = 499
        nbytes = 0
        try:
            response = await self._call_handler(request)
            if response is None:
                return False
            status = response.status
            close = False
            if not body.complete:
                if (body.failed is not None
                        or (state is not None and state.they_are_waiting_for_100_continue)
                        or body.length - body.consumed > config.drain_limit):
                    close = True
                    self.linger = not isinstance(body.failed, ClientDisconnected)
            framer = _PlainFramer(self, head.method)
            try:
                nbytes = await self._send_final(response, head.method, close=close,
                                                framer=framer)
            except _EarlyFailure:
                status = 500
                framer = _PlainFramer(self, head.method)
                nbytes = await self._send_final(self._error(500), head.method, close=close,
                                                framer=framer)
            if close or framer.close:
                return False
            if not await self._drained(body):
                return False
            if state is not None and state.leftover:
                self.pending = state.leftover    # a pipelined request after the body
            return True
        finally:
            body.detach()
            self._log(method, request.path, status, nbytes, started, rid, body.consumed,
                      request.notes)

    async def _call_handler(self, request: Request) -> Response | None:
        """Await the handler; turn its failure into a Response (None: peer gone)."""
        try:
            response = await self.handler(request)
            if not isinstance(response, Response):
                raise TypeError(f"handler returned {type(response).__name__}, not Response")
            if not 200 <= response.status <= 999:
                raise ValueError(f"handler returned status {response.status}")
            return response
        except Exception as exc:
            failure = _find_http_error(exc)
            if failure is None and isinstance(request.body.failed, HttpError):
                failure = request.body.failed
            if failure is None:
                log.error("handler failed on request %s", request.id, exc_info=exc)
                return self._error(500)
            if failure.status is None:
                log.info("request %s: %s", request.id, failure)
                return None
            log.info("request %s: %s", request.id, failure)
            return self._error(failure.status)

    def _error(self, status: int) -> Response:
        reason = reason_phrase(status)
        if self.error_response is not None:
            try:
                response = self.error_response(status, reason)
                if isinstance(response, Response):
                    return response
                log.error("error_response returned %r", type(response))
            except Exception:
                log.exception("error_response(%d) failed", status)
        return plain_error_response(status, reason)

    # -- sending ------------------------------------------------------------

    def _head(self, response: Response, length: int | None, close: bool) -> h11.Response:
        """Build the h11 head (may raise on invalid header names/values)."""
        status = response.status
        raw, reason = self._head_fields(response, length, close)
        if _headers_valid(raw):
            # Already checked (as h11 would, but in two regex scans instead of two
            # per header: h11's validation was ~10% of the trio thread's work on
            # small requests); h11 still checks Content-Length and framing.
            return h11.Response(status_code=status, headers=raw, reason=reason, _parsed=True)
        return h11.Response(status_code=status, headers=raw, reason=reason)  # raises

    def _head_fields(self, response: Response, length: int | None,
                     close: bool) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """The answer's header fields as bytes (the handler's, less framing, plus
        Content-Length, Server, Date, Connection: close) and its reason phrase."""
        status = response.status
        raw: list[tuple[bytes, bytes]] = []
        has_server = has_date = False
        for name, value in response.headers:
            lname = name.lower()
            if lname in _FRAMING:
                continue
            if lname == "server":
                has_server = True
            elif lname == "date":
                has_date = True
            raw.append((name.encode("ascii"), value.encode("latin-1")))
        if length is not None and status not in _NO_BODY_STATUS:
            raw.append((b"content-length", str(length).encode("ascii")))
        if not has_server and self.config.server_name:
            raw.append((b"server", self.config.server_name.encode("latin-1")))
        if not has_date:
            raw.append((b"date", _http_date()))
        if close:
            raw.append((b"connection", b"close"))
        return raw, reason_phrase(status).encode("ascii")

    async def _drained(self, body) -> bool:
        """After the answer: read and drop what is left of the request body (bounded in
        bytes and time); False when it could not all be read (the connection closes)."""
        if body.complete:
            return True
        config = self.config
        with trio.move_on_after(config.body_timeout):
            await body.drain(config.drain_limit, io=True)
        if not body.complete:
            self.linger = body.failed is None
            return False
        return True

    async def _send_final(self, response: Response, method: bytes, *, close: bool,
                          framer=None) -> int:
        """Send ``response``; return the body bytes sent.  ``framer``: who frames
        the head and body (h11's state machine by default; ``_PlainFramer`` for
        a plain cycle).

        Raises:
            _EarlyFailure: nothing was sent (bad headers, or the body iterator
                failed before its first piece); the caller may send a 500.
            _Abort: the body failed mid-stream; the connection must be dropped.
            ClientDisconnected: a send failed or timed out.
        """
        body = response.body
        head_only = method == b"HEAD" or response.status in _NO_BODY_STATUS
        given = response.content_length
        if given is None:
            given = _header_content_length(response.headers)
        if body is None:
            length = given if given is not None else 0
            stream = None
        elif isinstance(body, _BYTES_LIKE):
            length = memoryview(body).nbytes
            stream = None
        else:
            length = given
            stream = body
        if framer is None:
            framer = self._h11_framer
        try:
            framer.prepare(response, length, close)
        except Exception as exc:
            log.error("invalid response head", exc_info=exc)
            await _aclose_iterable(stream)
            raise _EarlyFailure() from exc

        if head_only or stream is None:
            await _aclose_iterable(stream)
            parts = [framer.start()]
            if not head_only and length:
                parts.extend(framer.data(body))
            parts.append(framer.end())
            await self._write(parts)
            await self._flush()
            return 0 if head_only else length or 0

        if length is not None and length >= _BIG_BODY:
            self._grow_send_buffer()
        iterator = stream.__aiter__()
        try:
            try:
                piece = await _first_piece(iterator)
            except Exception as exc:
                log.error("response body failed before its first piece", exc_info=exc)
                raise _EarlyFailure() from exc
            self._queue(framer.start())
            sent = 0
            while piece is not None:
                if len(piece):
                    try:
                        parts = framer.data(piece)
                    except h11.LocalProtocolError as exc:
                        log.error("response body longer than its Content-Length: %s", exc)
                        raise _Abort() from exc
                    await self._write(parts)
                    n = memoryview(piece).nbytes
                    sent += n
                    if n < self.config.coalesce_limit:
                        await self._flush()  # don't hold data back while we wait
                try:
                    piece = await iterator.__anext__()
                except StopAsyncIteration:
                    piece = None
                except BodyAborted as exc:
                    log.info("response body aborted after %d bytes: %s", sent, exc)
                    raise _Abort() from exc
                except Exception as exc:
                    log.error("response body failed after %d bytes", sent, exc_info=exc)
                    raise _Abort() from exc
            try:
                self._queue(framer.end())
            except h11.LocalProtocolError as exc:
                log.error("response body shorter than its Content-Length (%d sent)", sent)
                raise _Abort() from exc
            await self._flush()
            return sent
        finally:
            await _aclose_iterable(iterator)

    def _grow_send_buffer(self) -> None:
        """Before a big streamed body: a larger socket send buffer, so each 1 MiB
        piece goes out in one or two ``send`` calls instead of ~6 with the
        autotuned default (each a wait_writable round trip through trio)."""
        if self._sndbuf_set or not _SNDBUF:
            return
        self._sndbuf_set = True
        sock = getattr(self.stream, "socket", None)
        if sock is None:
            return
        try:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < _SNDBUF:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SNDBUF)
        except OSError:  # pragma: no cover - not a TCP socket
            pass

    def _queue(self, part: Any) -> None:
        self.out.append(part)
        self.out_len += len(part)

    async def _write(self, parts: list[Any]) -> None:
        """Send big parts as they are; join small ones (see coalesce_limit)."""
        limit = self.config.coalesce_limit
        for part in parts:
            if memoryview(part).nbytes >= limit:
                await self._flush()
                await self._send_all(part)
            else:
                self._queue(part)
                if self.out_len >= limit:
                    await self._flush()

    async def _flush(self) -> None:
        if self.out:
            out = self.out
            data = out[0] if len(out) == 1 else b"".join(out)
            self.out = []
            self.out_len = 0
            await self._send_all(data)

    async def _send_all(self, data: Any) -> None:
        """Send ``data``, bounded by send_timeout; failures -> ClientDisconnected.

        On a socket the writes are ours.  One non-blocking write goes first: a
        response that fits in the socket buffer (every small one) leaves
        without a timeout scope or a trip through trio's scheduler (together a
        tenth of a 4 KiB GET's event-loop time).  What is left waits until the
        socket is writable, then is written until it is full again, and so on.
        trio's ``send_all`` ends every partial ``send`` with a checkpoint: a
        pass through the scheduler (and its ``epoll_wait``) for every ~200 KiB
        the client has drained, ~4700 per GiB of a GET, against ~650 waits
        this way.  A body piece that did not fit waits at least once, so other
        connections get their turn.  The request's read (``Feeder``) is this
        cycle's checkpoint."""
        sock = self.feeder.socket
        if sock is None:
            await self._send_on_stream(data)
            return
        fd = sock.fileno()
        if fd == -1:
            self.h11.send_failed()
            raise ClientDisconnected("send failed: socket closed")
        view = memoryview(data).cast("B")
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            self.h11.send_failed()
            raise ClientDisconnected(f"send failed: {exc!r}") from exc
        if n == len(view):
            return
        view = view[n:]
        with self._sending():
            while view:
                await trio.lowlevel.wait_writable(fd)
                view = view[_write_until_full(fd, view):]

    async def _send_on_stream(self, data: Any) -> None:
        """``_send_all`` on a stream that is not a plain socket: trio's ``send_all``."""
        with self._sending():
            await self.stream.send_all(data)

    @contextlib.contextmanager
    def _sending(self):
        """A send that may wait: bounded by send_timeout; a failure, a timeout or a
        cancellation marks h11's connection failed, the first two raise
        ClientDisconnected."""
        with trio.move_on_after(self.config.send_timeout) as scope:
            try:
                yield
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self.h11.send_failed()
                raise ClientDisconnected(f"send failed: {exc!r}") from exc
            except BaseException:
                self.h11.send_failed()
                raise
        if scope.cancelled_caught:
            self.h11.send_failed()
            raise ClientDisconnected(f"send timed out after {self.config.send_timeout} s")

    async def _linger(self) -> None:
        """Half-close, then discard input briefly so the client sees our answer."""
        self.linger = False
        with trio.move_on_after(self.config.close_linger):
            try:
                send_eof = getattr(self.stream, "send_eof", None)
                if send_eof is not None:
                    await send_eof()
                while await self.stream.receive_some(self.config.receive_size):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
                pass

    def _log(self, method: str, path: str, status: int, nbytes: int, started: float, rid: str,
             nbytes_in: int = 0, notes: dict | None = None) -> None:
        ms = (time.perf_counter() - started) * 1000.0
        accesslog.record(method, path, status, nbytes, ms, rid, self.remote, nbytes_in, notes)
        observer = self.config.observer
        if observer is not None:
            observer.exchange_done(notes, status, nbytes_in, nbytes, ms)


_TO_H11 = object()   # _read_plain_head: the bytes went to h11


class _H11Framer:
    """Frames an answer through the connection's h11 state machine."""

    __slots__ = ("_conn", "_head")

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self._head: h11.Response | None = None

    def prepare(self, response: Response, length: int | None, close: bool) -> None:
        self._head = self._conn._head(response, length, close)

    def start(self) -> bytes:
        return self._conn.h11.send(self._head)

    def data(self, piece) -> list:
        return self._conn.h11.send_with_data_passthrough(h11.Data(data=piece))

    def end(self) -> bytes:
        return self._conn.h11.send(_EOM)


class _PlainFramer:
    """Frames the answer of a plain cycle (``fasthead``) the way h11 frames it
    for an HTTP/1.1 keep-alive request: the same bytes (h11's response
    writer: status line, Host fields first, the others in order, then
    ``Transfer-Encoding: chunked`` for a body of unknown length, as h11's
    clean-up adds it), the same errors (``h11.LocalProtocolError`` for a body
    longer or shorter than its Content-Length).  ``close``: the answer ends the
    connection (a ``close`` in a Connection field: ours or the handler's)."""

    __slots__ = ("_conn", "_method", "_head", "_remaining", "_chunked", "close")

    def __init__(self, conn: _Connection, method: bytes) -> None:
        self._conn, self._method = conn, method
        self._head = b""
        self._remaining = 0
        self._chunked = False
        self.close = False

    def prepare(self, response: Response, length: int | None, close: bool) -> None:
        status = response.status
        if not close and (length is not None or status in _NO_BODY_STATUS):
            head = _common_head(response, length, self._conn.config.server_name)
            if head is not None:           # the usual answer, in one pass
                self._head = head
                no_body = self._method == b"HEAD" or status in _NO_BODY_STATUS
                self._remaining = 0 if no_body else length
                return
        raw, reason = self._conn._head_fields(response, length, close)
        if not _headers_valid(raw):
            h11.Response(status_code=status, headers=raw, reason=reason)  # raises as h11 does
        no_body = status in _NO_BODY_STATUS
        self._chunked = length is None and not no_body
        if self._chunked:
            raw.append((b"Transfer-Encoding", b"chunked"))
        for name, value in raw:
            # h11 rewrites no Connection field for a keep-alive HTTP/1.1 request; a
            # "close" in one (ours, or the handler's) ends the connection after it
            if name.lower() == b"connection" and b"close" in [
                    t.strip() for t in value.lower().split(b",")]:
                self.close = True
        if self._method == b"HEAD" or no_body:
            self._chunked = False
            self._remaining = 0
        elif not self._chunked:
            self._remaining = length
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
        lines.extend(b"%s: %s\r\n" % f for f in raw if f[0].lower() == b"host")
        lines.extend(b"%s: %s\r\n" % f for f in raw if f[0].lower() != b"host")
        lines.append(b"\r\n")
        self._head = b"".join(lines)

    def start(self) -> bytes:
        return self._head

    def data(self, piece) -> list:
        n = memoryview(piece).nbytes
        if self._chunked:
            return [b"%x\r\n" % n, piece, b"\r\n"] if n else []
        self._remaining -= n
        if self._remaining < 0:
            raise h11.LocalProtocolError("Too much data for declared Content-Length")
        return [piece]

    def end(self) -> bytes:
        if self._chunked:
            return b"0\r\n\r\n"
        if self._remaining != 0:
            raise h11.LocalProtocolError("Too little data for declared Content-Length")
        return b""


# _common_head: response header names seen so far -> (bytes, kind); kinds: a plain
# field, a framing field (dropped), Server, Date, or one the general path handles
_FIELD, _DROP, _SERVER, _DATE, _OTHER = range(5)
_NAME_KINDS: dict[str, tuple[bytes, int]] = {}
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_FIELD_VALUE = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")   # h11's field-value
_REASONS: dict[int, bytes] = {}


def _name_kind(name: str) -> tuple[bytes, int]:
    kind = _NAME_KINDS.get(name)
    if kind is not None:
        return kind
    try:
        raw = name.encode("ascii")
    except UnicodeEncodeError:
        return b"", _OTHER
    lname = name.lower()
    if lname in _FRAMING:
        kind = (raw, _DROP)
    elif lname in ("host", "connection") or _TOKEN.fullmatch(raw) is None:
        kind = (raw, _OTHER)
    else:
        kind = (raw, _SERVER if lname == "server" else _DATE if lname == "date" else _FIELD)
    if len(_NAME_KINDS) < 1024:
        _NAME_KINDS[name] = kind
    return kind


def _common_head(response: Response, length: int | None, server_name: str | None) -> bytes | None:
    """The head h11 would write for ``response`` on a keep-alive HTTP/1.1 cycle,
    built in one pass (names checked once per process, values with h11's
    field-value expression), for the usual answer: a known length (or none
    needed), no Host or Connection field, nothing to reject.  None otherwise:
    the general path (``_PlainFramer.prepare``) builds it, or raises as h11 does."""
    status = response.status
    reason = _REASONS.get(status)
    if reason is None:
        reason = _REASONS[status] = reason_phrase(status).encode("ascii")
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    has_server = has_date = False
    for name, value in response.headers:
        raw, kind = _name_kind(name)
        if kind == _DROP:
            continue
        if kind == _OTHER:
            return None
        if kind == _SERVER:
            has_server = True
        elif kind == _DATE:
            has_date = True
        try:
            v = value.encode("latin-1")
        except UnicodeEncodeError:
            return None
        if _FIELD_VALUE.fullmatch(v) is None:
            return None
        parts.append(b"%s: %s\r\n" % (raw, v))
    if length is not None and status not in _NO_BODY_STATUS:
        parts.append(b"content-length: %d\r\n" % length)
    if not has_server and server_name:
        parts.append(b"server: %s\r\n" % server_name.encode("latin-1"))
    if not has_date:
        parts.append(b"date: %s\r\n" % _http_date())
    parts.append(b"\r\n")
    return b"".join(parts)


_BAD_NAME_CHAR = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9A-Za-z\n]")
_BAD_VALUE_CHAR = re.compile(rb"[\x00\r\x0b\x0c]")
_EDGE_WS = (b" ", b"\t")


def _headers_valid(raw: list[tuple[bytes, bytes]]) -> bool:
    """True when every name is an RFC 9110 token and every value a field value
    without surrounding whitespace (h11's rules).  The names (values) are
    joined by newlines, which neither may contain, and checked with one
    character-class scan plus a few substring searches, all in C: the
    per-header checks were a noticeable part of a small request's cost."""
    if not raw:
        return True
    seps = len(raw) - 1
    names = b"\n".join([n for n, _ in raw])
    values = b"\n".join([v for _, v in raw])
    if names.count(b"\n") != seps or values.count(b"\n") != seps:
        return False
    if (not names or names[:1] == b"\n" or names[-1:] == b"\n" or b"\n\n" in names
            or _BAD_NAME_CHAR.search(names) is not None):
        return False          # an empty name, or a character outside a token
    if values[:1] in _EDGE_WS or values[-1:] in _EDGE_WS:
        return False
    return not (b"\n " in values or b"\n\t" in values or b" \n" in values or b"\t\n" in values
                or _BAD_VALUE_CHAR.search(values) is not None)


def _header_content_length(headers: list[tuple[str, str]]) -> int | None:
    """A Content-Length the handler put in ``headers`` (used when
    ``Response.content_length`` is None)."""
    for name, value in headers:
        if name.lower() == "content-length":
            try:
                length = int(value)
            except ValueError:
                return None
            return length if length >= 0 else None
    return None


async def _first_piece(iterator: AsyncIterator[Any]) -> Any:
    """First non-empty piece, or None if the iterator is exhausted."""
    while True:
        try:
            piece = await iterator.__anext__()
        except StopAsyncIteration:
            return None
        if len(piece):
            return piece


async def _aclose_iterable(iterable: Any) -> None:
    aclose = getattr(iterable, "aclose", None)
    if aclose is None:
        return
    with trio.move_on_after(5) as scope:
        scope.shield = True
        try:
            await aclose()
        except Exception:
            log.exception("closing the response body failed")


def _find_http_error(exc: BaseException) -> HttpError | None:
    """The HttpError in ``exc``, looking inside exception groups."""
    if isinstance(exc, HttpError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find_http_error(inner)
            if found is not None:
                return found
    return None
