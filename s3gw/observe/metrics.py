"""Prometheus metrics: per-request counters in plain ints, store gauges at scrape time.

Theory of operation
-------------------
Two sources, one ``prometheus_client`` registry (``Metrics.registry``), rendered
by ``prometheus_client.generate_latest`` in the text format:

* ``RequestMetrics`` is the HTTP server's ``observer`` (``http.ServerConfig``):
  told of every connection opened and closed and of every finished exchange,
  on the event loop.  It adds to plain dicts and ints -- no lock, no
  ``prometheus_client`` object on the hot path (its counters take a lock per
  ``inc``) -- and a custom collector turns them into metric families at scrape
  time.  Labels: the S3 operation (as AWS names it, from ``Request.notes``;
  ``-`` for a request the server refused before routing, ``s3gw.*`` for these
  endpoints), the status code, the S3 error code.  Never a bucket, key or user.
* ``StoreSnapshot`` reads the data folder (in a worker thread, before each
  scrape is rendered): commits, multipart uploads in progress, pipeline jobs by
  state and GC totals every scrape (indexed counts); the chunk store's size
  and the dedup ratio (a walk of every chunk and manifest, as ``s3gw stats``
  does) at most every ``heavy_interval`` seconds, reported with their age.

Process metrics (CPU, memory, open files) come from ``prometheus_client``'s
process and platform collectors.

The metric names, all prefixed ``s3gw_``, are listed in README.md ("Metrics").
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from typing import Any, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST, CollectorRegistry, PlatformCollector, ProcessCollector, generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from ..pfs.gc import gc_totals
from ..store.manifest import Manifest

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS_S", "Metrics", "RequestMetrics", "StoreSnapshot"]

log = logging.getLogger("s3gw.observe")

CONTENT_TYPE = CONTENT_TYPE_LATEST
# upper bounds (seconds) of the request-duration histogram: 1 ms to 60 s
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                     10.0, 30.0, 60.0)
_BOUNDS_MS = tuple(b * 1000.0 for b in LATENCY_BUCKETS_S)
_BUCKET_LABELS = tuple(repr(b) for b in LATENCY_BUCKETS_S) + ("+Inf",)


class _Op:
    """What one operation's exchanges added up to."""

    __slots__ = ("statuses", "bytes_in", "bytes_out", "buckets", "ms")

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.bytes_in = 0
        self.bytes_out = 0
        self.buckets = [0] * (len(_BOUNDS_MS) + 1)   # per bucket, not cumulative; last: +Inf
        self.ms = 0.0


class RequestMetrics:
    """The HTTP server's observer: counts in plain ints (event loop only)."""

    def __init__(self) -> None:
        self.ops: dict[str, _Op] = {}
        self.errors: dict[str, int] = {}
        self.connections_open = 0
        self.connections_total = 0

    # -- the observer interface (http.ServerConfig.observer) ------------------------------
    def connection_opened(self) -> None:
        self.connections_open += 1
        self.connections_total += 1

    def connection_closed(self) -> None:
        self.connections_open -= 1

    def exchange_done(self, notes: dict | None, status: int, bytes_in: int, bytes_out: int,
                      ms: float) -> None:
        if notes is None:
            name, code = "-", None
        else:
            name, code = notes.get("operation") or "-", notes.get("error")
        op = self.ops.get(name)
        if op is None:
            op = self.ops[name] = _Op()
        statuses = op.statuses
        statuses[status] = statuses.get(status, 0) + 1
        op.bytes_in += bytes_in
        op.bytes_out += bytes_out
        op.buckets[bisect.bisect_left(_BOUNDS_MS, ms)] += 1
        op.ms += ms
        if code is not None:
            self.errors[code] = self.errors.get(code, 0) + 1

    # -- the collector ----------------------------------------------------------------------
    def collect(self) -> Iterator[Any]:
        ops = sorted(self.ops.items())
        requests = CounterMetricFamily("s3gw_requests", "Requests answered, by S3 operation and "
                                       "HTTP status", labels=["operation", "status"])
        received = CounterMetricFamily("s3gw_received_bytes", "Request body bytes read, by "
                                       "operation", labels=["operation"])
        sent = CounterMetricFamily("s3gw_sent_bytes", "Response body bytes sent, by operation",
                                   labels=["operation"])
        latency = HistogramMetricFamily("s3gw_request_duration_seconds",
                                        "From the complete request head to the last byte of "
                                        "the answer, by operation", labels=["operation"])
        for name, op in ops:
            for status, n in sorted(op.statuses.items()):
                requests.add_metric([name, str(status)], n)
            received.add_metric([name], op.bytes_in)
            sent.add_metric([name], op.bytes_out)
            running, cumulative = 0, []
            for label, n in zip(_BUCKET_LABELS, op.buckets):
                running += n
                cumulative.append((label, running))
            latency.add_metric([name], cumulative, op.ms / 1000.0)
        errors = CounterMetricFamily("s3gw_errors", "Error answers, by S3 error code",
                                     labels=["code"])
        for code, n in sorted(self.errors.items()):
            errors.add_metric([code], n)
        yield from (requests, latency, received, sent, errors)
        yield GaugeMetricFamily("s3gw_connections_open", "HTTP connections open now",
                                value=self.connections_open)
        yield CounterMetricFamily("s3gw_connections", "HTTP connections accepted",
                                  value=self.connections_total)


