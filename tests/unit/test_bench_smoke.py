"""The whole-process benchmark harness (bench/run.py) works, at a tiny size.

No network: peers that are not installed (moto[server], s3rver under
bench/.peers) are reported unavailable and skipped, never installed here.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bench")
sys.path.insert(0, BENCH)

import clients as C  # noqa: E402
import peers as P  # noqa: E402
import run as R  # noqa: E402


def test_pattern_blocks_are_distinct_and_deterministic():
    p = C.Pattern(seed=1)
    a = bytes(p.block(0))
    b = bytes(p.block(1))
    assert len(a) == len(b) == C.MiB and a != b
    # every 64 KiB window of block 0 differs from the same window of block 1 (no dedup)
    for off in range(0, C.MiB, 64 * 1024):
        assert a[off:off + 64 * 1024] != b[off:off + 64 * 1024]
    assert bytes(C.Pattern(seed=1).block(0)) == a
    assert C.Pattern(seed=1).md5(3 * C.MiB + 5) == C.Pattern(seed=1).md5(3 * C.MiB + 5)
    assert C.Pattern(seed=1, mutate_block=1).md5(3 * C.MiB) != p.md5(3 * C.MiB)


def test_generated_body_matches_pattern_and_seeks():
    size = 2 * C.MiB + 12345
    body = C.GeneratedBody(size, C.Pattern(seed=4))
    data = b"".join(iter(lambda: body.read(70000), b""))
    assert len(data) == size
    assert hashlib.md5(data).hexdigest() == C.Pattern(seed=4).md5(size)
    body.seek(C.MiB - 3)
    assert body.read(6) == data[C.MiB - 3:C.MiB + 3]
    body.seek(0, 2)
    assert body.tell() == size and body.read(10) == b""
    late = C.GeneratedBody(size, C.Pattern(), deadline=time.monotonic() - 1)
    with pytest.raises(C.DeadlineExceeded):
        late.read(10)


def test_sigv4_headers_shape():
    h = C.sigv4_headers("GET", "/b/k", "127.0.0.1:1", "AK", "SK")
    assert h["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AK/")
    assert h["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"


def test_ceiling_senders_and_sink():
    for mode in ("h11-sink", "raw-sender"):
        with P.CeilingSender(mode) as s:
            t = C.raw_get_from_sender(s.port, 8 * C.MiB + 7, time.monotonic() + 20)
            assert t.complete and t.bytes == 8 * C.MiB + 7 and t.gbps > 0
            if mode == "h11-sink":
                t = C.raw_put_to_sink(s.port, 8 * C.MiB, C.Pattern(), time.monotonic() + 20)
                assert t.complete and t.status == 200


@pytest.mark.slow   # ~45 s: `pytest -m slow` runs it
def test_run_end_to_end_tiny(tmp_path, capsys):
    out = tmp_path / "r.json"
    md = tmp_path / "r.md"
    rc = R.main(["--size-gib", str(12 / 1024), "--small-count", "40", "--small-rounds", "2",
                 "--ceiling-mib", "16", "--get-pairs", "2", "--put-pairs", "2", "--tool-rounds", "2",
                 "--peers", "moto,s3rver", "--no-install", "--no-awscli", "--time-limit", "20",
                 "--json", str(out), "--markdown", str(md)])
    assert rc == 0
    res = json.loads(out.read_text())
    for k in ("md5", "raw_socket", "h11_get", "h11_put", "disk", "disk_stream"):
        assert res["ceilings"][k]["gbps"], (k, res["ceilings"][k])
    s3gw = res["servers"]["s3gw"]
    assert "unavailable" not in s3gw, s3gw.get("unavailable")
    w = s3gw["workloads"]
    for k in ("put_raw", "get_raw", "put_boto3", "get_boto3"):
        assert w[k]["complete"], (k, w[k])
    assert w["put_raw"]["etag_ok"] and w["put_boto3"]["etag_ok"]
    # upload_file and download_file in two rounds alternating with s3rver (aws cli: off)
    for k in ("upload_file", "download_file"):
        assert w[k]["complete"] and len(w[k]["rounds_gbps"]) == 2, (k, w[k])
        assert w[k]["gbps"] == min(w[k]["rounds_gbps"]) and s3gw["phases"][k]["peak_rss_mib"] > 0
    assert w["awscli_up"]["skipped"]
    # the raw GET twice, each between two sender runs; the ratio is to those
    g = w["get_raw"]
    assert len(g["runs_gbps"]) == 2 and len(g["ceiling_runs"]) == 3 and all(g["ceiling_runs"]), g
    assert g["gbps"] == min(g["runs_gbps"]) and g["ratio"] == min(g["ratios"]) > 0, g
    # the raw PUT twice (new data each time), each between two MD5 ceilings
    p = w["put_raw"]
    assert len(p["runs_gbps"]) == 2 and len(p["ceiling_runs"]) == 3 and all(p["ceiling_runs"]), p
    assert p["gbps"] == min(p["runs_gbps"]) and p["ratio"] == min(p["ratios"]) > 0, p
    # two rounds of 40, alternating with the peers; the figure is a round's rate
    assert w["small_put"]["ops"] == 80 and w["small_get"]["ops"] == 80, (w["small_put"], w["small_get"])
    rates = w["small_put"]["rounds_ops_per_s"]
    assert len(rates) == 2 and w["small_put"]["ops_per_s"] == min(rates)
    assert s3gw["phases"]["small_put"]["peak_rss_mib"] > 0
    assert w["dedup"]["complete"] and w["dedup"]["new_bytes_stored"] <= 8 * C.MiB, w["dedup"]
    assert s3gw["phases"]["put_raw"]["peak_rss_mib"] > 0
    assert "http_5xx" in s3gw["server_errors"]  # counted from the access log (e2e tests own correctness)
    for peer in ("moto", "s3rver"):  # peers that are installed ran; others say why not
        srv = res["servers"][peer]
        if "unavailable" not in srv:
            assert srv["workloads"]["put_raw"]["complete"], srv["workloads"]["put_raw"]
            assert len(srv["workloads"]["put_raw"]["runs_gbps"]) == 1   # pairs: s3gw's only
            assert len(srv["workloads"]["small_put"]["rounds_ops_per_s"]) == 2
            # moto's client-tool workloads run once, in its own phase; the others' in rounds
            rounds = srv["workloads"]["download_file"].get("rounds_gbps")
            assert (rounds is None) if peer == "moto" else (len(rounds) == 2), (peer, srv["workloads"])
    table = md.read_text()
    assert "| PUT 12 MiB, raw client (GB/s) |" in table and "4 KiB PUT, 8 clients" in table
    assert f"| {g['ratio']:.2f} |" in table and "beside each GET" in table
    assert f"| {p['ratio']:.2f} |" in table and "beside each PUT" in table
    assert "## s3gw benchmark" in capsys.readouterr().out
    assert not os.path.exists(res["config"]["workdir"])  # temp dir cleaned up


def test_merge_pairs_compares_each_run_with_the_ceilings_beside_it():
    def get(gbps, complete=True):
        return {"gbps": gbps, "bytes": 1, "size": 1, "seconds": 1.0, "complete": complete, "error": None}

    def ph(rss):
        return {"peak_rss_mib": rss, "cpu": {"cores": rss}}

    recs = [(get(1.0), ph(50)), (get(3.0), ph(70)), (get(2.0), ph(60))]
    rec, phase = R.merge_pairs(recs, [2.0, 4.0, 4.0, None])
    # ratios: 1/3, 3/4, 2/4 (the last sender failed: its GET uses the one before it)
    assert rec["ratios"] == [0.333, 0.75, 0.5] and rec["ratio"] == 0.5
    assert rec["gbps"] == 2.0 and rec["runs_gbps"] == [1.0, 3.0, 2.0]
    assert rec["ceiling_gbps"] == 4.0
    assert phase == {"peak_rss_mib": 70, "cpu": {"cores": 60}}   # the median GET's CPU
    # an even count takes the lower median; incomplete GETs are left out
    rec, _ = R.merge_pairs([(get(1.0), None), (get(2.0), None), (get(9.0, False), None)],
                           [2.0, 2.0, 2.0, 2.0])
    assert rec["gbps"] == 1.0 and rec["ratio"] == 0.5 and rec["runs_gbps"] == [1.0, 2.0]
    # no sender run at all: no ratio, the GET's record as it is
    rec, _ = R.merge_pairs([(get(1.0), None)], [None, None])
    assert "ratio" not in rec and rec["gbps"] == 1.0


def test_merge_transfers_takes_the_median_round():
    def rec(gbps, complete=True):
        return {"gbps": gbps, "bytes": 1, "complete": complete, "error": None}

    def ph(rss):
        return {"peak_rss_mib": rss, "cpu": {"cores": rss}}

    merged, phase = R.merge_transfers([(rec(0.5), ph(10)), (rec(0.2, False), ph(30)), (rec(0.4), ph(20))])
    assert merged["gbps"] == 0.4 and merged["rounds_gbps"] == [0.5, 0.2, 0.4]
    assert merged["complete"] is False   # a round that did not complete is said
    assert phase == {"peak_rss_mib": 30, "cpu": {"cores": 20}}
    merged, _ = R.merge_transfers([(rec(0.5), None), (rec(0.3), None)])
    assert merged["gbps"] == 0.3          # the lower median of an even count
    merged, phase = R.merge_transfers([({"skipped": "nothing uploaded"}, None), (None, None)])
    assert merged == {"skipped": "nothing uploaded"} and phase is None


def test_small_objects_response_parser():
    parse = C._response_in
    assert parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab") is None
    assert parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3") is None
    whole = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    assert parse(whole + b"HTTP/1.1") == (200, len(whole), 3, False)
    closing = b"HTTP/1.1 404 Not Found\r\nConnection: close\r\ncontent-length: 0\r\n\r\n"
    assert parse(closing) == (404, len(closing), 0, True)
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    assert parse(chunked[:-2]) is None and parse(chunked) == (200, len(chunked), -1, False)
    assert parse(b"HTTP/1.1 204 No Content\r\n\r\n") == (204, 27, 0, False)
    old = b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody"      # ends when the server closes
    assert parse(old) is None and parse(old, eof=True) == (200, len(old), 4, True)
    assert parse(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")[3] is True
    assert parse(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")[3] is False
