"""A request body the handler pulls from the socket, one piece at a time.

Theory of operation
-------------------
A ``Body`` shares its connection's ``h11.Connection`` and stream.  Nothing is
read ahead: each ``receive_some`` first serves what h11 has already buffered
(``conn.next_event()`` -> ``Data``), and only when h11 says ``NEED_DATA`` does
it perform one ``stream.receive_some(receive_size)`` and feed the bytes to
h11.  So the socket is read only when the consumer asks (back-pressure reaches
the client through TCP flow control) and no body is ever held whole.

Memory per request: one socket read (``receive_size``, 256 KiB by default)
plus what h11 keeps buffered (at most one read plus a partial chunk header)
plus the piece the consumer is holding.  A ``Data`` larger than the caller's
``max_bytes`` is kept as a memoryview and handed out in slices.

Socket reads go through a ``Feeder``: on a ``trio.SocketStream`` it reads
into one preallocated ``receive_size`` buffer (per connection) and feeds a
memoryview of it to h11, which copies it into its own buffer; this saves one
large allocation per read (measured 2.4 -> 3.7 GB/s on a 2 GiB PUT), and it
enters a timeout scope only when it has to wait (see ``Feeder``).  Other streams
(the ``trio.testing`` ones) use ``receive_some``.

``receive_into(buffer)`` fills a caller's buffer instead; for a
Content-Length body on a socket it reads the socket straight into that
buffer once h11's buffered bytes are handed out (one kernel copy; h11's
receive buffer and the piece objects are skipped) and lowers h11's count of
remaining body bytes so the keep-alive cycle goes on unchanged.  Measured on
a 1 GiB PUT through s3gw: the trio thread's CPU fell from about 1.1 to 0.3
s/GB.

Pieces are returned as h11 hands them out: fresh ``bytearray`` objects that
nobody else references (h11 slices them off its receive buffer).  They are
bytes-like and compare equal to ``bytes``; converting every 256 KiB piece to
``bytes`` would cost one more full copy of the stream (measured: see
``bench/http_raw.py``).  Callers needing an immutable, hashable value call
``bytes(piece)``.

100-continue: h11 tracks whether the client waits for ``100 Continue`` but
never sends it.  The first ``receive_some`` sends it (through the connection's
send function, which applies the send timeout), so a handler that rejects a
request without reading leaves the client unstarted and the server closes the
connection afterwards (h11 cannot start a new cycle while the client still
owes a body).

Rules
-----
* One reader at a time (``trio.BusyResourceError`` otherwise).
* Each socket read is bounded by ``body_timeout`` -> ``BodyTimeout``, and the
  whole body by a minimum average rate (``body_min_rate`` after
  ``body_rate_grace`` seconds) -> ``BodyTimeout`` too.
* EOF, reset or a failed send -> ``ClientDisconnected``; invalid chunked
  framing -> ``MalformedBody``.  After an error the body is dead and every
  later call raises the same error.
* ``b""`` means the end; ``trailers`` is then filled from the chunked
  trailer section (empty for Content-Length bodies).

Cancellation: ``receive_some`` is a checkpoint; if cancelled while waiting for
the socket nothing has been consumed, and a later call resumes correctly.  If
cancelled while sending ``100 Continue`` the stream state is unknown and the
body is marked disconnected.
"""

from __future__ import annotations

import math
import mmap
import os
from typing import Awaitable, Callable, NoReturn

import h11
import trio

from .errors import BodyTimeout, ClientDisconnected, HttpError, MalformedBody
from .headers import Headers

__all__ = ["Body", "Feeder"]

def _content_length_reader():
    """h11's Content-Length body reader class, if it has the shape ``receive_into`` relies on."""
    try:
        from h11._readers import ContentLengthReader
    except ImportError:  # pragma: no cover - another h11
        return None
    probe = ContentLengthReader(1)
    if getattr(probe, "_remaining", None) != 1:  # pragma: no cover - another h11
        return None
    return ContentLengthReader


_ContentLengthReader = _content_length_reader()

_CONTINUE = h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
_EMPTY_HEADERS = Headers()

SendFunction = Callable[[bytes], Awaitable[None]]


