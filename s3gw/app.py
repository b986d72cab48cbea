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
from dataclasses import dataclass

import trio

from .http import ServerConfig, serve
from .pfs.auth import SqliteAuthStore
from .pfs.metadata import SqliteMetadata
from .s3.service import S3Service
from .store.chunkstore import LocalChunkStore
from .store.manifest import INLINE_MAX

__all__ = ["App", "AppConfig", "run_server", "DEFAULT_PORT"]

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
        self.limiter = trio.CapacityLimiter(config.worker_threads)
        self.s3 = S3Service(self.meta, self.store, region=config.region, domain=config.domain,
                            limiter=self.limiter, auth=self.auth,
                            inline_object_max=config.inline_object_max)

    def close(self) -> None:
        self.meta.close()
        self.auth.close()
        self.store.close()

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await serve(self.s3.handle, self.config.host, self.config.port,
                    config=ServerConfig(), error_response=self.s3.http_error_response,
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
    """Serve until SIGINT or SIGTERM, then stop cleanly."""
    app = App(config)
    try:
        async with trio.open_nursery() as nursery:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                await nursery.start(app.serve)
                await nursery.start(app.expire_uploads)
                log.info("s3gw listening on http://%s:%d (data: %s)", config.host, config.port,
                         os.path.abspath(config.data_dir))
                async for signum in signals:
                    log.info("received %s, stopping", signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    break
    finally:
        app.close()
