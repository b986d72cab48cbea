"""Server tunables, one frozen dataclass.

Theory of operation
-------------------
Every limit the server enforces lives here, so tests can shrink them and the
app can load them from its configuration.  Timeouts are seconds of trio time
(``autojump_clock`` in tests), each applied as a trio cancel scope around one
phase of a connection:

* ``header_timeout``: from accepting the connection (or from the first byte of
  a later request) until the whole request head has arrived;
* ``keepalive_timeout``: idle time between a response and the first byte of
  the next request;
* ``body_timeout``: longest wait for any body bytes during one read (and the
  overall bound on draining an unread body);
* ``body_min_rate`` / ``body_rate_grace``: a minimum average body rate, so a
  body trickling in (1 byte/s) cannot hold a connection and its buffers forever;
* ``send_timeout``: longest time one ``send_all`` may block;
* ``close_linger``: after answering a request whose body we did not read, how
  long to keep discarding input before closing, so the client reads the
  answer instead of a reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ServerConfig"]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Limits and timeouts of the HTTP server (sizes in bytes, times in seconds)."""

    receive_size: int = 256 * 1024
    """Bytes asked of one ``stream.receive_some``; smaller reads are much slower."""
    max_header_bytes: int = 64 * 1024
    """h11 ``max_incomplete_event_size``: a longer request head gets 431."""
    header_timeout: float = 30.0
    keepalive_timeout: float = 75.0
    body_timeout: float = 60.0
    body_min_rate: float = 1024.0
    """Slowest average body rate tolerated (bytes/s; 0: no minimum): a body must
    have delivered ``body_min_rate * (t - body_rate_grace)`` bytes t seconds after
    its first read (Apache ``mod_reqtimeout``'s MinRate), else ``BodyTimeout``
    (S3 ``RequestTimeout``).  A client sending 1 byte/s is dropped after about
    ``body_rate_grace`` seconds instead of holding its buffers forever."""
    body_rate_grace: float = 20.0
    send_timeout: float = 60.0
    close_linger: float = 2.0
    drain_limit: int = 1024 * 1024
    """Unread body bytes the server discards to keep a connection alive."""
    coalesce_limit: int = 64 * 1024
    """Response pieces smaller than this are joined with their neighbours
    (head, chunk framing) into one send; larger ones are sent as they are."""
    server_name: str | None = "s3gw"
    """Value of the ``Server`` header (``None``: send none)."""
    cleanup_timeout: float = 5.0
    """Bound on the shielded teardown of a connection."""
    idle_trim: float = 5.0
    """Seconds without a new request after which the server returns free memory
    to the OS (``server.return_memory``: idle hooks, then ``malloc_trim``); 0: never."""
    tune_malloc: bool = True
    """Let ``serve``/``serve_listeners`` pin glibc's malloc thresholds (see
    ``server.tune_malloc``); process-wide."""
    observer: Any = None
    """``None``, or an object told of every connection and exchange, on the event
    loop (keep it cheap, never block, never raise): ``connection_opened()``,
    ``connection_closed()``, and ``exchange_done(notes, status, bytes_in, bytes_out,
    ms)`` when an exchange ends (``notes``: the handler's ``Request.notes``, ``None``
    for a request the server refused itself; bytes are body bytes; ``ms`` from the
    complete head to the last byte sent).  The app's metrics are one."""

    drain: Any = None
    """``None``, or a ``drain.Drain``: how a graceful stop reaches the accept loops
    and the connections (see there)."""

    fast_heads: bool = True
    """Serve a plain HTTP/1.1 request that arrived whole (no Transfer-Encoding,
    Expect or Connection header; see ``fasthead``) without h11's state machine,
    framing its answer the way h11 does.  False: every request goes through h11."""

    def __post_init__(self) -> None:
        if self.receive_size < 1 or self.max_header_bytes < 1 or self.drain_limit < 0:
            raise ValueError("receive_size and max_header_bytes must be positive")
