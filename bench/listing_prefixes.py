"""Root listing with a delimiter (``aws s3 ls s3://bucket/``) over many keys in few
folders, on SQLite and on PostgreSQL: the cost should follow the page (the folders),
not the bucket.  Times ``s3.ops.listing.collect`` with the old fixed batch after each
seek (``_FIRST = 1000``) and the growing one.

    python3 bench/listing_prefixes.py [--keys 100000] [--folders 100] [--pg-keys 20000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from s3gw.pfs.model import ObjectInfo, Put  # noqa: E402
from s3gw.s3.ops import listing  # noqa: E402


def fill(meta, keys: int, folders: int) -> None:
    meta.create_branch("r", "master", 0)
    obj = ObjectInfo(size=1, etag="e", manifest=b"")
    per = keys // folders
    for f in range(folders):
        meta.commit("r", "master", [Put(f"f{f:03d}/k{i:06d}", obj) for i in range(per)], "m", 1)


def timed(meta, first: int, runs: int = 5) -> float:
    listing._FIRST = first
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        page = listing.collect(meta, "r", "master", "", "/", None, 1000)
        best = min(best, time.perf_counter() - t)
    assert len(page.prefixes) > 0 and not page.entries
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--folders", type=int, default=100)
    ap.add_argument("--pg-keys", type=int, default=20_000)
    args = ap.parse_args()
    from s3gw.pfs.metadata import SqliteMetadata
    with tempfile.TemporaryDirectory() as d:
        meta = SqliteMetadata(os.path.join(d, "meta.sqlite"), durable=False)
        fill(meta, args.keys, args.folders)
        old, new = timed(meta, 1000), timed(meta, 2)
        print(f"sqlite   {args.keys:>8} keys / {args.folders} folders: fixed batch "
              f"{old * 1000:8.1f} ms, growing batch {new * 1000:6.1f} ms")
        meta.close()
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from tests.pgserver import PgServer, available
    if available() is not None:
        print(f"postgres: skipped ({available()})")
        return
    from s3gw.pfs.postgres import PostgresMetadata
    srv = PgServer.in_temp_folder().start()
    try:
        meta = PostgresMetadata(srv.database())
        fill(meta, args.pg_keys, args.folders)
        old, new = timed(meta, 1000), timed(meta, 2)
        print(f"postgres {args.pg_keys:>8} keys / {args.folders} folders: fixed batch "
              f"{old * 1000:8.1f} ms, growing batch {new * 1000:6.1f} ms")
        meta.close()
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
