"""Wiring: data folder -> metadata + chunk store -> S3 service -> HTTP server.

``App`` owns the long-lived parts of one gateway process: the SQLite metadata
store, the local chunk store, the capacity limiter that caps worker threads
(hashing, chunking, disk), the S3 service, and the operators' endpoints
(``observe``: ``/_s3gw/healthz``, ``readyz``, ``metrics``) whose ``handle`` is the
HTTP server's handler (S3 behind them); the metrics count every exchange as the
server's ``observer``.  ``run_server`` serves until cancelled (SIGINT/SIGTERM in
``s3gw serve``) and closes everything on the way out.

The web console (``s3gw.console``), when configured, is a second listener
under the same nursery with its own handler, its own worker-thread limiter
and its own pipeline-store connection: nothing it does waits on the S3
limiter.

The pipeline store follows the metadata store (``pps.backends``): the folder's
``pps.sqlite``, or the PostgreSQL database every gateway of it shares.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import trio

from .console import DEFAULT_CONSOLE_PORT, Console
from .http import ServerConfig, serve, serve_listeners
from .observe.endpoints import OpsEndpoints
from .observe.health import Readiness
from .observe.metrics import Metrics
from .http.connection import new_request_id
from .http.drain import Drain
from .http.server import on_idle
from .ingest.pipeline import trim_spares
from .pfs.backends import describe as describe_meta
from .pfs.backends import is_postgres_url, open_auth_store, open_metadata, remember, remembered
from .pps.backends import open_pps_store
from .pps.jobs import JobView
from .pps.runner import Runner
from .s3.service import AUTH_RECHECK, S3Service
from .store.backends import open_chunk_store
from .store.manifest import INLINE_MAX

__all__ = ["App", "AppConfig", "run_server", "DEFAULT_PORT", "DataFolderBusy", "lock_data_folder",
           "DEFAULT_CONSOLE", "parse_console_address", "wait_for_orphans"]

DEFAULT_PORT = 30600
DRAIN_GRACE = 20.0    # seconds a stopping worker gives its exchanges in progress
PIPELINES_REFRESH = 0.2   # seconds between re-reads of the pipelines' output repos
DEFAULT_CONSOLE = f"127.0.0.1:{DEFAULT_CONSOLE_PORT}"
log = logging.getLogger("s3gw")


@dataclass
class AppConfig:
    data_dir: str = "s3gw-data"
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    region: str = "us-east-1"
    domain: str | None = None
    fsync: bool = True
    worker_threads: int = 8
    direct_writes: bool = False    # chunk files written with O_DIRECT (see LocalChunkStore)
    upload_expiry: float = 7 * 86400   # seconds an unfinished multipart upload lives; 0: forever
    inline_object_max: int = INLINE_MAX  # PUT bodies up to this size live in the metadata
    max_jobs: int = 2                  # pipeline jobs running at once
    job_host: str = "127.0.0.1"        # where each job's own S3 endpoint listens
    pipelines: bool = True             # run the pipeline job runner
    console: str | None = None         # "host:port" of the web console; None: off
    metrics_token: str | None = None   # with auth on: bearer token opening /_s3gw/metrics to all
    chunks: str | None = None          # s3:// URL of an object store for the chunks (store.backends)
    body_min_rate: float = 1024.0      # bytes/s a request body must average (ServerConfig)
    body_rate_grace: float = 20.0      # seconds before the minimum rate applies
    # the metadata store: None, the data folder's SQLite file; or a postgresql:// URL,
    # whose gateways share the data folder's chunks (see docs/backends.md)
    meta: str | None = None
    # `s3gw serve --workers N` (cli/workers.py): this process is worker ``worker`` of a
    # supervisor that bound ``listen_fds`` and holds the folder's lock; None: on its own
    worker: int | None = None
    listen_fds: tuple[int, ...] = ()

    @property
    def shared_folder(self) -> bool:
        """Several gateways serve this data folder on purpose (metadata in PostgreSQL)."""
        return is_postgres_url(self.meta)

    @property
    def several_processes(self) -> bool:
        """Other processes may serve this folder beside this one: gateways of one
        PostgreSQL database, or the workers of one supervisor."""
        return self.shared_folder or self.worker is not None


class DataFolderBusy(Exception):
    """Another ``s3gw serve`` holds the data folder's lock."""


