"""The access log: one line per request, on the ``s3gw.access`` logger.

Theory of operation
-------------------
Every exchange ends with ``record(method, path, status, nbytes, ms, rid,
remote, nbytes_in, notes)`` (``nbytes``: response body bytes sent;
``nbytes_in``: request body bytes read; ``notes``: the handler's
``Request.notes`` or ``None``).  By default that is a plain ``logging`` call,
so the lines reach whatever handlers the embedding program (or pytest's
``caplog``) set up.

``s3gw serve`` installs a ``BatchedAccessLog`` instead.  A ``logging`` call
costs about 35 µs of Python per request (the LogRecord, the caller lookup,
the queue hand-off, then the formatter in the writer thread), and all of it
holds the GIL the event loop needs: on 4 KiB GETs that was a sixth of the
server's CPU.  The batched log appends a tuple to a list on the event loop
and a writer thread turns the list into text a few times a second, with the
same layout as the server's other log lines
(``%(asctime)s %(levelname)s %(name)s %(message)s``) and under the same
handler lock, so lines never mix.  It honours the ``s3gw.access`` level.
Lines may reach the stream up to ``interval`` late, and a crash loses at most
that much of the log; past ``max_pending`` unwritten lines, lines are dropped
rather than memory grown, and their count is logged at the stop.

Two layouts (``BatchedAccessLog(fmt=...)``):

* ``text`` (the default): ``<time> INFO s3gw.access METHOD PATH STATUS BYTES_OUT
  MSms REQUEST_ID PEER``, as it always was;
* ``json``: one JSON object per line, for log shippers and ``jq``: ``time`` (ISO
  8601 UTC), ``method``, ``path`` (raw, percent-encoded, no query string: a
  presigned URL's signature is never logged), ``status``, ``bytes_in``,
  ``bytes_out``, ``duration_ms``, ``request_id``, ``remote``, and every
  ``notes`` entry the handler set (the S3 service sets ``operation``,
  ``bucket``, ``key`` (decoded) and, for an error, ``error``, the S3 error code).
  Absent values are ``null``.  The JSON is made in the writer thread, not on
  the event loop.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
import time
from collections import deque
from typing import Any, Callable

__all__ = ["BatchedAccessLog", "FORMATS", "format_remote", "install", "record"]

FORMATS = ("text", "json")

logger = logging.getLogger("s3gw.access")


def format_remote(remote: Any) -> str:
    if isinstance(remote, tuple) and len(remote) >= 2:
        return f"{remote[0]}:{remote[1]}"
    return "-" if remote is None else str(remote)


def _to_logging(method: str, path: str, status: int, nbytes: int, ms: float, rid: str,
                remote: Any, nbytes_in: int = 0, notes: dict | None = None) -> None:
    logger.info("%s %s %d %d %.1fms %s %s", method, path, status, nbytes, ms, rid,
                format_remote(remote))


# The connection calls ``accesslog.record``; ``install`` swaps it.
record: Callable[..., None] = _to_logging


def install(sink: Callable[..., None] | None) -> None:
    """Send access lines to ``sink`` (None: back to plain ``logging``)."""
    global record
    record = _to_logging if sink is None else sink


class BatchedAccessLog:
    """Access lines written by a thread of its own, in batches, to ``handler``'s stream."""

    def __init__(self, handler: logging.StreamHandler, interval: float = 0.2,
                 max_pending: int = 10_000, fmt: str = "text") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"access log format {fmt!r}: one of {', '.join(FORMATS)}")
        self.handler = handler
        self._line = self._text_line if fmt == "text" else self._json_line
        self.interval = interval
        self.max_pending = max_pending
        self.dropped = 0
        self._pending: deque[tuple] = deque()
        self._stop = threading.Event()
        self._second = -1
        self._stamp = ""
        self._thread = threading.Thread(target=self._run, name="s3gw-access-log", daemon=True)

    def start(self) -> BatchedAccessLog:
        self._thread.start()
        return self

    def __call__(self, method: str, path: str, status: int, nbytes: int, ms: float, rid: str,
                 remote: Any, nbytes_in: int = 0, notes: dict | None = None) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
            return
        self._pending.append((time.time(), method, path, status, nbytes, ms, rid, remote,
                              nbytes_in, notes))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        """Write out every pending line (the writer thread, or ``close``)."""
        # Each append and popleft is atomic under the GIL: a line appended while
        # this runs is taken now or by the next flush, never lost.
        pending = self._pending
        if not pending:
            return
        take = pending.popleft
        text = "".join([self._line(*take()) for _ in range(len(pending))])
        stream = self.handler.stream
        with self.handler.lock:
            try:
                stream.write(text)
                stream.flush()
            except (OSError, ValueError):  # a closed or broken stream: nothing to do
                pass

    def _text_line(self, created: float, method: str, path: str, status: int, nbytes: int,
                   ms: float, rid: str, remote: Any, nbytes_in: int, notes: dict | None) -> str:
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        msec = int((created - second) * 1000)
        return (f"{self._stamp},{msec:03d} INFO s3gw.access {method} {path} {status} {nbytes} "
                f"{ms:.1f}ms {rid} {format_remote(remote)}\n")

    @staticmethod
    def _json_line(created: float, method: str, path: str, status: int, nbytes: int,
                   ms: float, rid: str, remote: Any, nbytes_in: int, notes: dict | None) -> str:
        when = datetime.datetime.fromtimestamp(created, datetime.timezone.utc)
        doc = {"time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
               "method": method, "path": path, "status": status, "bytes_in": nbytes_in,
               "bytes_out": nbytes, "duration_ms": round(ms, 3), "request_id": rid,
               "remote": None if remote is None else format_remote(remote),
               "operation": None, "bucket": None, "key": None}
        if notes:
            doc.update(notes)
        return json.dumps(doc, separators=(",", ":")) + "\n"

    def close(self) -> None:
        """Stop the thread, write what is still pending and how many lines were dropped."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.flush()
        if self.dropped:
            logger.warning("%d access log lines were dropped (more than %d waiting)",
                           self.dropped, self.max_pending)
