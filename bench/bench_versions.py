"""Versions at scale: ListObjectVersions and historic reads on a branch with many commits.

    python bench/bench_versions.py [--commits 10000] [--keys 100] [--reads 300]

Builds a repo ``hist`` whose master has ``--commits`` commits, each writing one
small object to one of ``--keys`` keys (so every key has commits/keys
versions), via the pfs API on a fresh data folder; then serves it with
``s3gw serve`` and measures through boto3:

* ListObjectVersions: every page (max-keys 1000) of the whole bucket, and one
  key's full history;
* GET with ``versionId`` of random old commits (latency p50/p90/p99), against
  GET of the current object;
* in process: ``stat_at`` and ``list_at`` of a commit, and the skip-list
  ancestor lookup.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from s3gw.pfs.metadata import SqliteMetadata
from s3gw.pfs.model import ObjectInfo, Put
from s3gw.store.chunkstore import LocalChunkStore
from s3gw.store.hashing import chunk_checksum, chunk_id
from s3gw.store.manifest import ChunkRef, Manifest


def build(data_dir: str, commits: int, keys: int) -> list[str]:
    os.makedirs(data_dir, exist_ok=True)
    meta = SqliteMetadata(os.path.join(data_dir, "meta.sqlite"), durable=False)
    store = LocalChunkStore(data_dir, fsync=False)
    meta.create_branch("hist", "master", 1)
    ids = []
    batch = store.batch()
    for i in range(commits):
        body = f"key{i % keys:04d} version {i}".encode()
        cid = chunk_id(body)
        batch.put(cid, body)
        manifest = Manifest([ChunkRef(cid, chunk_checksum(body), len(body))]).pack()
        obj = ObjectInfo(size=len(body), etag=hashlib.md5(body).hexdigest(), manifest=manifest)
        ids.append(meta.commit("hist", "master", [Put(f"key{i % keys:04d}", obj)], f"PUT {i}",
                               1_700_000_000_000_000_000 + i).id)
    batch.sync()
    meta.close()
    return ids


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def ms(x):
    return f"{x * 1e3:.2f} ms"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=10_000)
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--reads", type=int, default=300)
    args = ap.parse_args()
    import boto3
    from botocore.config import Config

    tmp = tempfile.mkdtemp(prefix="s3gw-bench-versions-")
    data = os.path.join(tmp, "data")
    t = time.perf_counter()
    ids = build(data, args.commits, args.keys)
    print(f"history: {args.commits} commits over {args.keys} keys built in "
          f"{time.perf_counter() - t:.1f} s")

    meta = SqliteMetadata(os.path.join(data, "meta.sqlite"))
    rnd = random.Random(1)
    sample = [rnd.randrange(len(ids)) for _ in range(args.reads)]
    lat = []
    for i in sample:
        t = time.perf_counter()
        f = meta.stat_at("hist", "master", ids[i], f"key{i % args.keys:04d}")
        lat.append(time.perf_counter() - t)
        assert f.commit_id == ids[i]
    print(f"in process stat_at(random commit): p50 {ms(pct(lat, 50))}  p99 {ms(pct(lat, 99))}")
    t = time.perf_counter()
    files = meta.list_at("hist", ids[len(ids) // 2], limit=1000)
    print(f"in process list_at(middle commit): {len(files)} files in {ms(time.perf_counter() - t)}")
    t = time.perf_counter()
    for i in sample:
        meta.history.is_ancestor(ids[i], ids[-1])
    print(f"in process is_ancestor: {ms((time.perf_counter() - t) / len(sample))} each")
    meta.close()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(os.path.join(tmp, "server.log"), "wb")
    proc = subprocess.Popen([sys.executable, "-m", "s3gw", "serve", "--data", data, "--port",
                             str(port), "--log-level", "WARNING"], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}",
                          aws_access_key_id="t", aws_secret_access_key="t",
                          region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}))
        s3.head_bucket(Bucket="master.hist")
        pages, total, kw, page_times = 0, 0, {}, []
        t0 = time.perf_counter()
        while True:
            t = time.perf_counter()
            r = s3.list_object_versions(Bucket="master.hist", MaxKeys=1000, **kw)
            page_times.append(time.perf_counter() - t)
            pages += 1
            total += len(r.get("Versions", []))
            if not r["IsTruncated"]:
                break
            kw = {"KeyMarker": r["NextKeyMarker"], "VersionIdMarker": r["NextVersionIdMarker"]}
        whole = time.perf_counter() - t0
        assert total == args.commits, total
        print(f"ListObjectVersions, whole bucket: {total} versions in {pages} pages, "
              f"{whole:.2f} s; per 1000-entry page p50 {ms(pct(page_times, 50))}, "
              f"max {ms(max(page_times))}")
        # the same pages over raw HTTP (keep-alive, no signing, no client-side XML parsing):
        # the server's own time
        import http.client
        import re as _re
        from urllib.parse import quote
        conn = http.client.HTTPConnection("127.0.0.1", port)
        raw_times, query = [], "versions&max-keys=1000"
        while True:
            t = time.perf_counter()
            conn.request("GET", f"/master.hist?{query}")
            doc = conn.getresponse().read().decode()
            raw_times.append(time.perf_counter() - t)
            if "<IsTruncated>true</IsTruncated>" not in doc:
                break
            km = _re.search(r"<NextKeyMarker>(.*?)</NextKeyMarker>", doc).group(1)
            vm = _re.search(r"<NextVersionIdMarker>(.*?)</NextVersionIdMarker>", doc).group(1)
            query = f"versions&max-keys=1000&key-marker={quote(km)}&version-id-marker={vm}"
        conn.close()
        print(f"ListObjectVersions over raw HTTP: {len(raw_times)} pages in "
              f"{sum(raw_times):.2f} s; per page p50 {ms(pct(raw_times, 50))}, "
              f"max {ms(max(raw_times))}  (the boto3 figures add botocore's XML parsing)")
        t = time.perf_counter()
        r = s3.list_object_versions(Bucket="master.hist", Prefix="key0007")
        print(f"ListObjectVersions, one key ({len(r['Versions'])} versions): "
              f"{ms(time.perf_counter() - t)}")
        lat, cur = [], []
        for i in sample:
            key = f"key{i % args.keys:04d}"
            t = time.perf_counter()
            got = s3.get_object(Bucket="master.hist", Key=key, VersionId=ids[i])
            body = got["Body"].read()
            lat.append(time.perf_counter() - t)
            assert body == f"{key} version {i}".encode()
            t = time.perf_counter()
            s3.get_object(Bucket="master.hist", Key=key)["Body"].read()
            cur.append(time.perf_counter() - t)
        print(f"GET versionId=<random old commit>: p50 {ms(pct(lat, 50))}  p90 "
              f"{ms(pct(lat, 90))}  p99 {ms(pct(lat, 99))}  (mean {ms(statistics.mean(lat))})")
        print(f"GET current (same keys):           p50 {ms(pct(cur, 50))}  p90 "
              f"{ms(pct(cur, 90))}  p99 {ms(pct(cur, 99))}")
        t = time.perf_counter()
        r = s3.get_object(Bucket="master.hist", Key="key0000", VersionId=ids[0])
        r["Body"].read()
        print(f"GET versionId=<first commit> ({args.commits - 1} commits back): "
              f"{ms(time.perf_counter() - t)}")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