class Feeder:
    """Moves bytes from a stream into an h11 connection, one read per call.

    On a ``trio.SocketStream`` it reads into one preallocated ``size`` buffer
    (the memory it costs) with the same try-then-wait scheme trio's own socket
    methods use: a checkpoint, a non-blocking ``readv`` on the socket's fd
    and, only if that would block, ``wait_readable`` under the timeout scope.
    A trio cancel scope costs about 8 us to enter and leave (trio 0.22, this
    machine) against ~60 us to move a 256 KiB read at 4 GB/s, so the scope
    is paid only when we actually have to wait.
    """

    __slots__ = ("_stream", "_conn", "_size", "_sock", "_fd", "_buf", "_view")

    def __init__(self, stream: trio.abc.ReceiveStream, conn: h11.Connection, size: int) -> None:
        self._stream = stream
        self._conn = conn
        self._size = size
        self._sock = stream.socket if isinstance(stream, trio.SocketStream) else None
        self._fd = self._sock.fileno() if self._sock is not None else -1
        # An anonymous mapping, not a bytearray: its pages become resident only as
        # reads fill them, so an idle keep-alive connection costs a page or two
        # instead of ``size`` bytes (500 idle connections held 125 MiB), and the
        # pages go back to the OS when the connection ends (no heap to trim).
        self._buf = mmap.mmap(-1, size) if self._sock is not None else None
        self._view = memoryview(self._buf) if self._buf is not None else None

    async def feed(self, timeout: float = math.inf) -> int | None:
        """Read once and give the bytes to h11; return how many (0: EOF, also
        given to h11; None: nothing arrived within ``timeout`` seconds).

        Raises:
            trio.BrokenResourceError: the connection broke (reset, ...).
            trio.ClosedResourceError: the stream was closed locally.
        """
        if self._sock is None:
            if timeout == math.inf:
                data = await self._stream.receive_some(self._size)
            else:
                data = None
                with trio.move_on_after(timeout):
                    data = await self._stream.receive_some(self._size)
                if data is None:
                    return None
            self._conn.receive_data(data)
            return len(data)
        n = await self._readv(self._view, timeout)
        if n is None:
            return None
        self._conn.receive_data(self._view[:n] if n else b"")
        return n

    async def read_bytes(self, timeout: float = math.inf) -> bytes | None:
        """Like ``feed``, but the bytes are returned and h11 does not see them
        (``fasthead``: the connection gives them to h11 only if it has to).
        ``b""``: EOF; None: nothing arrived within ``timeout`` seconds."""
        if self._sock is None:
            data = None
            with trio.move_on_after(timeout):
                data = await self._stream.receive_some(self._size)
            return None if data is None else bytes(data)
        n = await self._readv(self._view, timeout)
        if n is None:
            return None
        return bytes(self._view[:n])

    async def read_into(self, view: memoryview, timeout: float = math.inf) -> int | None:
        """Like ``feed``, but the bytes land in ``view`` and h11 never sees them
        (the caller accounts for them: see ``Body.receive_into``).  Only for a
        ``trio.SocketStream``."""
        return await self._readv(view, timeout)

    async def _readv(self, view: memoryview, timeout: float) -> int | None:
        """One non-blocking ``readv`` into ``view``, waiting (under ``timeout``)
        only if it would block; None when nothing arrived in time."""
        await trio.lowlevel.checkpoint()
        while True:
            if self._sock.fileno() == -1:
                raise trio.ClosedResourceError("socket already closed")
            try:
                return os.readv(self._fd, (view,))
            except BlockingIOError:
                pass
            except OSError as exc:
                raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc
            if timeout == math.inf:
                await trio.lowlevel.wait_readable(self._sock)
            else:
                with trio.move_on_after(timeout) as scope:
                    await trio.lowlevel.wait_readable(self._sock)
                if scope.cancelled_caught:
                    return None

    @property
    def socket(self):
        """The trio socket under the stream, or None (not a ``trio.SocketStream``)."""
        return self._sock

    @property
    def direct(self) -> bool:
        """True when ``read_into`` is available (a real socket)."""
        return self._sock is not None


