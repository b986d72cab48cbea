"""Operators' endpoints on a live ``s3gw serve``: /_s3gw/healthz, readyz, metrics, and the
JSON access log (``--log-format json``).

The metrics are read with ``prometheus_client``'s own text parser, as Prometheus reads
them; counters are compared before and after real boto3 requests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ServerProcess, make_client


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    data = str(tmp_path_factory.mktemp("s3gw-observe") / "data")
    server = ServerProcess(data, extra_args=["--log-format", "json"]).start()
    yield server
    server.stop()
    assert "Traceback" not in server.log()


@pytest.fixture(scope="module")
def client(srv):
    return make_client(srv.endpoint)


def get(srv, path: str, method: str = "GET", headers=None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(srv.endpoint + path, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def scrape(srv) -> dict[tuple[str, tuple], float]:
    """Every sample of /_s3gw/metrics: (name, sorted labels) -> value."""
    status, headers, body = get(srv, "/_s3gw/metrics")
    assert status == 200, body
    assert headers["content-type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_healthz_and_readyz(srv):
    status, headers, body = get(srv, "/_s3gw/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert headers["content-type"] == "application/json"
    status, _, body = get(srv, "/_s3gw/readyz")
    assert status == 200
    assert json.loads(body) == {"status": "ready", "checks": {
        "metadata_file": "ok", "metadata": "ok", "chunk_store": "ok"}}
    assert get(srv, "/_s3gw/readyz", "HEAD")[0] == 200
    status, headers, _ = get(srv, "/_s3gw/healthz", "POST")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    assert get(srv, "/_s3gw/nothing")[0] == 404


def test_endpoints_never_shadow_buckets(srv, client):
    # buckets named like the endpoints are ordinary buckets; a bucket cannot start with "_"
    for name in ("healthz", "readyz", "metrics"):
        client.create_bucket(Bucket=name)
        client.put_object(Bucket=name, Key="_s3gw/metrics", Body=b"data")
        assert client.get_object(Bucket=name, Key="_s3gw/metrics")["Body"].read() == b"data"
    status, _, body = get(srv, "/_s3gw")       # the bare name is a bucket request: refused
    assert status == 400 and b"InvalidBucketName" in body


def test_metrics_counters_move_with_requests(srv, client):
    bucket = f"master.m{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    before = scrape(srv)
    body = os.urandom(10_000)
    for i in range(5):
        client.put_object(Bucket=bucket, Key=f"k{i}", Body=body)
    for i in range(3):
        assert client.get_object(Bucket=bucket, Key=f"k{i}")["Body"].read() == body
    with pytest.raises(client.exceptions.NoSuchKey):
        client.get_object(Bucket=bucket, Key="missing")
    upload = client.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    after = scrape(srv)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("s3gw_requests_total", operation="PutObject", status="200") == 5
    assert moved("s3gw_requests_total", operation="GetObject", status="200") == 3
    assert moved("s3gw_requests_total", operation="GetObject", status="404") == 1
    assert moved("s3gw_errors_total", code="NoSuchKey") == 1
    assert moved("s3gw_received_bytes_total", operation="PutObject") == 5 * len(body)
    assert moved("s3gw_sent_bytes_total", operation="GetObject") >= 3 * len(body)
    assert moved("s3gw_request_duration_seconds_count", operation="PutObject") == 5
    assert moved("s3gw_request_duration_seconds_bucket", operation="PutObject", le="+Inf") == 5
    assert moved("s3gw_request_duration_seconds_sum", operation="PutObject") > 0
    assert moved("s3gw_commits") == 5
    assert moved("s3gw_multipart_uploads_in_progress") == 1
    assert value(after, "s3gw_connections_open") >= 1
    assert value(after, "s3gw_connections_total") > value(before, "s3gw_connections_total")
    for state in ("CREATED", "RUNNING", "SUCCESS", "FAILURE", "KILLED"):
        assert ("s3gw_pipeline_jobs", (("state", state),)) in after
    assert value(after, "s3gw_object_bytes") > 0          # heavy gauges: present
    assert value(after, "s3gw_dedup_ratio") > 0
    assert ("s3gw_chunk_store_bytes", ()) in after
    assert ("process_resident_memory_bytes", ()) in after
    client.abort_multipart_upload(Bucket=bucket, Key="big", UploadId=upload)

    # GC runs made by `s3gw gc` beside the server show in its metrics
    subprocess.run([sys.executable, "-m", "s3gw", "gc", "--data", srv.data_dir],
                   check=True, capture_output=True, timeout=60)
    later = scrape(srv)
    assert value(later, "s3gw_gc_runs_total") == value(after, "s3gw_gc_runs_total") + 1
    assert value(later, "s3gw_gc_last_run_timestamp_seconds") > time.time() - 120


def test_metrics_hold_no_names(srv, client):
    bucket = f"master.secretrepo{uuid.uuid4().hex[:6]}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="secret-key-name.txt", Body=b"x")
    _, _, text = get(srv, "/_s3gw/metrics")
    assert b"secretrepo" not in text and b"secret-key-name" not in text and b"test" not in text


def _access_lines(srv) -> list[dict]:
    time.sleep(0.5)            # the access log is written in batches, every 0.2 s
    return [json.loads(line) for line in srv.log().splitlines() if line.startswith("{")]


def test_json_access_log(srv, client):
    bucket = f"master.j{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    key = "dir/ünï 日本+%.txt"
    rid = client.put_object(Bucket=bucket, Key=key, Body=b"hello")["ResponseMetadata"]["RequestId"]
    with pytest.raises(client.exceptions.NoSuchKey):
        client.get_object(Bucket=bucket, Key="nope")
    lines = _access_lines(srv)
    (put,) = [d for d in lines if d["request_id"] == rid]
    assert put["operation"] == "PutObject" and put["method"] == "PUT"
    assert (put["bucket"], put["key"], put["status"]) == (bucket, key, 200)
    assert put["bytes_in"] == 5 and put["bytes_out"] == 0 and put["duration_ms"] > 0
    assert put["path"].startswith(f"/{bucket}/") and "?" not in put["path"]
    assert put["time"].endswith("Z") and put["remote"].startswith("127.0.0.1:")
    (miss,) = [d for d in lines if d["key"] == "nope" and d["bucket"] == bucket]
    assert (miss["status"], miss["error"], miss["operation"]) == (404, "NoSuchKey", "GetObject")
    assert miss["bytes_out"] > 0
    assert all(set(d) >= {"time", "method", "path", "status", "bytes_in", "bytes_out",
                          "duration_ms", "request_id", "operation", "bucket", "key"}
               for d in lines)


def test_readyz_fails_when_the_metadata_store_is_gone(tmp_path):
    data = str(tmp_path / "data")
    server = ServerProcess(data).start()
    try:
        assert get(server, "/_s3gw/readyz")[0] == 200
        meta = os.path.join(data, "meta.sqlite")
        os.rename(meta, meta + ".away")
        status, _, body = get(server, "/_s3gw/readyz")
        doc = json.loads(body)
        assert status == 503 and doc["status"] == "not ready"
        assert doc["checks"]["metadata_file"].startswith("missing")
        assert data not in body.decode()                 # no paths in the answer
        assert get(server, "/_s3gw/healthz")[0] == 200   # alive all the same
        for _ in range(4):       # checks on other threads open no new, empty meta.sqlite
            assert get(server, "/_s3gw/readyz")[0] == 503
            assert not os.path.exists(meta)
        os.rename(meta + ".away", meta)
        assert get(server, "/_s3gw/readyz")[0] == 200
    finally:
        server.stop()


def test_metrics_with_auth_on_are_open_on_loopback(tmp_path):
    data = str(tmp_path / "data")
    os.makedirs(data)
    subprocess.run([sys.executable, "-m", "s3gw", "auth", "enable", "--json", "--data", data],
                   check=True, capture_output=True, timeout=60)
    server = ServerProcess(data).start()
    try:
        assert get(server, "/")[0] == 403                  # S3 wants a signature
        samples = scrape(server)                           # the metrics do not (loopback)
        assert value(samples, "s3gw_errors_total", code="AccessDenied") == 1
        assert get(server, "/_s3gw/healthz")[0] == 200
        assert get(server, "/_s3gw/readyz")[0] == 200
    finally:
        server.stop()
