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
from .http.server import on_idle
from .ingest.pipeline import trim_spares
from .pfs.auth import SqliteAuthStore
from .pfs.metadata import SqliteMetadata
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
    body_min_rate: float = 1024.0      # bytes/s a request body must average (ServerConfig)
    body_rate_grace: float = 20.0      # seconds before the minimum rate applies


class DataFolderBusy(Exception):
    """Another ``s3gw serve`` holds the data folder's lock."""


def lock_data_folder(data_dir: str):
    """Take the data folder's serve lock (``<data>/serve.lock``, an exclusive
    ``flock`` held for the life of the process; the kernel drops it when the
    process dies, however it dies).  Returns the open lock file.

    Raises:
        DataFolderBusy: another process holds it (its pid in the message).
    """
    import fcntl
    path = os.path.join(data_dir, "serve.lock")
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        raise DataFolderBusy(f"another s3gw serve (pid {holder}) is serving "
                             f"{os.path.abspath(data_dir)}") from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


class App:
    def __init__(self, config: AppConfig):
        self.config = config
        os.makedirs(config.data_dir, exist_ok=True)
        self.meta = SqliteMetadata(os.path.join(config.data_dir, "meta.sqlite"),
                                   durable=config.fsync)
        self.store = LocalChunkStore(config.data_dir, fsync=config.fsync,
                                     direct_writes=config.direct_writes)
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
        config = ServerConfig(body_min_rate=self.config.body_min_rate,
                              body_rate_grace=self.config.body_rate_grace)
        on_idle(trim_spares)          # idle: the upload spares go back too (http.server)
        if listeners is None:
            await serve(self.s3.handle, self.config.host, self.config.port,
                        config=config, error_response=self.s3.http_error_response,
                        task_status=task_status)
        else:
            await serve_listeners(self.s3.handle, listeners, config=config,
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
            lock = lock_data_folder(config.data_dir)
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
            if config.pipelines:
                await nursery.start(app.runner.run)
            log.info("s3gw listening on http://%s:%d (data: %s)", config.host, config.port,
                     os.path.abspath(config.data_dir))
            async for signum in signals:
                log.info("received %s, stopping", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break
    finally:
        app.close()
