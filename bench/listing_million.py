"""Listings of a branch of 1,000,000 keys, on SQLite and on PostgreSQL, in one run.

    python3 bench/listing_million.py                      # 1,000,000 keys / 100 folders
    python3 bench/listing_million.py --folders 1000 --no-http
    python3 bench/listing_million.py --keys 100000 --reps 3 --no-postgres   # a quick look

The branch is built through the metadata store's own API (``commit``), not over
HTTP: one commit per folder (``--keys / --folders`` Puts each, one object row
per key: an empty file, ETag of no bytes), then one last commit that rewrites
the first key of every folder, so ``HEAD~1`` is an older commit holding every
key.  SQLite is opened without fsync for the build (``durable=False``), the
PostgreSQL this script starts (``tests/pgserver.py``) runs with fsync off: the
build is set-up, not what is measured.  PostgreSQL gets ``VACUUM ANALYZE``
after the build, as autovacuum would soon do on a real server.

What is timed, in process (``s3.ops.listing.collect``: the plan every
ListObjects/ListObjectsV2 runs, without HTTP), the median of ``--reps`` runs:

* root listing with delimiter ``/``: the first page (max-keys 1000) and every
  page (following NextContinuationToken, as ``aws s3 ls`` does);
* a 1,000-key page without delimiter (from the start, and from the middle);
* a page inside one folder (prefix ``fNNN/``, delimiter ``/``);
* at ``HEAD~1`` (a pinned bucket ``<commit>.master.bench``): the root listing
  with delimiter and a 1,000-key page;
* at the commit made halfway through the build (half the folders exist): the
  root listing with delimiter, every page.

Then, on the SQLite data folder, a real ``s3gw serve`` (loopback port) and:
``aws s3 ls s3://master.bench/`` (wall time, the cli's own start-up
included, and ``aws --version`` for that start-up alone); boto3
``list_objects_v2`` (root with delimiter, and a 1,000-key page) on a warm
client; the same two requests as raw HTTP GETs (``http.client``, keep-alive,
no signature: the server's part without the client's XML parsing, which
takes botocore most of a 1,000-key page's time).

Every phase is bounded: the build stops at ``--build-limit`` seconds, a
measurement stops repeating once it has used ``--measure-limit`` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import free_port, wait_listening  # noqa: E402
from s3gw.pfs.model import ObjectInfo, Put  # noqa: E402
from s3gw.s3.ops import listing  # noqa: E402

REPO, BRANCH = "bench", "master"
BUCKET = f"{BRANCH}.{REPO}"
EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"


class Built:
    def __init__(self):
        self.seconds = 0.0
        self.mid: str | None = None        # the commit after half the folders
        self.previous: str | None = None   # HEAD~1: every key, before the last commit


def build(meta, keys: int, folders: int, limit: float) -> Built:
    """The branch: one commit per folder, then one commit rewriting a key per folder."""
    out = Built()
    t0 = time.perf_counter()
    meta.create_branch(REPO, BRANCH, 0)
    per = keys // folders
    for f in range(folders):
        changes = [Put(f"f{f:04d}/k{i:07d}", ObjectInfo(size=0, etag=EMPTY_MD5, manifest=b""))
                   for i in range(per)]
        c = meta.commit(REPO, BRANCH, changes, f"folder {f}", 1_000_000_000 * (f + 1))
        if f == folders // 2 - 1:
            out.mid = c.id
        elapsed = time.perf_counter() - t0
        if f % max(1, folders // 10) == 0 or f == folders - 1:
            print(f"    {(f + 1) * per:>9,} keys in {elapsed:6.1f} s", flush=True)
        if elapsed > limit:
            raise SystemExit(f"build: past --build-limit {limit:.0f} s at folder {f}")
    out.previous = meta.get_branch(REPO, BRANCH).head
    meta.commit(REPO, BRANCH, [Put(f"f{f:04d}/k{0:07d}", ObjectInfo(
        size=0, etag=EMPTY_MD5, manifest=b"")) for f in range(folders)], "rewrite",
        1_000_000_000 * (folders + 2))
    out.seconds = time.perf_counter() - t0
    return out


def median_ms(fn, reps: int, budget: float) -> tuple[float, int]:
    """(median ms, runs): ``fn`` once to warm up, then up to ``reps`` times within
    ``budget`` seconds."""
    fn()
    times = []
    t_end = time.perf_counter() + budget
    while len(times) < reps:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if time.perf_counter() > t_end:
            break
    return statistics.median(times) * 1000, len(times)


def all_pages(meta, prefix, delimiter, commit=None, max_keys=1000):
    """Every page of a listing, each resuming after the last key or prefix returned."""
    after, pages, n = None, 0, 0
    while True:
        page = listing.collect(meta, REPO, BRANCH, prefix, delimiter, after, max_keys, commit)
        pages += 1
        n += len(page.entries) + len(page.prefixes)
        if not page.truncated:
            return pages, n
        after = page.last


def measure(meta, built: Built, keys: int, folders: int, reps: int, budget: float) -> list:
    """[(what, ms, runs, result)] for one backend."""
    rows = []
    per = keys // folders

    def one(what, fn, check):
        result = fn()
        check(result)
        ms, runs = median_ms(fn, reps, budget)
        rows.append((what, ms, runs, result))
        print(f"    {what:<52} {ms:9.1f} ms  (median of {runs})", flush=True)

    def page(prefix, delimiter, after=None, commit=None):
        p = listing.collect(meta, REPO, BRANCH, prefix, delimiter, after, 1000, commit)
        return f"{len(p.entries)} keys, {len(p.prefixes)} prefixes"

    want_root = f"0 keys, {min(folders, 1000)} prefixes"
    one("root, delimiter /, first page", lambda: page("", "/"),
        lambda r: _expect(r, want_root))
    one("root, delimiter /, all pages", lambda: "%d pages, %d items" % all_pages(meta, "", "/"),
        lambda r: _expect(r.split(", ")[1], f"{folders} items"))
    one("1,000-key page, no delimiter, from the start", lambda: page("", None),
        lambda r: _expect(r, "1000 keys, 0 prefixes"))
    middle = f"f{folders // 2:04d}/k{per // 2:07d}"
    one("1,000-key page, no delimiter, from the middle", lambda: page("", None, middle),
        lambda r: _expect(r, "1000 keys, 0 prefixes"))
    folder = f"f{folders // 2:04d}/"
    one(f"one folder ({folder}), delimiter /, first page", lambda: page(folder, "/"),
        lambda r: _expect(r, f"{min(per, 1000)} keys, 0 prefixes"))
    prev = built.previous
    one("HEAD~1: root, delimiter /, all pages",
        lambda: "%d pages, %d items" % all_pages(meta, "", "/", prev),
        lambda r: _expect(r.split(", ")[1], f"{folders} items"))
    one("HEAD~1: 1,000-key page, no delimiter", lambda: page("", None, None, prev),
        lambda r: _expect(r, "1000 keys, 0 prefixes"))
    one("halfway commit: root, delimiter /, all pages",
        lambda: "%d pages, %d items" % all_pages(meta, "", "/", built.mid),
        lambda r: _expect(r.split(", ")[1], f"{folders // 2} items"))
    return rows


def _expect(got: str, want: str) -> None:
    if got != want:
        raise AssertionError(f"listing answered {got!r}, expected {want!r}")


# -- HTTP: a real server on the SQLite data folder -------------------------------------------
def http_rows(data_dir: str, folders: int, reps: int) -> list:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = open(os.path.join(os.path.dirname(data_dir), "server.log"), "wb")
    proc = subprocess.Popen([sys.executable, "-m", "s3gw", "serve", "--data", data_dir,
                             "--port", str(port), "--console", "off"],
                            stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    rows = []
    try:
        if not wait_listening(port, proc, 30):
            raise SystemExit("s3gw serve did not start: see server.log")
        home = tempfile.mkdtemp(prefix="awshome-")
        env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                   AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
                   AWS_CONFIG_FILE=os.path.join(home, "config"),
                   AWS_SHARED_CREDENTIALS_FILE=os.path.join(home, "creds"), HOME=home)

        def aws(*args):
            p = subprocess.run(["aws", *args], env=env, capture_output=True, text=True,
                               timeout=120)
            if p.returncode != 0:
                raise SystemExit(f"aws {' '.join(args)}: {p.stderr[-500:]}")
            return p.stdout

        out = aws("--endpoint-url", endpoint, "s3", "ls", f"s3://{BUCKET}/")
        lines = [line for line in out.splitlines() if line.strip().startswith("PRE ")]
        _expect(f"{len(lines)} PRE lines", f"{folders} PRE lines")
        ms, runs = median_ms(lambda: aws("--endpoint-url", endpoint, "s3", "ls",
                                         f"s3://{BUCKET}/"), reps, 60)
        rows.append(("aws s3 ls s3://master.bench/ (process wall time)", ms, runs,
                     f"{len(lines)} PRE lines"))
        ms, runs = median_ms(lambda: aws("--version"), reps, 60)
        rows.append(("aws --version (the cli's start-up alone)", ms, runs, ""))

        import boto3
        from botocore.config import Config
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench",
                          aws_secret_access_key="bench", region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}))

        def v2():
            r = s3.list_objects_v2(Bucket=BUCKET, Delimiter="/")
            return f"{r['KeyCount']} items, truncated {r['IsTruncated']}"
        result = v2()
        ms, runs = median_ms(v2, reps, 60)
        rows.append(("boto3 list_objects_v2(Delimiter='/'), warm client", ms, runs, result))

        def v2_page():
            r = s3.list_objects_v2(Bucket=BUCKET, MaxKeys=1000)
            return f"{r['KeyCount']} keys"
        result = v2_page()
        ms, runs = median_ms(v2_page, reps, 60)
        rows.append(("boto3 list_objects_v2(MaxKeys=1000), warm client", ms, runs, result))
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def raw(query):
            def get():
                conn.request("GET", f"/{BUCKET}?{query}")
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    raise SystemExit(f"GET ?{query}: {r.status} {body[:300]!r}")
                return body
            return get
        for query, what in (("list-type=2&delimiter=%2F", "root, delimiter /"),
                            ("list-type=2&max-keys=1000", "1,000-key page")):
            body = raw(query)()
            ms, runs = median_ms(raw(query), reps, 60)
            rows.append((f"raw HTTP GET ?{query} ({what})", ms, runs, f"{len(body):,} bytes"))
        conn.close()
        body = s3.get_object(Bucket=BUCKET, Key="f0000/k0000001")["Body"].read()
        _expect(f"{len(body)} bytes", "0 bytes")
        for what, ms, runs, result in rows:
            print(f"    {what:<52} {ms:9.1f} ms  (median of {runs}) {result}", flush=True)
        shutil.rmtree(home, ignore_errors=True)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    return rows


# -- main --------------------------------------------------------------------------------------
def run_sqlite(args, work: str) -> tuple[Built, list, list]:
    from s3gw.pfs.metadata import SqliteMetadata
    data = os.path.join(work, "data")
    os.makedirs(data)
    meta = SqliteMetadata(os.path.join(data, "meta.sqlite"), durable=False)
    print(f"SQLite: building {args.keys:,} keys in {args.folders} folders", flush=True)
    built = build(meta, args.keys, args.folders, args.build_limit)
    print(f"    built in {built.seconds:.1f} s; measuring", flush=True)
    rows = measure(meta, built, args.keys, args.folders, args.reps, args.measure_limit)
    meta.close()
    http = []
    if not args.no_http:
        print("SQLite over HTTP: s3gw serve on the data folder", flush=True)
        http = http_rows(data, args.folders, args.reps)
    return built, rows, http


def run_postgres(args) -> tuple[Built, list] | str:
    from tests.pgserver import PgServer, available
    why = available()
    if why is not None:
        return why
    import psycopg

    from s3gw.pfs.postgres import PostgresMetadata
    srv = PgServer.in_temp_folder().start(shared_buffers="128MB")    # PostgreSQL's default
    try:
        url = srv.database()
        meta = PostgresMetadata(url)
        print(f"PostgreSQL: building {args.keys:,} keys in {args.folders} folders", flush=True)
        built = build(meta, args.keys, args.folders, args.build_limit)
        t = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        print(f"    built in {built.seconds:.1f} s, VACUUM ANALYZE "
              f"{time.perf_counter() - t:.1f} s; measuring", flush=True)
        rows = measure(meta, built, args.keys, args.folders, args.reps, args.measure_limit)
        meta.close()
        return built, rows
    finally:
        srv.stop()


def markdown(args, results: dict) -> str:
    names = [n for n in ("SQLite", "PostgreSQL") if isinstance(results.get(n), tuple)]
    head = "| listing | " + " | ".join(f"{n} ms" for n in names) + " |"
    lines = [head, "|---|" + "---:|" * len(names)]
    first = results[names[0]][1]
    for i, (what, *_rest) in enumerate(first):
        cells = [f"{results[n][1][i][1]:,.1f}" for n in names]
        lines.append(f"| {what} ({first[i][3]}) | " + " | ".join(cells) + " |")
    lines.append("| build (API commits, one per folder) | "
                 + " | ".join(f"{results[n][0].seconds:,.0f} s" for n in names) + " |")
    for n, v in results.items():
        if isinstance(v, str):
            lines.append(f"\n{n}: skipped ({v})")
    if results.get("http"):
        lines += ["", "| over HTTP (SQLite, s3gw serve) | ms | result |", "|---|---:|---|"]
        lines += [f"| {what} | {ms:,.1f} | {result} |" for what, ms, _r, result in results["http"]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--folders", type=int, default=100)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--build-limit", type=float, default=900.0, help="seconds per build")
    ap.add_argument("--measure-limit", type=float, default=30.0,
                    help="seconds of repeats per measurement")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--no-http", action="store_true")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    t0 = time.perf_counter()
    results: dict = {}
    work = tempfile.mkdtemp(prefix="s3gw-list1m-")
    try:
        if not args.no_sqlite:
            built, rows, http = run_sqlite(args, work)
            results["SQLite"], results["http"] = (built, rows), http
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not args.no_postgres:
        results["PostgreSQL"] = run_postgres(args)
    total = time.perf_counter() - t0
    print(f"\n{args.keys:,} keys in {args.folders} folders; median of up to {args.reps} runs; "
          f"{platform.node()} ({os.cpu_count()} cores); whole run {total:.0f} s\n")
    print(markdown(args, results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"keys": args.keys, "folders": args.folders, "seconds": total,
                       "results": {n: (v if isinstance(v, str) else
                                       {"build_s": v[0].seconds, "rows": v[1]})
                                   for n, v in results.items() if n != "http"},
                       "http": results.get("http")}, f, indent=1)


if __name__ == "__main__":
    main()
