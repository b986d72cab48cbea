"""Listening: accept TCP connections and serve each in the server's nursery.

Theory of operation
-------------------
``serve`` opens the listeners and hands them to ``serve_listeners``, which
runs ``trio.serve_listeners`` (it retries accept on EMFILE/ENFILE and friends)
with one nursery as the parent of every connection task.  Each connection runs
``serve_connection`` (see ``connection.py``), which never lets an exception
escape, so a misbehaving client or handler cannot cancel its siblings.
Cancelling the task running ``serve`` closes the listeners and every
connection (each in its own shielded, time-bounded cleanup).

``task_status.started`` receives the listeners, so callers binding port 0 can
read ``listeners[0].socket.getsockname()``.

Malloc: every body read makes h11 allocate a fresh ``receive_size`` piece.
With glibc's default (dynamic) thresholds such allocations are mmapped or
trimmed back to the OS over and over, and a 2 GiB PUT ran at 0.5 GB/s instead
of 3.7 GB/s (bench/http_raw.py).  ``serve_listeners`` therefore pins the
thresholds with ``tune_malloc()`` once per process unless
``ServerConfig.tune_malloc`` is false.  This is process-wide; the app may call
``tune_malloc`` itself (earlier, or with other values) instead.

Returning memory: the pinned trim threshold keeps up to 128 MiB of free heap,
and buffer pools keep warm buffers, so after a burst the process would keep
its peak RSS.  When no request has started for ``ServerConfig.idle_trim``
seconds, ``return_memory`` runs the app's idle hooks (``on_idle``: its pools
drop their spares), the cyclic GC and ``malloc_trim(0)``, once per idle period.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import platform
from typing import Sequence

import trio

from .config import ServerConfig
from .connection import REQUESTS, ErrorResponseFactory, Handler, serve_connection

_NO_SCOPE = contextlib.nullcontext()

__all__ = ["serve", "serve_listeners", "tune_malloc", "on_idle", "return_memory"]

log = logging.getLogger("s3gw.http")

_M_TRIM_THRESHOLD = -1  # <malloc.h>
_M_MMAP_THRESHOLD = -3
_malloc_tuned = False


def tune_malloc(mmap_threshold: int = 4 * 1024 * 1024, trim_threshold: int = 128 * 1024 * 1024) -> bool:
    """Pin glibc malloc's mmap and trim thresholds (process-wide).

    Allocations below ``mmap_threshold`` come from the heap and up to
    ``trim_threshold`` bytes of free heap are kept instead of being returned
    to the OS, so the 256 KiB pieces of a streamed body reuse warm memory.

    Returns:
        True if applied; False when not on glibc (nothing is changed).
    """
    global _malloc_tuned
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))
    _malloc_tuned = _malloc_tuned or ok
    log.debug("tune_malloc(mmap=%d, trim=%d): %s", mmap_threshold, trim_threshold, ok)
    return ok


_idle_hooks: list = []


def on_idle(fn) -> None:
    """Register ``fn()`` (trio thread, cheap) to run when the server goes idle."""
    if fn not in _idle_hooks:
        _idle_hooks.append(fn)


def _malloc_trim() -> bool:
    try:
        return bool(ctypes.CDLL(None).malloc_trim(0))
    except (OSError, AttributeError):   # pragma: no cover - not glibc
        return False


async def return_memory(interval: float) -> None:
    """Forever: after ``interval`` seconds without a new request, run the idle
    hooks and give free heap back to the OS (once per idle period)."""
    last, trimmed = -1, False
    while True:
        await trio.sleep(interval)
        if REQUESTS[0] != last:
            last, trimmed = REQUESTS[0], False
            continue
        if trimmed:
            continue
        for fn in list(_idle_hooks):
            try:
                fn()
            except Exception:  # noqa: BLE001 - a hook must not stop the server
                log.exception("idle hook %r failed", fn)
        # buffers held by reference cycles (a failed request's exception -> traceback ->
        # frames -> its 4 MiB upload block) wait for the cyclic GC, which an idle
        # process never triggers: collect, then trim
        gc.collect()
        await trio.to_thread.run_sync(_malloc_trim)
        trimmed = True


async def serve(
    handler: Handler,
    host: str | None,
    port: int,
    *,
    config: ServerConfig = ServerConfig(),
    error_response: ErrorResponseFactory | None = None,
    task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``host:port`` (port 0: any) and serve until cancelled.

    Args:
        handler: ``async (Request) -> Response``.
        host: address to bind (``None``: all interfaces).
        error_response: ``(status, reason) -> Response`` for the answers the
            server makes itself (400, 408, 431, 500).
        task_status: receives the list of ``trio.SocketListener``.
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    await serve_listeners(
        handler, listeners, config=config, error_response=error_response, task_status=task_status
    )


async def serve_listeners(
    handler: Handler,
    listeners: Sequence[trio.abc.Listener[trio.abc.Stream]],
    *,
    config: ServerConfig = ServerConfig(),
    error_response: ErrorResponseFactory | None = None,
    task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve on already-open listeners until cancelled (closes them at the end).

    Calls ``tune_malloc()`` first (once per process) when ``config.tune_malloc``.
    """
    if config.tune_malloc and not _malloc_tuned:
        tune_malloc()

    async def on_connection(stream: trio.abc.Stream) -> None:
        await serve_connection(stream, handler, config, error_response=error_response)

    async def accept(task_status) -> None:
        # a graceful stop (config.drain) ends the accept loops only
        with config.drain.accept_scope if config.drain is not None else _NO_SCOPE:
            await trio.serve_listeners(
                on_connection, list(listeners), handler_nursery=connections, task_status=task_status
            )

    async with trio.open_nursery() as connections:
        await connections.start(accept)
        if config.idle_trim > 0:
            connections.start_soon(return_memory, config.idle_trim)
        task_status.started(list(listeners))
