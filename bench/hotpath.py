"""Server CPU per byte and per request on the hot paths (a tuning tool, not the user benchmark).

    python bench/hotpath.py                      # 1 GiB PUT+GET x3, 2000 x 4 KiB PUT+GET x3
    python bench/hotpath.py --only put --reps 5 --size-mib 512
    python bench/hotpath.py --only small --small-count 3000

On a 2-core machine shared with other work, wall-clock rates are noisy; the
server's own CPU (all its threads, from /proc) per GB or per request is the
stable figure.  Each repetition prints GB/s (or ops/s), server CPU-s/GB (or
CPU-ms/op), the busiest server threads and the CPU other processes used
meanwhile; the best repetition of each workload is summarised at the end.
Everything talks to 127.0.0.1 (``bench/peers.py``: ``s3gw serve`` in a child
process, fresh temp data dir, fsync on).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import clients as C  # noqa: E402
import peers as P  # noqa: E402

BUCKET = "master.hot"


def _threads(ph) -> str:
    return " ".join(f"{t['name']}={t['cpu_s']:.2f}" for t in ph.cpu["threads"][:8])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--small-count", type=int, default=2000)
    ap.add_argument("--only", default="put,get,small", help="comma list of put, get, small")
    ap.add_argument("--no-fsync", action="store_true")
    ap.add_argument("--fresh", action="store_true",
                    help="do not recycle page-cache pages before each PUT (see clients.recycle_pages)")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    size = args.size_mib * C.MiB
    wd = P.make_workdir("s3gw-hot-")
    h = P.start_s3gw(wd, fsync=not args.no_fsync)
    best: dict[str, tuple] = {}
    try:
        conn = C.RawConnection(h.port)
        assert conn.request("PUT", f"/{BUCKET}").status == 200
        deadline = lambda: time.monotonic() + 300  # noqa: E731
        for rep in range(args.reps):
            if "put" in only or "get" in only:
                key = f"/{BUCKET}/big{rep}"
                if not args.fresh:
                    C.recycle_pages(wd, size * 3 // 2)
                with h.phase(f"put{rep}") as ph:
                    t = conn.put_stream(key, size, C.Pattern(seed=100 + rep), deadline())
                assert t.complete, t.error
                cpu = ph.cpu["cpu_s"] / (size / 1e9)
                print(f"PUT {args.size_mib} MiB: {t.gbps:.3f} GB/s  server {cpu:.2f} CPU-s/GB  "
                      f"peak {ph.peak_kib / 1024:.0f} MiB  other {ph.cpu['other_cores']}  "
                      f"| {_threads(ph)}", flush=True)
                if "put" in only:
                    b = best.get("put")
                    best["put"] = (min(cpu, b[0]) if b else cpu, max(t.gbps, b[1]) if b else t.gbps)
                if "get" in only:
                    with h.phase(f"get{rep}") as ph:
                        t = conn.get_stream(key, deadline())
                    assert t.complete, t.error
                    cpu = ph.cpu["cpu_s"] / (size / 1e9)
                    print(f"GET {args.size_mib} MiB: {t.gbps:.3f} GB/s  server {cpu:.2f} CPU-s/GB  "
                          f"peak {ph.peak_kib / 1024:.0f} MiB  other {ph.cpu['other_cores']}  "
                          f"| {_threads(ph)}", flush=True)
                    b = best.get("get")
                    best["get"] = (min(cpu, b[0]) if b else cpu, max(t.gbps, b[1]) if b else t.gbps)
                conn.request("DELETE", key)
            if "small" in only:
                prefix = f"s{rep}"
                r = None
                for method in ("PUT", "GET"):
                    per = None if method == "PUT" else r.per_client_done
                    with h.phase(f"small{method}{rep}") as ph:
                        r = C.small_objects(h.port, BUCKET, method, args.small_count, prefix=prefix,
                                            deadline=deadline(), per_client=per)
                    assert r.errors == 0, r.first_error
                    ms = ph.cpu["cpu_s"] / r.ops * 1e3
                    print(f"4 KiB {method} x{r.ops}: {r.ops_per_s:.0f}/s  p50 {r.pct(50):.1f} ms "
                          f"p99 {r.pct(99):.1f} ms  server {ms:.2f} CPU-ms/op  "
                          f"cores {ph.cpu['cores']}  other {ph.cpu['other_cores']}  | {_threads(ph)}",
                          flush=True)
                    k = "small_" + method.lower()
                    b = best.get(k)
                    best[k] = (min(ms, b[0]) if b else ms, max(r.ops_per_s, b[1]) if b else r.ops_per_s)
        conn.close()
    finally:
        h.stop()
        shutil.rmtree(wd, ignore_errors=True)
    print("best:", {k: (round(a, 3), round(b, 3)) for k, (a, b) in best.items()},
          "(CPU-s/GB or CPU-ms/op, GB/s or ops/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