class StoreSnapshot:
    """Gauges of the data folder, read by ``refresh`` (blocking: a worker thread).

    Args:
        meta: the ``SqliteMetadata``; store: the chunk store; pps: the ``PipelineStore``.
        heavy_interval: seconds the chunk-store walk and the dedup ratio are reused.
        clock: ``time.monotonic`` (tests pass their own).
    """

    def __init__(self, meta, store, pps, *, heavy_interval: float = 60.0,
                 clock=time.monotonic) -> None:
        self.meta, self.store, self.pps = meta, store, pps
        self.heavy_interval = heavy_interval
        self.clock = clock
        self._lock = threading.Lock()          # one refresh at a time
        self.light: dict[str, Any] = {}
        self.heavy: dict[str, Any] = {}
        self.heavy_at: float | None = None

    def refresh(self) -> None:
        """Re-read the cheap gauges; the heavy ones too when older than ``heavy_interval``."""
        with self._lock:
            reader = self.meta.reader
            light = {
                "commits": reader.execute("SELECT count(*) FROM commits").fetchone()[0],
                "repos": reader.execute("SELECT count(*) FROM repos").fetchone()[0],
                "branches": reader.execute("SELECT count(*) FROM branches").fetchone()[0],
                "uploads": self.meta.uploads.count(),
                "jobs": self.pps.job_counts() if self.pps is not None else {},
                "gc": gc_totals(self.meta),
            }
            self.light = light
            now = self.clock()
            if self.heavy_at is None or now - self.heavy_at >= self.heavy_interval:
                self.heavy = self._heavy()
                self.heavy_at = self.clock()

    def _heavy(self) -> dict[str, Any]:
        chunks, stored = self.store.usage()
        inline = 0
        for blob in self.meta.referenced_manifests():
            for ref in Manifest.unpack(blob).chunks:
                if ref.data is not None:
                    inline += ref.length
        object_bytes = self.meta.reader.execute(
            "SELECT coalesce(sum(size), 0) FROM objects").fetchone()[0]
        kept = stored + inline
        return {"chunks": chunks, "stored": stored, "inline": inline, "objects": object_bytes,
                "dedup": object_bytes / kept if kept else None}

    def collect(self) -> Iterator[Any]:
        light, heavy = self.light, self.heavy
        if light:
            yield GaugeMetricFamily("s3gw_commits", "Commits in the metadata store",
                                    value=light["commits"])
            yield GaugeMetricFamily("s3gw_repos", "Repos", value=light["repos"])
            yield GaugeMetricFamily("s3gw_branches", "Branches", value=light["branches"])
            yield GaugeMetricFamily("s3gw_multipart_uploads_in_progress",
                                    "Multipart uploads created and not yet completed or aborted",
                                    value=light["uploads"])
            jobs = GaugeMetricFamily("s3gw_pipeline_jobs", "Pipeline jobs, by state",
                                     labels=["state"])
            for state, n in sorted(light["jobs"].items()):
                jobs.add_metric([state], n)
            yield jobs
            gc = light["gc"]
            yield CounterMetricFamily("s3gw_gc_runs", "GC runs (s3gw gc, not dry runs) on this "
                                      "data folder", value=gc["gc_runs"])
            yield CounterMetricFamily("s3gw_gc_removed_chunks", "Chunks GC removed, all runs",
                                      value=gc["gc_chunks_removed"])
            yield CounterMetricFamily("s3gw_gc_removed_bytes", "Chunk bytes GC freed, all runs",
                                      value=gc["gc_bytes_removed"])
            yield GaugeMetricFamily("s3gw_gc_last_run_timestamp_seconds",
                                    "When the last GC run finished (0: never)",
                                    value=gc["gc_last_run_ns"] / 1e9)
        if heavy:
            yield GaugeMetricFamily("s3gw_chunk_store_chunks", "Chunks in the chunk store",
                                    value=heavy["chunks"])
            yield GaugeMetricFamily("s3gw_chunk_store_bytes", "Bytes of chunk data in the chunk "
                                    "store (files and packs)", value=heavy["stored"])
            yield GaugeMetricFamily("s3gw_inline_bytes", "Bytes of small objects kept in the "
                                    "metadata store instead of chunks", value=heavy["inline"])
            yield GaugeMetricFamily("s3gw_object_bytes", "Bytes of every stored object version "
                                    "(before deduplication)", value=heavy["objects"])
            if heavy["dedup"] is not None:
                yield GaugeMetricFamily("s3gw_dedup_ratio", "Object bytes / bytes kept (chunk "
                                        "store + inline): 2 means each byte stored serves two",
                                        value=heavy["dedup"])
            yield GaugeMetricFamily("s3gw_store_stats_age_seconds", "Age of the chunk store and "
                                    "dedup figures", value=max(0.0, self.clock() - self.heavy_at))


class Metrics:
    """The registry of one app: requests, data folder, process."""

    def __init__(self, meta, store, pps, *, heavy_interval: float = 60.0) -> None:
        self.requests = RequestMetrics()
        self.snapshot = StoreSnapshot(meta, store, pps, heavy_interval=heavy_interval)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.requests)
        self.registry.register(self.snapshot)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def refresh(self) -> None:
        """Blocking (a worker thread): re-read the data folder's gauges."""
        self.snapshot.refresh()

    def render(self) -> bytes:
        """The text exposition of everything (event loop: reads plain values only)."""
        return generate_latest(self.registry)