class Body:
    """The body of one request.

    Attributes:
        length: the Content-Length, or ``None`` for a chunked body.
        trailers: ``Headers`` of the HTTP chunked trailer section, filled when
            the end has been received (empty before, and for fixed-length bodies).
        consumed: body bytes handed to the consumer (or discarded) so far.
        complete: ``True`` once the end of the body has been received.
    """

    __slots__ = (
        "length",
        "trailers",
        "consumed",
        "complete",
        "_conn",
        "_feeder",
        "_send",
        "_timeout",
        "_min_rate",
        "_rate_grace",
        "_started",
        "_pending",
        "_error",
        "_busy",
    )

    def __init__(
        self,
        conn: h11.Connection,
        feeder: Feeder,
        *,
        length: int | None,
        timeout: float,
        send: SendFunction,
        min_rate: float = 0.0,
        rate_grace: float = 20.0,
    ) -> None:
        self.length = length
        self.trailers = _EMPTY_HEADERS
        self.consumed = 0
        self.complete = False
        self._conn = conn
        self._feeder = feeder
        self._send = send
        self._timeout = timeout
        self._min_rate = min_rate
        self._rate_grace = rate_grace
        self._started: float | None = None
        self._pending: memoryview | None = None
        self._error: BaseException | None = None
        self._busy = False

    async def receive_some(self, max_bytes: int = 256 * 1024) -> bytes | bytearray:
        """Return the next 1..``max_bytes`` body bytes, or ``b""`` at the end.

        Sends ``100 Continue`` first if the client is waiting for it.

        Raises:
            ClientDisconnected: the peer went away before the end.
            BodyTimeout: no bytes arrived for ``body_timeout`` seconds.
            MalformedBody: invalid chunked framing.
            trio.BusyResourceError: another task is reading this body.
        """
        if max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        await self._check_usable()
        pending = self._pending
        if pending is not None:
            await trio.lowlevel.checkpoint()
            return self._take(pending, max_bytes)
        if self.complete:
            await trio.lowlevel.checkpoint()
            return b""
        self._busy = True
        try:
            if self._conn.they_are_waiting_for_100_continue:
                await self._send_continue()
            data = await self._next_data(io=True)
        finally:
            self._busy = False
        assert data is not None
        if len(data) > max_bytes:
            return self._take(memoryview(data), max_bytes)
        self.consumed += len(data)
        return data

    async def _check_usable(self) -> None:
        """Raise if another task is reading, or (after a checkpoint) the body's earlier error."""
        if self._busy:
            raise trio.BusyResourceError("another task is already reading this body")
        if self._error is not None:
            await trio.lowlevel.checkpoint()
            raise self._error

    async def receive_into(self, buffer) -> int:
        """Read the next 1..``len(buffer)`` body bytes into ``buffer``; return
        how many (0 at the end).  Same errors and 100-continue handling as
        ``receive_some``.

        A Content-Length body on a socket is read straight into ``buffer``
        once h11 has handed out what it had buffered: one kernel copy, no
        h11 buffer, no new objects (``receive_some`` copies each piece twice
        more and allocates it).  h11 is then told how many body bytes went
        past it by lowering its Content-Length reader's ``_remaining``, a
        private attribute of h11 (checked at import: if h11 changes shape,
        the bytes go through h11 as in ``receive_some``); when it reaches 0,
        h11 produces ``EndOfMessage`` as usual and keep-alive works unchanged.
        """
        view = memoryview(buffer)
        size = view.nbytes
        if size < 1:
            raise ValueError("buffer must not be empty")
        await self._check_usable()
        pending = self._pending
        if pending is not None:
            await trio.lowlevel.checkpoint()
            n = min(len(pending), size)
            view[:n] = pending[:n]
            rest = pending[n:]
            self._pending = rest if len(rest) else None
            self.consumed += n
            return n
        if self.complete:
            await trio.lowlevel.checkpoint()
            return 0
        self._busy = True
        try:
            if self._conn.they_are_waiting_for_100_continue:
                await self._send_continue()
            data = await self._next_data(io=False)
            if data is None:
                reader = self._direct_reader()
                if reader is not None:
                    return await self._read_direct(view, reader)
                data = await self._next_data(io=True)
        finally:
            self._busy = False
        assert data is not None
        n = len(data)
        if n > size:
            view[:] = memoryview(data)[:size]
            self._pending = memoryview(data)[size:]
            n = size
        elif n:
            view[:n] = data
        self.consumed += n
        return n

    def _direct_reader(self):
        """h11's reader of this body if it is a Content-Length one we may bypass, else None."""
        if _ContentLengthReader is None or not self._feeder.direct:
            return None
        reader = getattr(self._conn, "_reader", None)
        if type(reader) is not _ContentLengthReader:
            return None
        remaining = getattr(reader, "_remaining", None)
        if type(remaining) is not int or remaining <= 0:
            return None
        return reader

    async def _read_direct(self, view: memoryview, reader) -> int:
        remaining = reader._remaining
        if view.nbytes > remaining:
            view = view[:remaining]
        timeout = self._read_timeout()
        try:
            n = await self._feeder.read_into(view, timeout)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._fail(ClientDisconnected(f"connection lost mid-body: {exc!r}"))
        if n is None:
            self._timed_out(timeout)
        if not n:
            self._conn.receive_data(b"")  # EOF for h11 too
            self._fail(
                ClientDisconnected(
                    f"peer closed the connection mid-body after {self.consumed} bytes"
                )
            )
        reader._remaining = remaining - n
        self.consumed += n
        return n

    def _take(self, view: memoryview, max_bytes: int) -> bytes:
        piece = bytes(view[:max_bytes])
        rest = view[max_bytes:]
        self._pending = rest if len(rest) else None
        self.consumed += len(piece)
        return piece

    async def _send_continue(self) -> None:
        try:
            await self._send(self._conn.send(_CONTINUE))
        except ClientDisconnected as exc:
            self._error = exc
            raise
        except BaseException:
            # Cancelled mid-send: what reached the wire is unknown.
            self._error = ClientDisconnected("cancelled while sending 100 Continue")
            raise

    async def _next_data(self, *, io: bool) -> bytes | bytearray | None:
        """Next non-empty Data from h11, ``b""`` at the end, or ``None`` when
        more bytes are needed and ``io`` is false."""
        conn = self._conn
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._fail(MalformedBody(f"invalid request body framing: {exc}"))
            kind = type(event)
            if kind is h11.Data:
                data = event.data  # type: ignore[union-attr]
                if data:
                    return data
                continue
            if kind is h11.EndOfMessage:
                self.complete = True
                if event.headers:  # type: ignore[union-attr]
                    self.trailers = Headers.from_raw(event.headers)  # type: ignore[union-attr]
                return b""
            if event is h11.NEED_DATA:
                if not io:
                    return None
                await self._fill()
                continue
            self._fail(MalformedBody(f"unexpected event in request body: {event!r}"))

    async def _fill(self) -> None:
        """One socket read, bounded by the body timeout, fed to h11."""
        timeout = self._read_timeout()
        try:
            n = await self._feeder.feed(timeout)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._fail(ClientDisconnected(f"connection lost mid-body: {exc!r}"))
        if n is None:
            self._timed_out(timeout)
        if not n:
            self._fail(
                ClientDisconnected(
                    f"peer closed the connection mid-body after {self.consumed} bytes"
                )
            )

    def _read_timeout(self) -> float:
        """How long the next read may wait: ``body_timeout``, or less when the
        minimum rate's deadline (``body_rate_grace`` + bytes / ``body_min_rate``
        after the first read) comes first.  One clock read per socket read."""
        if not self._min_rate:
            return self._timeout
        now = trio.current_time()
        if self._started is None:
            self._started = now
        deadline = self._started + self._rate_grace + self.consumed / self._min_rate
        return min(self._timeout, max(deadline - now, 0.0))

    def _timed_out(self, timeout: float) -> NoReturn:
        if timeout < self._timeout:
            self._fail(BodyTimeout(f"body slower than {self._min_rate:g} bytes/s "
                                   f"({self.consumed} bytes received)"))
        self._fail(BodyTimeout(f"no body bytes for {self._timeout} s"))

    def _fail(self, error: HttpError) -> NoReturn:
        self._error = error
        raise error

    # -- used by the connection -------------------------------------------

    @property
    def failed(self) -> BaseException | None:
        """The error that killed this body, if any."""
        return self._error

    async def drain(self, limit: int, *, io: bool) -> bool:
        """Discard the rest of the body, reading at most ``limit`` more bytes.

        With ``io`` false, only what h11 already buffered is consumed.
        Returns True when the end was reached (the connection may be reused).
        Body errors are swallowed (returns False); cancellation propagates.
        """
        if self._error is not None:
            return False
        self._pending = None
        if self.complete:
            return True
        total = 0
        try:
            while True:
                data = await self._next_data(io=io)
                if data is None:
                    return False
                if not data:
                    return True
                total += len(data)
                self.consumed += len(data)
                if total > limit:
                    return False
        except HttpError:
            return False

    def detach(self) -> None:
        """Make later reads fail: the request/response cycle is over."""
        if self._error is None and not self.complete:
            self._error = trio.ClosedResourceError("the request is over; its body is gone")
        self._pending = None


