"""Console page timings on a large repo: 10,000 commits, a folder of 100,000 keys.

    python bench/console_pages.py [--keep DIR]

Builds the repo straight through ``SqliteMetadata.commit`` (seconds, instead of
10,000 HTTP PUTs): commit 0 writes ``data/part-000000.csv`` .. ``part-099999.csv``
(one folder of 100,000 keys), commits 1..9,999 each write one file under
``logs/<n % 100>/<n>.txt`` (100 subfolders of 100 files) and every 10th also
deletes a ``data/`` key.  Objects are small inline ones (a few bytes), so the
figures are the metadata and rendering costs, which is what the console adds.
Then it starts ``s3gw serve --console`` on the folder and times each page over
HTTP (median of 5 after one warm-up request; the first, cold request is shown
too).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from s3gw.pfs.metadata import SqliteMetadata          # noqa: E402
from s3gw.pfs.model import Delete, ObjectInfo, Put     # noqa: E402
from s3gw.store.manifest import ChunkRef, Manifest     # noqa: E402
from s3gw.store import hashing                         # noqa: E402

KEYS = 100_000
COMMITS = 10_000


def _obj(data: bytes) -> ObjectInfo:
    ref = ChunkRef(bytes(hashing.chunk_id(data)), hashing.chunk_checksum(data),
                   len(data), data)
    return ObjectInfo(size=len(data), etag=hashlib.md5(data).hexdigest(),
                      manifest=Manifest([ref]).pack(), headers={"content-type": "text/csv"})


def build(data_dir: str) -> dict:
    meta = SqliteMetadata(os.path.join(data_dir, "meta.sqlite"), durable=False)
    t0 = time.time_ns()
    meta.create_branch("big", "master", t0)
    started = time.perf_counter()
    puts = [Put(f"data/part-{i:06d}.csv", _obj(f"id,value\n{i},{i * 7}\n".encode()))
            for i in range(KEYS)]
    first = meta.commit("big", "master", puts, "PUT 100000 keys under /data/", t0)
    ids = [first.id]
    for n in range(1, COMMITS):
        changes = [Put(f"logs/{n % 100:02d}/{n:05d}.txt", _obj(f"line {n}\n".encode()))]
        if n % 10 == 0:
            changes.append(Delete(f"data/part-{n:06d}.csv"))
        c = meta.commit("big", "master", changes, f"PUT /logs/{n % 100:02d}/{n:05d}.txt",
                        t0 + n * 1000)
        ids.append(c.id)
    meta.close()
    return {"first": ids[0], "middle": ids[COMMITS // 2], "head": ids[-1],
            "prev": ids[-2], "build_s": time.perf_counter() - started}


def timed(base: str, path: str, runs: int = 5) -> tuple[float, float, int]:
    def once() -> tuple[float, int]:
        t = time.perf_counter()
        with urllib.request.urlopen(base + path, timeout=120) as r:
            body = r.read()
            assert r.status == 200, (path, r.status)
        return (time.perf_counter() - t) * 1e3, len(body)
    cold, size = once()
    warm = [once()[0] for _ in range(runs)]
    return cold, statistics.median(warm), size


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", help="build (or reuse) the data folder here")
    args = ap.parse_args()
    root = args.keep or tempfile.mkdtemp(prefix="console-bench-")
    data = os.path.join(root, "data")
    os.makedirs(data, exist_ok=True)
    ids = build(data)
    print(f"built {COMMITS} commits, {KEYS} keys in data/ in {ids['build_s']:.1f} s ({data})")

    from tests.conftest import ServerProcess, free_port
    port = free_port()
    srv = ServerProcess(data, env={"PYTHONPATH": os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))}, extra_args=["--console", f"127.0.0.1:{port}",
                                                  "--log-level", "warning"]).start()
    base = f"http://127.0.0.1:{port}"
    time.sleep(0.5)
    pages = [
        ("repos overview", "/"),
        ("repo page", "/repo/big"),
        ("commit log, first page (50)", "/repo/big/log/master"),
        ("commit log, page at depth 5,000", f"/repo/big/log/master?before={ids['middle']}"),
        ("commit page, 100,000 changes (first 200)", f"/repo/big/commit/{ids['first']}"),
        ("commit page, head", f"/repo/big/commit/{ids['head']}"),
        ("root folder (branch)", "/repo/big/files/master"),
        ("data/ folder, first 200 of ~99,000 (branch)", "/repo/big/files/master?prefix=data/"),
        ("data/ folder, page after part-050000 (branch)",
         "/repo/big/files/master?prefix=data/&after=data/part-050000.csv"),
        ("data/ folder, first 200 at commit 5,000", f"/repo/big/files/{ids['middle']}?prefix=data/"),
        ("logs/ folder: 100 subfolders (branch)", "/repo/big/files/master?prefix=logs/"),
        ("logs/ folder: 100 subfolders at commit 5,000",
         f"/repo/big/files/{ids['middle']}?prefix=logs/"),
        ("file page with CSV preview", "/repo/big/file/master?path=data/part-000001.csv"),
        ("diff head^ .. head", f"/repo/big/diff?from={ids['prev']}&to={ids['head']}"),
        ("diff commit 5,000 .. head (5,000 commits apart)",
         f"/repo/big/diff?from={ids['middle']}&to={ids['head']}"),
        ("pipelines DAG", "/dag"),
        ("live-refresh poll (/api/version)", "/api/version"),
    ]
    print(f"{'page':52} {'cold ms':>9} {'warm ms':>9} {'bytes':>9}")
    try:
        for name, path in pages:
            cold, warm, size = timed(base, path)
            print(f"{name:52} {cold:9.1f} {warm:9.1f} {size:9d}")
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
