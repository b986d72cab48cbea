"""The sans-IO parts of s3gw.observe and the JSON access log layout."""

from __future__ import annotations

import io
import json
import logging

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from s3gw.http import Headers, Request, accesslog
from s3gw.observe.endpoints import OpsEndpoints, is_loopback
from s3gw.observe.metrics import RequestMetrics


def _request(remote, headers=()):
    return Request(method="GET", target="/_s3gw/metrics", headers=Headers(list(headers)),
                   http_version="1.1", id="0" * 16, remote=remote, body=None)


def test_is_loopback():
    assert is_loopback(("127.0.0.1", 5)) and is_loopback(("127.3.2.1", 5))
    assert is_loopback(("::1", 5, 0, 0)) and is_loopback(("::ffff:127.0.0.1", 5, 0, 0))
    assert not is_loopback(("10.0.0.5", 5)) and not is_loopback(("::ffff:10.0.0.5", 5, 0, 0))
    assert not is_loopback(None) and not is_loopback(("not an address", 1))


def _endpoints(auth_on: bool, token: str | None):
    async def inner(request):  # pragma: no cover - not reached
        raise AssertionError

    return OpsEndpoints(inner, None, None, auth_enabled=lambda: auth_on, metrics_token=token)


def test_who_may_read_metrics():
    remote = ("10.0.0.5", 40000)
    assert _endpoints(False, None)._may_read_metrics(_request(remote))
    assert _endpoints(True, None)._may_read_metrics(_request(("127.0.0.1", 1)))
    assert not _endpoints(True, None)._may_read_metrics(_request(remote))
    tok = _endpoints(True, "s3cr3t")
    assert tok._may_read_metrics(_request(remote, [("Authorization", "Bearer s3cr3t")]))
    assert not tok._may_read_metrics(_request(remote, [("Authorization", "Bearer wrong")]))
    assert not tok._may_read_metrics(_request(remote, [("Authorization", "Basic s3cr3t")]))
    assert not tok._may_read_metrics(_request(remote))


def test_request_metrics_render_as_prometheus_text():
    m = RequestMetrics()
    m.connection_opened()
    m.exchange_done({"operation": "PutObject", "bucket": "b", "key": "k"}, 200, 100, 0, 0.5)
    m.exchange_done({"operation": "PutObject"}, 200, 50, 0, 30.0)
    m.exchange_done({"operation": "GetObject", "error": "NoSuchKey"}, 404, 0, 200, 2.0)
    m.exchange_done(None, 400, 0, 120, 0.1)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(m)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(generate_latest(registry).decode())
               for s in f.samples}
    put = (("operation", "PutObject"),)
    assert samples[("s3gw_requests_total", (("operation", "PutObject"), ("status", "200")))] == 2
    assert samples[("s3gw_requests_total", (("operation", "-"), ("status", "400")))] == 1
    assert samples[("s3gw_received_bytes_total", put)] == 150
    assert samples[("s3gw_errors_total", (("code", "NoSuchKey"),))] == 1
    assert samples[("s3gw_request_duration_seconds_count", put)] == 2
    assert samples[("s3gw_request_duration_seconds_sum", put)] == 0.0305
    bucket = ("s3gw_request_duration_seconds_bucket",)
    assert samples[bucket + ((("le", "0.001"), ("operation", "PutObject")),)] == 1
    assert samples[bucket + ((("le", "0.025"), ("operation", "PutObject")),)] == 1
    assert samples[bucket + ((("le", "0.05"), ("operation", "PutObject")),)] == 2
    assert samples[bucket + ((("le", "+Inf"), ("operation", "PutObject")),)] == 2
    assert samples[("s3gw_connections_open", ())] == 1
    # the bucket and key names never become labels
    assert not any(v in ("b", "k") for _n, labels in samples for _l, v in labels)


def test_json_access_lines(caplog):
    caplog.set_level(logging.INFO, logger="s3gw.access")
    stream = io.StringIO()
    log = accesslog.BatchedAccessLog(logging.StreamHandler(stream), interval=60, fmt="json")
    log("PUT", "/master.r/a%20b", 200, 0, 3.25, "ABC", ("127.0.0.1", 9), 5,
        {"operation": "PutObject", "bucket": "master.r", "key": "a b ü"})
    log("GET", "/", 400, 120, 0.5, "DEF", None)
    log.close()
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert first["operation"] == "PutObject" and first["key"] == "a b ü"
    assert (first["bytes_in"], first["bytes_out"], first["status"]) == (5, 0, 200)
    assert first["duration_ms"] == 3.25 and first["request_id"] == "ABC"
    assert first["remote"] == "127.0.0.1:9" and first["time"].endswith("Z")
    assert second["operation"] is None and second["remote"] is None and second["bytes_in"] == 0


async def test_virtual_host_requests_are_s3():
    seen = []

    async def inner(request):
        seen.append(request.path)
        return "s3"

    ops = OpsEndpoints(inner, None, None, auth_enabled=lambda: False, domain="s3.local")

    def req(host):
        return Request(method="GET", target="/_s3gw/healthz", headers=Headers([("Host", host)]),
                       http_version="1.1", id="0" * 16, remote=None, body=None)

    assert await ops.handle(req("photos.s3.local:30600")) == "s3"   # key _s3gw/healthz
    assert seen == ["/_s3gw/healthz"]
    response = await ops.handle(req("s3.local:30600"))                # the bare host: ours
    assert response.status == 200 and seen == ["/_s3gw/healthz"]