class BufferedBody:
    """The body of a request that arrived whole with its head (``fasthead``): the
    same interface as ``Body``, served from memory.  Reads hand out the bytes
    (a fresh ``bytearray``, as h11 would) without touching the socket; there is
    nothing to time out, no 100-continue and no chunked framing."""

    __slots__ = ("length", "trailers", "consumed", "complete", "_data", "_error")

    def __init__(self, data: bytes) -> None:
        self.length = len(data)
        self.trailers = _EMPTY_HEADERS
        self.consumed = 0
        self.complete = not data
        self._data = memoryview(data) if data else None
        self._error: BaseException | None = None

    async def _pending(self) -> memoryview | None:
        """The bytes not handed out yet; None at the end (then complete), or the
        stored error raised."""
        if self._error is not None:
            await trio.lowlevel.checkpoint()
            raise self._error
        data = self._data
        if data is None:
            if self.complete:
                await trio.lowlevel.checkpoint()
            self.complete = True
        return data

    def _take(self, data: memoryview, n: int) -> memoryview:
        """Hand out the first ``n`` bytes of ``data`` (the pending bytes)."""
        rest = data[n:]
        self._data = rest if len(rest) else None
        piece = data[:n]
        self.consumed += len(piece)
        return piece

    async def receive_some(self, max_bytes: int = 256 * 1024) -> bytes | bytearray:
        """Like ``Body.receive_some``."""
        if max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        data = await self._pending()
        if data is None:
            return b""
        return bytearray(self._take(data, max_bytes))

    async def receive_into(self, buffer) -> int:
        """Like ``Body.receive_into``."""
        view = memoryview(buffer)
        size = view.nbytes
        if size < 1:
            raise ValueError("buffer must not be empty")
        data = await self._pending()
        if data is None:
            return 0
        n = min(len(data), size)
        view[:n] = self._take(data, n)
        return n

    @property
    def failed(self) -> BaseException | None:
        return self._error

    async def drain(self, limit: int, *, io: bool) -> bool:
        """Like ``Body.drain``: the rest is in memory, so this always reaches the end."""
        if self._error is not None:
            return False
        if self._data is not None:
            self.consumed += len(self._data)
            self._data = None
        self.complete = True
        return True

    def detach(self) -> None:
        if self._error is None and not self.complete:
            self._error = trio.ClosedResourceError("the request is over; its body is gone")
        self._data = None


