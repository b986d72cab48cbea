"""Wiring: data folder -> metadata + chunk store -> S3 service -> HTTP server.

``App`` owns the long-lived parts of one gateway process: the SQLite metadata
store, the local chunk store, the capacity limiter that caps worker threads
(hashing, chunking, disk), and the S3 service whose ``handle`` is the HTTP
server's handler.  ``run_server`` serves until cancelled (SIGINT/SIGTERM in
``s3gw serve``) and closes everything on the way out.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import trio

from .http import ServerConfig, serve, serve_listeners
from .pfs.auth import SqliteAuthStore
from .pfs.backends import describe as describe_meta
from .pfs.backends import is_postgres_url, open_metadata, remember, remembered
from .pps.jobs import JobView
from .pps.runner import Runner
from .pps.store import PpsStore
from .s3.service import S3Service
from .store.chunkstore import LocalChunkStore
from .store.manifest import INLINE_MAX

__all__ = ["App", "AppConfig", "run_server", "DEFAULT_PORT", "DataFolderBusy", "lock_data_folder"]

DEFAULT_PORT = 30600
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
    # the metadata store: None, the data folder's SQLite file; or a postgresql:// URL,
    # whose gateways share the data folder's chunks (see docs/backends.md)
    meta: str | None = None

    @property
    def shared_folder(self) -> bool:
        """Several gateways serve this data folder on purpose (metadata in PostgreSQL)."""
        return is_postgres_url(self.meta)


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


class App:
    def __init__(self, config: AppConfig):
        self.config = config
        os.makedirs(config.data_dir, exist_ok=True)
        self.meta = open_metadata(config.data_dir, config.meta, durable=config.fsync)
        # a shared folder's temp files may be another gateway's uploads in flight: only
        # those older than an hour are a crash's leftovers
        self.store = LocalChunkStore(config.data_dir, fsync=config.fsync,
                                     direct_writes=config.direct_writes,
                                     tmp_grace_s=3600.0 if config.shared_folder else 0.0)
        _ = self.meta.uploads  # create the multipart staging tables now
        self.auth = SqliteAuthStore(config.data_dir)   # off until `s3gw auth enable`
        self.pps = PpsStore(config.data_dir)
        self.limiter = trio.CapacityLimiter(config.worker_threads)
        self.s3 = S3Service(self.meta, self.store, region=config.region, domain=config.domain,
                            limiter=self.limiter, auth=self.auth,
                            inline_object_max=config.inline_object_max,
                            output_repos=self.pps.output_repos)
        self.runner = Runner(self.meta, self.store, self.pps, self,
                             os.path.join(config.data_dir, "pps", "jobs"),
                             max_jobs=config.max_jobs, region=config.region,
                             limiter=trio.CapacityLimiter(4))

    def close(self) -> None:
        self.meta.close()
        self.auth.close()
        self.pps.close()
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
        if listeners is None:
            await serve(self.s3.handle, self.config.host, self.config.port,
                        config=ServerConfig(), error_response=self.s3.http_error_response,
                        task_status=task_status)
        else:
            await serve_listeners(self.s3.handle, listeners, config=ServerConfig(),
                                  error_response=self.s3.http_error_response,
                                  task_status=task_status)


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

    The port is bound first, so a port in use fails before anything is created;
    then the data folder is created (if new) and locked.

    Raises:
        OSError: the port cannot be bound.
        DataFolderBusy: another server has the data folder.
    """
    # signals first: a SIGTERM that arrives once the port accepts connections stops cleanly
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        listeners = await trio.open_tcp_listeners(config.port, host=config.host)
        try:
            os.makedirs(config.data_dir, exist_ok=True)
            config.meta = config.meta or remembered(config.data_dir)
            lock = lock_data_folder(config.data_dir, shared=config.shared_folder)
            if config.shared_folder:
                remember(config.data_dir, config.meta)
        except BaseException:
            for listener in listeners:
                await listener.aclose()
            raise
        try:
            await _serve_app(config, listeners, signals)
        finally:
            lock.close()


async def _serve_app(config: AppConfig, listeners, signals) -> None:
    app = App(config)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(app.serve, listeners)
            await nursery.start(app.expire_uploads)
            if config.pipelines and config.shared_folder:
                nursery.start_soon(_run_pipelines_when_leader, app)
            elif config.pipelines:
                await nursery.start(app.runner.run)
            log.info("s3gw listening on http://%s:%d (data: %s, metadata: %s)", config.host,
                     config.port, os.path.abspath(config.data_dir),
                     describe_meta(config.data_dir, config.meta))
            async for signum in signals:
                log.info("received %s, stopping", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break
    finally:
        app.close()


async def _run_pipelines_when_leader(app: App, poll: float = 2.0) -> None:
    """Gateways sharing a folder: one runs the pipeline jobs (their state is the
    folder's ``pps`` SQLite files), the one holding ``<data>/pps/runner.lock``; the
    others try again every ``poll`` seconds and take over when it dies."""
    import fcntl
    os.makedirs(os.path.join(app.config.data_dir, "pps"), exist_ok=True)
    f = open(os.path.join(app.config.data_dir, "pps", "runner.lock"), "a+")
    try:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await trio.sleep(poll)
        log.info("this gateway runs the pipeline jobs")
        async with trio.open_nursery() as nursery:
            await nursery.start(app.runner.run)
    finally:
        f.close()
