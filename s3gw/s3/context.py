"""What S3 operations are given: the stores, settings and helpers of one service.

``Context`` holds the metadata store, the chunk store, the auth store, the
settings (region, domain, clock, thread limiter) and the helpers every
operation uses (``run`` a blocking call in a worker thread, ``bucket`` /
``writable`` to parse a bucket name).  ``s3.service.S3Service`` extends it
with the request handler; the operations in ``s3.ops`` take it as ``svc``
and import this module, not the service, so the service can import their
dispatch table.

Operations reach PFS and the chunk store through worker threads
(``self.run``, capped by the app's ``CapacityLimiter``): SQLite and file I/O
block.  One exception: a GET/HEAD at a branch head looks the file up on the
event loop (one indexed read) and reads a small object's chunk there when the
page cache holds it (``ops.get._resolve_and_read_cached``), because the
thread hop costs more than that work; a slow lookup turns this off for a while
(``inline_reads_now``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from contextvars import ContextVar
from typing import Callable

import trio

from ..ingest.smallputs import SmallPutWriter
from ..pfs.interface import AuthStore, MetadataStore
from ..pps.jobs import JobView
from ..store.chunkstore import ChunkStore
from ..store.manifest import INLINE_MAX
from .auth.access import Principal
from .wire import xml_out as s3xml
from .wire.errors import S3Error
from .jobviews import view_ref
from .wire.names import BucketRef, parse_bucket

__all__ = ["Context", "OWNER", "PRINCIPAL", "VIEW", "OUTPUTS_RECHECK"]

log = logging.getLogger("s3gw.s3")
OWNER = s3xml.Owner(id="s3gw", display_name="s3gw")

# The authenticated caller of the request being handled (None: auth is off).  Set by
# ``S3Service.handle`` for the duration of one operation; child tasks inherit it.
PRINCIPAL: ContextVar[Principal | None] = ContextVar("s3gw_principal", default=None)
# The pipeline job view the request came through (None: the main port).  Set by
# ``S3Service.handle_view``; ``Context.bucket`` maps bucket names through it.
VIEW: ContextVar[JobView | None] = ContextVar("s3gw_view", default=None)
# Seconds between re-reads of the pipelines' output repos (``output_repos``).
OUTPUTS_RECHECK = 0.05

# Lookups on the event loop slower than INLINE_SLOW seconds, INLINE_STRIKES of them
# within INLINE_WINDOW seconds (a cold database), or one slower than INLINE_SEVERE,
# send lookups back to worker threads for INLINE_BACKOFF seconds.  One slow lookup
# alone is usually the thread being preempted (a 2-core machine shared with the
# clients): backing off on it cost a 4 KiB GET phase half its rate for a second.
INLINE_SLOW = 0.002
INLINE_STRIKES = 3
INLINE_WINDOW = 1.0
INLINE_SEVERE = 0.02
INLINE_BACKOFF = 1.0


class Context:
    """What an operation reads: the stores, the settings, and the shared helpers.

    ``S3Service`` (``s3.service``) is this plus the request handler; operations
    take it as ``svc``.
    """

    def __init__(self, meta: MetadataStore, store: ChunkStore, *, region: str = "us-east-1",
                 domain: str | None = None, limiter: trio.CapacityLimiter | None = None,
                 clock: Callable[[], int] = time.time_ns, auth: AuthStore | None = None,
                 inline_object_max: int = INLINE_MAX,
                 output_repos: Callable[[float], frozenset[str]] | None = None):
        self.meta = meta
        # output_repos(max_age): the repos only pipeline jobs write (None: no pipelines)
        self.output_repos = output_repos
        # a PutObject body up to this size is kept in its manifest (store.manifest); 0: never
        self.inline_object_max = inline_object_max
        self._inline_after = 0.0
        self._inline_strikes: deque[float] = deque(maxlen=INLINE_STRIKES)
        self.small_puts = SmallPutWriter(meta, store)
        self.auth = auth
        self.store = store
        self.region = region
        self.domain = domain
        self.limiter = limiter
        self.clock = clock
        # (repo, branch) of buckets whose versioning is Suspended: their writes answer
        # version id "null" (docs/versioning.md); kept current by PutBucketVersioning
        self.suspended: set[tuple[str, str]] = meta.suspended_branches()

    def write_version_id(self, ref: BucketRef, commit_id: str) -> str:
        """The version id a write's response names: ``null`` on a suspended bucket."""
        suspended = self.suspended
        return "null" if suspended and (ref.repo, ref.branch) in suspended else commit_id

    def inline_reads_now(self) -> bool:
        """Whether a GET/HEAD may look its file up on the event loop now."""
        return time.monotonic() >= self._inline_after

    def inline_read_took(self, seconds: float) -> None:
        """Report an event-loop lookup's duration (slow ones pause inline reads)."""
        if seconds <= INLINE_SLOW:
            return
        now = time.monotonic()
        strikes = self._inline_strikes
        strikes.append(now)
        if seconds > INLINE_SEVERE or (len(strikes) == INLINE_STRIKES
                                       and now - strikes[0] <= INLINE_WINDOW):
            strikes.clear()
            self._inline_after = now + INLINE_BACKOFF
            log.info("a lookup on the event loop took %.1f ms: lookups go to worker threads "
                     "for %.0f s", seconds * 1e3, INLINE_BACKOFF)

    async def run(self, fn, *args):
        """Run a blocking PFS/store call in a worker thread."""
        return await trio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    # -- helpers shared by operations -----------------------------------------------------
    def bucket(self, name: str | None) -> BucketRef:
        if not name:
            raise S3Error("InvalidBucketName", "A bucket name is required.")
        view = VIEW.get()
        if view is not None:
            target = view.get(name)
            if target is None:
                raise S3Error("NoSuchBucket", bucket_name=name)
            return view_ref(target)
        return parse_bucket(name)

    def writable(self, name: str | None) -> BucketRef:
        ref = self.bucket(name)
        if ref.commit is not None:
            raise S3Error("AccessDenied", "Bucket is pinned to a commit and is read-only.",
                          bucket_name=name)
        return ref