class ContinueState:
    """What a ``Body`` needs of h11, for the body of a plain cycle whose client
    waits for ``100 Continue`` (``fasthead``: h11 stays idle): the events of a
    Content-Length body, the 100-continue flag, and ``leftover``, the bytes read
    past the body (the start of a pipelined request: the connection's next cycle
    takes them).  Sans-IO, like h11; ``ContinueFeeder`` feeds it.  The answers
    are h11's: ``send`` of the 100 gives h11's bytes and clears the flag, as the
    client's first body byte would."""

    __slots__ = ("they_are_waiting_for_100_continue", "leftover", "_remaining", "_buf")

    def __init__(self, length: int) -> None:
        self.they_are_waiting_for_100_continue = True
        self.leftover = b""
        self._remaining = length
        self._buf = b""

    def send(self, event) -> bytes:
        assert event is _CONTINUE
        self.they_are_waiting_for_100_continue = False
        return b"HTTP/1.1 100 Continue\r\n\r\n"

    def receive_data(self, data) -> None:
        if data:
            self._buf += data

    def next_event(self):
        buf = self._buf
        if self._remaining == 0:
            if buf:
                self.leftover, self._buf = bytes(buf), b""
            return _EOM
        if not buf:
            return h11.NEED_DATA
        self.they_are_waiting_for_100_continue = False
        n = min(len(buf), self._remaining)
        piece, self._buf = bytearray(buf[:n]), buf[n:]
        self._remaining -= n
        return h11.Data(data=piece)


class ContinueFeeder:
    """``Feeder.feed`` into a ``ContinueState`` instead of h11 (the connection's
    ``Feeder`` reads; no direct reads into the consumer's buffer)."""

    __slots__ = ("_feeder", "_state")
    direct = False

    def __init__(self, feeder: Feeder, state: ContinueState) -> None:
        self._feeder, self._state = feeder, state

    async def feed(self, timeout: float = math.inf) -> int | None:
        data = await self._feeder.read_bytes(timeout)
        if data is None:
            return None
        self._state.receive_data(data)
        return len(data)


_EOM = h11.EndOfMessage()