def lock_data_folder(data_dir: str, *, shared: bool = False):
    """Take the data folder's serve lock (``<data>/serve.lock``, an exclusive
    ``flock`` held for the life of the process; the kernel drops it when the
    process dies, however it dies).  Returns the open lock file.

    ``shared``: a gateway whose metadata is in PostgreSQL shares the folder's chunks
    with the other gateways of that database on purpose: it takes the lock shared,
    so they all run, while a SQLite server (exclusive) and they exclude each other.

    Raises:
        DataFolderBusy: another process holds it (its pid in the message).
    """
    import fcntl
    path = os.path.join(data_dir, "serve.lock")
    f = open(path, "a+")
    try:
        fcntl.flock(f, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        if shared:
            raise DataFolderBusy(f"an s3gw serve with SQLite metadata (pid {holder}) is "
                                 f"serving {os.path.abspath(data_dir)}") from None
        raise DataFolderBusy(f"another s3gw serve (pid {holder}) is serving "
                             f"{os.path.abspath(data_dir)}") from None
    if shared:
        return f
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def wait_for_orphans(data_dir: str, timeout: float = 3.0) -> None:
    """A SQLite folder whose lock is held but whose recorded holder (the pid in
    ``serve.lock``) is dead: held by the workers of a killed ``--workers``
    supervisor, which the kernel is killing (``PR_SET_PDEATHSIG``).  Wait up to
    ``timeout`` seconds for them to let go of the lock and the port, so a server
    started right after the kill does not fail for a few milliseconds' race."""
    import fcntl
    try:
        f = open(os.path.join(data_dir, "serve.lock"))
    except OSError:
        return
    with f:
        try:
            pid = int(f.read().strip() or 0)
        except ValueError:
            return
        if pid <= 0 or os.path.exists(f"/proc/{pid}"):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                time.sleep(0.02)
                continue
            return                 # closing the file lets go of it


class App:
    def __init__(self, config: AppConfig):
        self.config = config
        os.makedirs(config.data_dir, exist_ok=True)
        self.meta = open_metadata(config.data_dir, config.meta, durable=config.fsync)
        # a shared folder's temp files may be another gateway's uploads in flight: only
        # those older than an hour are a crash's leftovers
        self.store = open_chunk_store(config.data_dir, config.chunks, fsync=config.fsync,
                                      direct_writes=config.direct_writes,
                                      tmp_grace_s=3600.0 if config.several_processes else 0.0)
        _ = self.meta.uploads  # create the multipart staging tables now
        # off until `s3gw auth enable`; in the metadata's database when that is PostgreSQL
        try:
            self.auth = open_auth_store(config.data_dir, config.meta, watch=True,
                                        check_local=True)
        except BaseException:
            self.meta.close()
            self.store.close()
            raise
        self.pps = open_pps_store(config.data_dir, config.meta)
        self.limiter = trio.CapacityLimiter(config.worker_threads)
        self.s3 = S3Service(self.meta, self.store, region=config.region, domain=config.domain,
                            limiter=self.limiter, auth=self.auth,
                            inline_object_max=config.inline_object_max,
                            output_repos=self.pps.output_repos)
        self.metrics = Metrics(self.meta, self.store, self.pps)
        self.handle = OpsEndpoints(
            self.s3.handle, self.metrics, Readiness(self.meta, getattr(self.store, "chunk_root", None)),
            auth_enabled=lambda: self.auth.snapshot(max_age=AUTH_RECHECK).enabled,
            metrics_token=config.metrics_token, domain=config.domain).handle
        self.runner = Runner(self.meta, self.store, self.pps, self,
                             os.path.join(config.data_dir, "pps", "jobs"),
                             max_jobs=config.max_jobs, region=config.region,
                             limiter=trio.CapacityLimiter(4))
        # a supervisor's worker stops gracefully: its exchanges in progress finish
        self.drain = Drain() if config.worker is not None else None
        self.console = None
        if config.console:
            self.console_pps = open_pps_store(config.data_dir, config.meta)  # its own connection
            self.console = Console(self.meta, self.store, self.console_pps, self.auth,
                                   config.data_dir)

    def close(self) -> None:
        self.meta.close()
        self.auth.close()
        self.pps.close()
        if self.console is not None:
            self.console_pps.close()
        self.store.close()

    @asynccontextmanager
    async def open_view(self, view: JobView):
        """Serve one pipeline job's view on a listener of its own (``pps.runner.Gateway``);
        yields its endpoint URL.  The listener closes when the block ends."""
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(
                serve, partial(self.s3.handle_view, view), self.config.job_host, 0,
                config=ServerConfig(), error_response=self.s3.http_error_response))
            host, port = listeners[0].socket.getsockname()[:2]
            try:
                yield f"http://{host}:{port}"
            finally:
                nursery.cancel_scope.cancel()

    async def serve(self, listeners=None, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve S3 on ``listeners`` (default: bind ``host:port`` now)."""
        config = ServerConfig(observer=self.metrics.requests,
                              body_min_rate=self.config.body_min_rate,
                              body_rate_grace=self.config.body_rate_grace, drain=self.drain)
        on_idle(trim_spares)          # idle: the upload spares go back too (http.server)
        if listeners is None:
            await serve(self.handle, self.config.host, self.config.port,
                        config=config, error_response=self.s3.http_error_response,
                        task_status=task_status)
        else:
            await serve_listeners(self.handle, listeners, config=config,
                                  error_response=self.s3.http_error_response,
                                  task_status=task_status)

    async def serve_console(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """The web console's listener (``config.console``); its handler answers its own
        errors, so the server's error responses are plain text."""
        host, port = parse_console_address(self.config.console)
        await serve(self.console.handle, host, port, config=ServerConfig(tune_malloc=False),
                    error_response=_console_error, task_status=task_status)

    async def watch_pipelines(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Re-read the pipelines' output repos every ``PIPELINES_REFRESH`` seconds in a
        worker thread (``PipelineStore.refresh_outputs``): a store that cannot answer on
        the event loop (PostgreSQL) serves the S3 layer's ``output_repos`` from this."""
        task_status.started()
        while True:
            await trio.sleep(PIPELINES_REFRESH)
            try:
                await trio.to_thread.run_sync(self.pps.refresh_outputs, limiter=self.limiter)
            except Exception:  # noqa: BLE001 - the next refresh tries again
                log.exception("re-reading the pipelines failed")

    async def expire_uploads(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Abort multipart uploads older than ``upload_expiry``, periodically (runs
        under the server's nursery; their chunks become garbage for GC)."""
        expiry = self.config.upload_expiry
        task_status.started()
        if expiry <= 0:
            return
        interval = min(max(expiry / 10, 0.5), 3600.0)
        while True:
            cutoff = time.time_ns() - int(expiry * 1e9)
            expired = await trio.to_thread.run_sync(self.meta.uploads.expire, cutoff,
                                                    limiter=self.limiter)
            if expired:
                log.info("expired %d abandoned multipart upload(s)", len(expired))
            await trio.sleep(interval)


async def run_server(config: AppConfig) -> None:
    """Serve until SIGINT or SIGTERM, then stop cleanly.

    The data folder is created (if new) and locked before the port is bound, so a
    server whose port answers holds its folder; a port that cannot be bound releases
    the lock and removes a folder this call created, so it leaves nothing behind.

    Raises:
        OSError: the port cannot be bound.
        DataFolderBusy: another server has the data folder.
    """
    # signals first: a SIGTERM that arrives once the port accepts connections stops cleanly
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        if config.listen_fds:     # a supervisor's worker: it bound the port, holds the lock
            listeners = [trio.SocketListener(trio.socket.from_stdlib_socket(
                socket.socket(fileno=os.dup(fd)))) for fd in config.listen_fds]
            await _serve_app(config, listeners, signals)
            return
        if not is_postgres_url(config.meta or remembered(config.data_dir)):
            wait_for_orphans(config.data_dir)
        created = not os.path.exists(config.data_dir)
        os.makedirs(config.data_dir, exist_ok=True)
        lock = None
        try:
            config.meta = config.meta or remembered(config.data_dir)
            lock = lock_data_folder(config.data_dir, shared=config.shared_folder)
            listeners = await trio.open_tcp_listeners(config.port, host=config.host)
        except BaseException:
            if lock is not None:
                lock.close()
            if created:
                shutil.rmtree(config.data_dir, ignore_errors=True)
            raise
        try:
            if config.shared_folder:
                remember(config.data_dir, config.meta)
            await _serve_app(config, listeners, signals)
        finally:
            lock.close()


async def _serve_app(config: AppConfig, listeners, signals) -> None:
    app = App(config)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(app.serve, listeners)
            if config.worker in (None, 0):    # one expirer per folder's supervisor
                await nursery.start(app.expire_uploads)
            await nursery.start(app.watch_pipelines)
            # a stopping worker gives up the pipelines (leadership included) before
            # it drains: another worker takes them over, not a stopping one
            pipelines = trio.CancelScope()
            if config.pipelines and config.several_processes:
                nursery.start_soon(_in_scope, pipelines, _run_pipelines_when_leader, app)
            elif config.pipelines:
                await nursery.start(app.runner.run)
            if config.worker is not None:
                log.info("worker %d (pid %d, request ids %s...) serving", config.worker,
                         os.getpid(), new_request_id()[:8])
            log.info("s3gw listening on http://%s:%d (data: %s, metadata: %s, chunks: %s)",
                     config.host, config.port, os.path.abspath(config.data_dir),
                     describe_meta(config.data_dir, config.meta), app.store.root)
            if app.console is not None:
                try:
                    console = await nursery.start(app.serve_console)
                except OSError as exc:    # the S3 port serves on; the console is extra
                    log.warning("console not started on %s: %s (use --console "
                                "host:port, or --console off)", config.console,
                                exc.strerror or exc)
                else:
                    host, port = console[0].socket.getsockname()[:2]
                    log.info("console on http://%s:%d", host, port)
            async for signum in signals:
                log.info("received %s, stopping", signal.Signals(signum).name)
                if app.drain is not None:
                    pipelines.cancel()
                    app.drain.start()
                    if not await app.drain.wait(DRAIN_GRACE):
                        log.warning("%d connection(s) still busy after %.0f s: cancelled",
                                    app.drain.connections, DRAIN_GRACE)
                nursery.cancel_scope.cancel()
                break
    finally:
        app.close()


async def _in_scope(scope: trio.CancelScope, fn, *args) -> None:
    with scope:
        await fn(*args)


def parse_console_address(text: str) -> tuple[str, int]:
    """``host:port``, ``:port``, ``port`` or ``host`` (port 30601) -> (host, port).

    Raises:
        ValueError: not an address.
    """
    text = text.strip()
    if text.startswith("[") and "]" in text:            # [::1]:30601
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":") or str(DEFAULT_CONSOLE_PORT)
    elif text.isdigit():
        host, port = "127.0.0.1", text
    elif text.count(":") == 1:
        host, port = text.split(":")
        host = host or "127.0.0.1"
    else:
        host, port = text, str(DEFAULT_CONSOLE_PORT)
    if not port.isdigit() or not 0 <= int(port) < 65536 or not host:
        raise ValueError(f"not a console address: {text!r} (host:port, or off)")
    return host, int(port)


def _console_error(status: int, reason: str = ""):
    from .http import Response
    return Response(status, [("content-type", "text/plain; charset=utf-8")],
                    f"{status} {reason}\n".encode())


async def _run_pipelines_when_leader(app: App, poll: float = 2.0, check: float = 1.0) -> None:
    """Gateways of one PostgreSQL database (or the workers of one supervisor): one runs
    the pipeline jobs, the one holding the pipeline store's runner lock (an advisory lock
    of the database, or ``<data>/pps/runner.lock``); the others try again every
    ``poll`` seconds and take over when it dies (``Runner.run`` then settles the jobs it
    left).  The holder asks its lock every ``check`` seconds: a lock lost while the
    process lives (its database session ended) stops its jobs at once."""
    lock = app.pps.runner_lock()
    try:
        while True:
            while not await trio.to_thread.run_sync(lock.try_acquire):
                await trio.sleep(poll)
            log.info("this gateway runs the pipeline jobs")
            async with trio.open_nursery() as nursery:
                await nursery.start(app.runner.run)
                while await _still_held(lock):
                    await trio.sleep(check)
                log.warning("this gateway lost the pipeline runner's lock (its database "
                            "session ended): its jobs stop; a runner is elected again")
                nursery.cancel_scope.cancel()
            lock.release()
    finally:
        lock.release()


async def _still_held(lock, timeout: float = 10.0) -> bool:
    with trio.move_on_after(timeout):      # no answer within it: as good as lost
        return await trio.to_thread.run_sync(lock.held, abandon_on_cancel=True)
    return False
