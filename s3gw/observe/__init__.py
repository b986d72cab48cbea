"""s3gw.observe: what operators probe and scrape, beside the S3 API.

Theory of operation
-------------------
Everything here is served on the S3 port under ``/_s3gw/``: no bucket can take
that path (a bucket name never starts with ``_``: ``s3.wire.names``), so the
endpoints never shadow an S3 request.  With virtual-host addressing on
(``--domain``), a request whose Host is ``<bucket>.<domain>`` is always S3 (its
path is a key), so the endpoints answer only on the bare host.

* ``/_s3gw/healthz``: liveness.  The event loop answered: 200 ``{"status":"ok"}``.
  No I/O, no auth.
* ``/_s3gw/readyz``: readiness.  A real query on the metadata store (in a worker
  thread, bounded by a timeout) and a check that the store's file is still the
  one the server opened, and that the chunk folder exists: 200, or 503 with the
  failing check.  No auth.
* ``/_s3gw/metrics``: Prometheus text format (``metrics.Metrics``).  Open when
  auth is off.  With auth on: open to loopback peers, and to others only with
  ``Authorization: Bearer <S3GW_METRICS_TOKEN>`` (Prometheus' ``authorization``
  setting); otherwise 403.  It holds counts only: no bucket names, keys, access
  keys or secrets.

``endpoints.OpsEndpoints`` routes them in front of the S3 handler;
``metrics.RequestMetrics`` is the HTTP server's ``observer`` (plain-int
counting on the event loop); ``health`` runs the readiness checks.

Layering: ``observe`` uses ``http`` (requests and responses), ``pfs``, ``pps`` and
``store`` (what the gauges read); ``app`` wires it.  It knows no S3 beyond the
operation names the S3 service writes into ``Request.notes``.
"""
