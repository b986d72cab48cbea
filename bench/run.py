"""Whole-process benchmark: s3gw against this machine's ceilings and the local peers.

    python bench/run.py                 # 1 GiB objects, 8x4 KiB clients, moto + s3rver, ~5-10 min
    python bench/run.py --quick         # ~1-2 minutes, smaller sizes and time limits
    python bench/run.py --big 10        # also a 10 GiB raw PUT/GET through s3gw (peak RSS bound)
    python bench/run.py --no-peers --json /tmp/r.json
    python bench/run.py --pure          # s3gw on its pure-Python twin (sizes capped)

In one run, on this machine:

1. ceilings: single-core MD5 (hashlib over a preallocated buffer), loopback
   socket (raw sender -> the raw client), a bare trio+h11 GET sender and PUT
   sink (same raw client), disk writes of 1 MiB files (tmp + fsync + rename in
   the data folder's filesystem);
2. s3gw (``s3gw serve``, fresh data dir, fsync on) and each peer (moto's
   server, s3rver) in turn: single-stream PUT/GET of a generated object with
   the raw client and with boto3 (put_object/get_object, upload_file/
   download_file), aws cli ``s3 cp`` up and down; peak RSS and per-thread
   CPU per phase;
3. 4 KiB PUT/GET with 8 concurrent keep-alive clients, in rounds that
   alternate between the servers (fresh ones, all running): round r runs
   every server in turn, starting with a different one each round, and each
   server's figure is the median of its rounds.  The machine's speed moves by
   tens of percent within minutes, so a ratio of two servers measured minutes
   apart says as much about the clock as about the servers.  A warm-up pass
   (half a round, at least 200 PUT + GET per server) comes first and is not
   counted;
4. the ``--big`` PUT/GET through the s3gw server of the rounds (with their
   small objects in it);
5. a Markdown table (printed and stored in the JSON) with each s3gw figure as
   a ratio to its ceiling.

Every transfer has a time limit (``--time-limit``): a slow server yields a
partial rate (marked ``*``), never a hang.  All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import clients as C  # noqa: E402
import peers as P  # noqa: E402

MiB = C.MiB
GiB = 1 << 30
BUCKET = "master.bench"
T0 = time.monotonic()


def progress(msg: str, end: str = "\n") -> None:
    print(f"[{time.monotonic() - T0:7.1f} s] {msg}", end=end, flush=True)


def done(msg: str) -> None:
    print(f" {msg}", flush=True)


def fmt_size(n: int) -> str:
    if n >= GiB and n % GiB == 0:
        return f"{n // GiB} GiB"
    if n >= GiB:
        return f"{n / GiB:.2f} GiB"
    return f"{n / MiB:.0f} MiB"


# ----------------------------------------------------------------------------------------------
# machine info


def machine_info(pure: bool) -> dict:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except OSError:
        pass
    env = dict(os.environ)
    if pure:
        env["S3GW_PUREPYTHON"] = "1"
    try:
        ver = subprocess.run([sys.executable, "-m", "s3gw", "version"], capture_output=True, text=True,
                             timeout=60, env=env, cwd=os.path.dirname(HERE)).stdout.strip()
    except Exception as e:  # noqa: BLE001
        ver = f"unavailable: {e}"
    info = {"cpu": cpu, "cores": os.cpu_count(), "mem_mib": mem, "kernel": platform.release(),
            "python": sys.version.split()[0], "s3gw_version": ver,
            "s3gw_implementation": "pure" if pure or "pure" in ver.split("chunker:")[-1][:20] else "native",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    for mod in ("boto3", "botocore", "moto", "awscli", "h11", "trio"):
        try:
            info[f"{mod}_version"] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            info[f"{mod}_version"] = None
    try:
        info["node_version"] = subprocess.run(["node", "--version"], capture_output=True, text=True,
                                              timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001
        info["node_version"] = None
    try:
        with open(os.path.join(P.PEERS_DIR, "node_modules", "s3rver", "package.json")) as f:
            info["s3rver_version"] = json.load(f)["version"]
    except Exception:  # noqa: BLE001
        info["s3rver_version"] = None
    return info


# ----------------------------------------------------------------------------------------------
# ceilings


def ceiling_md5(total: int) -> dict:
    """hashlib.md5 over a preallocated buffer (up to 64 MiB, cycled), 1 MiB updates, best of 2."""
    buf = memoryview(bytearray(os.urandom(min(64 * MiB, total))))
    best = 0.0
    for _ in range(2):
        h = hashlib.md5()
        done_bytes = 0
        t0 = time.perf_counter()
        while done_bytes < total:
            for off in range(0, len(buf), MiB):
                h.update(buf[off:off + MiB])
            done_bytes += len(buf)
        dt = time.perf_counter() - t0
        best = max(best, done_bytes / dt / 1e9)
    return {"gbps": round(best, 3), "bytes": total, "how": "hashlib.md5, 1 MiB updates, best of 2"}


def ceiling_sender(mode: str, size: int, limit: float) -> dict:
    rates = []
    with P.CeilingSender(mode) as s:
        for _ in range(2):
            t = C.raw_get_from_sender(s.port, size, time.monotonic() + limit)
            if t.complete:
                rates.append(t.gbps)
    return {"gbps": round(max(rates), 3) if rates else None, "runs": [round(r, 3) for r in rates],
            "bytes": size}


def ceiling_h11_put(size: int, limit: float) -> dict:
    rates = []
    with P.CeilingSender("h11-sink") as s:
        for _ in range(2):
            t = C.raw_put_to_sink(s.port, size, C.Pattern(seed=5), time.monotonic() + limit)
            if t.complete:
                rates.append(t.gbps)
    return {"gbps": round(max(rates), 3) if rates else None, "runs": [round(r, 3) for r in rates],
            "bytes": size}


def ceiling_disk(folder: str, count: int, limit: float) -> dict:
    """1 MiB files written tmp + fsync + rename by one thread.

    The files stay until the run ends (the workdir goes then): on this
    machine's ext4 (no journal) every file created in the next ~35 s skips
    each recently deleted inode, which cost file-per-object servers (s3gw,
    s3rver) up to 0.7 ms of CPU per new file, a handicap the harness itself
    would impose.  Each server's data stays for the same reason."""
    d = os.path.join(folder, "disk-ceiling")
    os.makedirs(d, exist_ok=True)
    pat = C.Pattern(seed=9)
    deadline = time.monotonic() + limit
    n = 0
    t0 = time.perf_counter()
    for i in range(count):
        tmp = os.path.join(d, f".tmp-{i}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, pat.block(i))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(d, f"{i:08d}"))
        n += 1
        if time.monotonic() > deadline:
            break
    dt = time.perf_counter() - t0
    return {"gbps": round(n * MiB / dt / 1e9, 3), "files": n, "how": "1 MiB tmp+fsync+rename, one thread"}


def recycled(folder: str, size: int, fn):
    """``fn()`` after recycling 1.5 x ``size`` of page cache, as before each raw PUT
    (``paired_puts``)."""
    C.recycle_pages(folder, size * 3 // 2)
    return fn()


def ceiling_disk_stream(folder: str, size: int, limit: float, name: str = "disk-stream-ceiling") -> dict:
    """``size`` bytes as 1 MiB files from one thread, each one's writeback started as
    soon as it is written (``sync_file_range``), then every file ``fdatasync``'d: how
    fast one thread makes that many new bytes durable, written the way s3gw's chunk
    thread writes an upload's chunks (files kept, like ``ceiling_disk``'s).  Its CPU
    time is recorded: on this VM a first touch of a page is a host fault, so copying
    into fresh page cache can cost the thread more than the disk does."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    start_writeback = getattr(libc, "sync_file_range", None)
    d = os.path.join(folder, name)
    os.makedirs(d, exist_ok=True)
    pat = C.Pattern(seed=10)
    deadline = time.monotonic() + limit
    fds = []
    t0, c0 = time.perf_counter(), time.thread_time()
    try:
        for i in range(max(1, size // MiB)):
            fd = os.open(os.path.join(d, f"{i:08d}"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            fds.append(fd)
            os.write(fd, pat.block(i))
            if start_writeback is not None:
                # SYNC_FILE_RANGE_WRITE: start writing the whole file back, do not wait
                start_writeback(fd, ctypes.c_longlong(0), ctypes.c_longlong(0), 2)
            if time.monotonic() > deadline:
                break
        for fd in fds:
            os.fdatasync(fd)
        dt, cpu = time.perf_counter() - t0, time.thread_time() - c0
    finally:
        for fd in fds:
            os.close(fd)
    return {"gbps": round(len(fds) * MiB / dt / 1e9, 3), "files": len(fds),
            "thread_cpu_s_per_gb": round(cpu / (len(fds) * MiB / 1e9), 2),
            "how": "1 MiB files from one thread, writeback started per file, all fdatasync'd at the end"}


# ----------------------------------------------------------------------------------------------
# one server's workloads


class Bench:
    def __init__(self, args, workdir: str):
        self.args = args
        self.workdir = workdir
        self.files: dict[int, str] = {}
        self.md5s: dict[tuple, str] = {}

    def limit(self) -> float:
        return self.args.time_limit

    def deadline(self) -> float:
        return time.monotonic() + self.args.time_limit

    def gen_file(self, size: int) -> str:
        if size not in self.files:
            path = os.path.join(self.workdir, f"upload-{size}.bin")
            C.Pattern(seed=3).write_file(path, size)
            self.files[size] = path
        return self.files[size]

    def md5(self, seed: int, size: int, mutate: int | None = None) -> str:
        key = (seed, size, mutate)
        if key not in self.md5s:
            self.md5s[key] = C.Pattern(seed=seed, mutate_block=mutate).md5(size)
        return self.md5s[key]


def transfer_record(t: C.Transfer, size: int, expect_md5: str | None = None) -> dict:
    rec = {"gbps": round(t.gbps, 4), "bytes": t.bytes, "size": size, "seconds": round(t.seconds, 3),
           "complete": t.complete, "error": t.error}
    if expect_md5 is not None and t.complete and t.etag:
        rec["etag_ok"] = t.etag == expect_md5
        if not rec["etag_ok"]:
            rec["error"] = f"ETag {t.etag} != MD5 {expect_md5}"
    return rec


def show(rec: dict, phase: dict | None) -> str:
    if rec.get("skipped"):
        return f"skipped ({rec['skipped']})"
    if "ops_per_s" in rec:
        s = f"{rec['ops_per_s']:.0f} ops/s, p50 {rec['p50_ms']} ms, p99 {rec['p99_ms']} ms"
        if rec.get("errors"):
            s += f", {rec['errors']} errors ({rec.get('first_error')})"
    else:
        s = f"{rec['gbps']:.3f} GB/s ({fmt_size(rec['bytes'])} in {rec['seconds']:.1f} s)"
        if not rec["complete"]:
            s += f" PARTIAL: {rec['error']}"
    if phase:
        s += (f"; server peak RSS {phase['peak_rss_mib']:.0f} MiB, {phase['cpu']['cores']} cores"
              f" (client {phase['cpu']['client_cores']}, other processes {phase['cpu']['other_cores']})")
    return s


def run_server(bench: Bench, name: str, out: dict) -> None:
    args = bench.args
    wd = os.path.join(bench.workdir, name)
    os.makedirs(wd, exist_ok=True)
    progress(f"{name}: starting", end="")
    h = start(bench, name, wd)
    done(f"pid {h.pid}, port {h.port}, RSS {h.rss_now_mib()} MiB")
    res = out.setdefault("workloads", {})
    out.setdefault("phases", {})
    out["phases"] = h.phases       # the rounds' and the big phases' are added to it later
    sign = P.CREDENTIALS[name] if name == "moto" else None  # moto refuses anonymous GETs
    try:
        conn = C.RawConnection(h.port, sign=sign)
        r = conn.request("PUT", f"/{BUCKET}")
        conn.close()
        if r.status not in (200, 409):
            raise P.PeerUnavailable(f"CreateBucket answered {r.status}: {r.body[:300]!r}")
        s3 = C.boto3_client(h.endpoint, *P.CREDENTIALS[name])
        size = args.size

        def step(key: str, label: str, fn):
            return run_step(h, name, res, key, label, fn)

        # 1. raw client, one PutObject with Content-Length, then GET
        # (s3gw's several times, each between two MD5 ceilings; the first is the one read back)
        puts = [(f"/{BUCKET}/big-raw", 1)] + [(f"/{BUCKET}/big-raw-{i}", 20 + i)
                                              for i in range(2, args.put_pairs + 1 if name == "s3gw" else 2)]
        put = paired_puts(bench, h, name, res, "put_raw", f"PUT {fmt_size(size)} raw client", conn,
                          puts, size, bench.limit())
        if put["complete"]:
            paired_gets(bench, h, name, res, "get_raw", f"GET {fmt_size(size)} raw client", conn,
                        f"/{BUCKET}/big-raw", size, bench.limit())
        else:
            res["get_raw"] = {"skipped": "PUT did not complete"}
        conn.close()

        # a slow server gets the other big workloads at the size its raw PUT reached in the limit
        if not put["complete"] and put["gbps"] > 0:
            size = max(16 * MiB, int(put["gbps"] * 1e9 * bench.limit() * 0.8) // MiB * MiB)
            progress(f"{name}: slow server: the next big transfers use {fmt_size(size)}")
        out["big_size_used"] = size

        # 2. dedup (s3gw only): the same object with 1 MiB changed in the middle
        if name == "s3gw" and put["complete"] and not args.quick_skip_dedup:
            step("dedup", f"dedup: re-PUT {fmt_size(size)} with 1 MiB changed",
                 lambda: dedup(bench, h, conn, size))
            conn.close()

        # 3. boto3 put_object / get_object (1 MiB reads)
        bput = step("put_boto3", f"boto3 put_object {fmt_size(size)}", lambda: transfer_record(
            C.boto3_put(s3, BUCKET, "big-boto3", size, C.Pattern(seed=2), bench.deadline()), size,
            bench.md5(2, size)))
        step("get_boto3", f"boto3 get_object {fmt_size(size)}",
             lambda: transfer_record(C.boto3_get(s3, BUCKET, "big-boto3", bench.deadline()), size)
             if bput["complete"] else {"skipped": "put_object did not complete"})

        if not in_tool_rounds(bench, name):   # else in tool_rounds
            tool_steps(bench, h, name, res, s3, size,
                       fallback="big-boto3" if bput["complete"] else None)

    finally:
        finish(h, name, out)
        # the data stays until the run ends (see ceiling_disk)


def in_tool_rounds(bench: Bench, name: str) -> bool:
    """Whether ``name``'s client-tool workloads run in ``tool_rounds`` (moto's never:
    its downloads run at ~0.01 GB/s until the time limit stops them)."""
    return bench.args.tool_rounds > 0 and name != "moto"


def tool_steps(bench: Bench, h: P.ServerHandle, name: str, res: dict, s3, size: int,
               suffix: str = "", label: str = "", fallback: str | None = None) -> None:
    """boto3 ``upload_file`` / ``download_file`` (multipart above 8 MiB, 10 threads) and
    ``aws s3 cp`` up / down of a generated file, as ``res[key + suffix]``; each download
    after the same page-cache recycling.  A download whose upload failed reads
    ``fallback`` (another object of that size), if any."""
    args = bench.args
    wd = h.workdir
    path = bench.gen_file(size)
    dl = os.path.join(wd, "download.bin")
    obj = f"tools{suffix}"

    def step(key: str, text: str, fn):
        return run_step(h, name, res, key + suffix, f"{label}{text} {fmt_size(size)}", fn)

    up = step("upload_file", "boto3 upload_file", lambda: transfer_record(
        C.boto3_upload_file(s3, BUCKET, f"{obj}-upload", path, bench.deadline()), size))
    src = f"{obj}-upload" if up["complete"] else fallback
    C.recycle_pages(wd, size * 3 // 2)   # the same page state for every server's downloads
    step("download_file", "boto3 download_file", lambda: transfer_record(
        C.boto3_download_file(s3, BUCKET, src, dl, bench.deadline()), size)
        if src else {"skipped": "nothing uploaded"})
    _rm(dl)

    if not shutil.which("aws") or args.no_awscli:
        res["awscli_up" + suffix] = res["awscli_down" + suffix] = {
            "skipped": "aws cli not installed or --no-awscli"}
        return
    env = C.aws_env(os.path.join(wd, "awshome"), *P.CREDENTIALS[name])
    cup = step("awscli_up", "aws s3 cp up", lambda: transfer_record(
        C.aws_cp(h.endpoint, path, f"s3://{BUCKET}/{obj}-awscli", env, bench.limit(), size), size))
    src = f"{obj}-awscli" if cup["complete"] else fallback
    C.recycle_pages(wd, size * 3 // 2)
    step("awscli_down", "aws s3 cp down", lambda: transfer_record(
        C.aws_cp(h.endpoint, f"s3://{BUCKET}/{src}", dl, env, bench.limit(), size), size)
        if src else {"skipped": "nothing uploaded"})
    _rm(dl)


TOOL_KEYS = ("upload_file", "download_file", "awscli_up", "awscli_down")


def tool_rounds(bench: Bench, names: list[str], results: dict) -> None:
    """The rows whose target is "ahead of every peer" (``TOOL_KEYS``): ``--tool-rounds``
    rounds alternating between fresh servers that all run at once, each round every
    server in turn, starting with a different one; a server's figure is its median
    round (``merge_transfers``).  Why: these clients keep both cores busy and the
    ratios between servers are closer than elsewhere; measured once each, minutes
    apart, a drifting machine put s3gw behind s3rver in a run where alternated runs
    of the same code put it 20-40% ahead."""
    args = bench.args
    handles: dict[str, P.ServerHandle] = {}
    rounds: dict[str, dict] = {}
    try:
        for name in names:
            out = results["servers"].setdefault(name, {})
            if out.get("unavailable") or not in_tool_rounds(bench, name):
                continue
            h = start_for_rounds(bench, name, "tools", "the client-tool rounds", out, TOOL_KEYS)
            if h is not None:
                handles[name] = h
                rounds[name] = {}
        live = list(rounds)
        for rnd in range(args.tool_rounds):
            order = live[rnd % len(live):] + live[:rnd % len(live)] if live else []
            for name in order:
                h = handles[name]
                size = results["servers"][name].get("big_size_used") or args.size
                s3 = C.boto3_client(h.endpoint, *P.CREDENTIALS[name])
                tool_steps(bench, h, name, rounds[name], s3, size, suffix=f".{rnd}",
                           label=f"round {rnd + 1}: ")
        for name in live:
            out = results["servers"][name]
            h = handles[name]
            for key in TOOL_KEYS:
                recs = [(rounds[name].get(f"{key}.{i}"), h.phases.get(f"{key}.{i}"))
                        for i in range(args.tool_rounds)]
                merged, phase = merge_transfers(recs)
                out.setdefault("workloads", {})[key] = merged
                if phase:
                    out.setdefault("phases", {})[key] = phase
    finally:
        for name, h in handles.items():
            finish(h, name, results["servers"][name])


def merge_transfers(recs: list[tuple[dict | None, dict | None]]) -> tuple[dict, dict | None]:
    """One record from a server's rounds of a transfer: the median round (the lower one
    for an even count; a round that did not complete counts as its rate), every
    round's rate in ``rounds_gbps``; the peak RSS of all rounds, the CPU of the median."""
    ran = [(r, ph) for r, ph in recs if r and not r.get("skipped")]
    if not ran:
        first = next((r for r, _ in recs if r), None) or {"skipped": "no round ran"}
        return first, None
    by_rate = sorted(ran, key=lambda x: x[0].get("gbps") or 0.0)
    mid, mid_phase = by_rate[(len(by_rate) - 1) // 2]
    rec = dict(mid, rounds_gbps=[r.get("gbps") for r, _ in ran],
               complete=all(r.get("complete") for r, _ in ran))
    return rec, rounds_phase(mid_phase, [ph for _, ph in ran])


def run_step(h: P.ServerHandle, name: str, res: dict, key: str, label: str, fn) -> dict:
    """Run one measured phase: ``res[key] = fn()``, with the server's RSS and CPU."""
    progress(f"{name}: {label} ...", end="")
    if not h.alive():
        rec = {"skipped": "server died"}
        res[key] = rec
        done(show(rec, None))
        return rec
    with h.phase(key):
        try:
            rec = fn()
        except Exception as e:  # noqa: BLE001
            rec = {"gbps": 0.0, "bytes": 0, "size": 0, "seconds": 0.0, "complete": False,
                   "error": f"{type(e).__name__}: {e}"[:300]}
    res[key] = rec
    done(show(rec, h.phases.get(key)))
    return rec


def start(bench: Bench, name: str, wd: str) -> P.ServerHandle:
    args = bench.args
    os.makedirs(wd, exist_ok=True)
    if name == "s3gw":
        return P.start_s3gw(wd, pure=args.pure, fsync=not args.no_fsync)
    if name == "moto":
        return P.start_moto(wd)
    if name == "s3rver":
        return P.start_s3rver(wd, install=not args.no_install)
    raise P.PeerUnavailable(f"unknown peer {name!r}")


def finish(h: P.ServerHandle, name: str, out: dict) -> None:
    """Stop a server; record its overall peak RSS and (s3gw) any 5xx or traceback it logged."""
    out["overall_peak_rss_mib"] = max(out.get("overall_peak_rss_mib") or 0,
                                      round(h.overall_peak_kib / 1024, 1))
    h.stop()
    if name != "s3gw":
        return
    log = h.log()
    bad = [ln for ln in log.splitlines() if re.search(r"s3gw\.access \S+ \S+ 5\d\d ", ln)]
    tb = log.count("Traceback")
    errs = out.setdefault("server_errors", {"http_5xx": 0, "tracebacks": 0, "first": []})
    errs["http_5xx"] += len(bad)
    errs["tracebacks"] += tb
    if bad or tb:
        errs["first"].append((bad[:3], log[log.find("Traceback"):][:1500] if tb else ""))
        progress(f"s3gw: the server logged {len(bad)} 5xx answers and {tb} tracebacks (see the JSON)")


def start_for_rounds(bench: Bench, name: str, tag: str, what: str, out: dict,
                     keys: tuple) -> P.ServerHandle | None:
    """A fresh server for ``what``, in its own folder, with the benchmark's bucket; None
    (and ``keys`` marked skipped, with why) if it cannot start."""
    progress(f"{name}: starting for {what}", end="")
    h = None
    try:
        h = start(bench, name, os.path.join(bench.workdir, f"{name}-{tag}"))
        sign = P.CREDENTIALS[name] if name == "moto" else None
        conn = C.RawConnection(h.port, sign=sign)
        r = conn.request("PUT", f"/{BUCKET}")
        conn.close()
        if r.status not in (200, 409):
            raise P.PeerUnavailable(f"CreateBucket answered {r.status}: {r.body[:300]!r}")
    except Exception as e:  # noqa: BLE001
        done("")
        progress(f"{name}: unavailable for {what}: {str(e)[:300]}")
        for key in keys:
            out.setdefault("workloads", {})[key] = {"skipped": str(e)[:300]}
        if h is not None:
            finish(h, name, out)
        return None
    done(f"pid {h.pid}, port {h.port}")
    return h


def small_rounds(bench: Bench, names: list[str], results: dict) -> None:
    """4 KiB PUT then GET with 8 clients, ``--small-rounds`` rounds alternating between
    fresh servers (all running at once); then s3gw's ``--big`` PUT/GET on its server."""
    args = bench.args
    handles: dict[str, P.ServerHandle] = {}
    rounds: dict[str, list] = {}
    try:
        for name in names:
            out = results["servers"].setdefault(name, {})
            if out.get("unavailable"):
                continue
            h = start_for_rounds(bench, name, "small", "the 4 KiB rounds", out, ("small_put",))
            if h is not None:
                handles[name] = h
            rounds[name] = []
        # The dirty pages the big transfers left (gigabytes, for every server) go to the
        # disk first, so that their writeback does not queue in front of the rounds'
        # flushes: a server that syncs each PUT (s3gw) would otherwise pay for them.
        results["config"]["settle_s"] = settle_disk()
        live = [n for n in names if n in handles]
        n = args.small_count
        # a warm-up pass, not measured: connections, caches and (node) the JIT
        # (s3rver's rate kept rising over its first thousand PUTs)
        warm = max(200, n // 2)
        progress(f"4 KiB rounds: warm-up, {warm} PUT + GET per server (not measured)", end="")
        for name in live:
            sign = P.CREDENTIALS[name] if name == "moto" else None
            port = handles[name].port
            w = C.small_objects(port, BUCKET, "PUT", warm, deadline=bench.deadline(), sign=sign,
                                prefix="warm")
            C.small_objects(port, BUCKET, "GET", 0, deadline=bench.deadline(), sign=sign,
                            prefix="warm", per_client=w.per_client_done)
        done("")
        for rnd in range(args.small_rounds):
            order = live[rnd % len(live):] + live[:rnd % len(live)] if live else []
            for name in order:
                rounds[name].append(small_round(bench, handles[name], name, rnd, n))
        for name in live:
            out = results["servers"][name]
            h = handles[name]
            for key in ("small_put", "small_get"):
                recs = [(r.get(f"{key}.{i}"), h.phases.get(f"{key}.{i}"))
                        for i, r in enumerate(rounds[name])]
                merged, phase = merge_rounds(recs)
                out.setdefault("workloads", {})[key] = merged
                if phase:
                    out.setdefault("phases", {})[key] = phase
            if name == "s3gw" and args.big:
                huge(bench, h, out, results["ceilings"])
    finally:
        for name, h in handles.items():
            finish(h, name, results["servers"][name])


def small_round(bench: Bench, h: P.ServerHandle, name: str, rnd: int, n: int) -> dict:
    """One server's round: ``n`` 4 KiB PUTs, then GETs of what they stored."""
    sign = P.CREDENTIALS[name] if name == "moto" else None
    prefix = f"r{rnd}"
    res: dict = {}

    def put() -> dict:
        return small(C.small_objects(h.port, BUCKET, "PUT", n, deadline=bench.deadline(),
                                     sign=sign, prefix=prefix))

    def get() -> dict:
        if not sput.get("ops"):
            return {"skipped": "no small object was stored"}
        return small(C.small_objects(h.port, BUCKET, "GET", 0, deadline=bench.deadline(),
                                     sign=sign, prefix=prefix, per_client=sput["per_client_done"]))

    sput = run_step(h, name, res, f"small_put.{rnd}", f"round {rnd + 1}: 4 KiB PUT x{n}, 8 clients", put)
    run_step(h, name, res, f"small_get.{rnd}",
             f"round {rnd + 1}: 4 KiB GET x{sput.get('ops', 0)}, 8 clients", get)
    return res


def rounds_phase(mid: dict | None, phases: list[dict | None]) -> dict | None:
    """The phase record of a figure taken from several runs: the CPU of the run the
    figure is (``mid``), the peak RSS of them all."""
    if not mid:
        return None
    return dict(mid, peak_rss_mib=max(ph["peak_rss_mib"] for ph in phases if ph))


def merge_rounds(recs: list[tuple]) -> tuple[dict, dict | None]:
    """One record from a server's rounds: the median round's rate (all rounds listed),
    percentiles over every request; the peak RSS of all rounds, the CPU of the median one."""
    done_ = [(r, ph) for r, ph in recs if r and r.get("ops")]
    if not done_:
        first = next((r for r, _ in recs if r), None) or {"skipped": "no round ran"}
        return first, None
    done_.sort(key=lambda x: x[0]["ops_per_s"])
    mid, mid_phase = done_[(len(done_) - 1) // 2]   # the lower median: never flatters
    lat = sorted(x for r, _ in done_ for x in r["latencies_ms"])
    ran = [r for r, _ in recs if r]
    rec = {"ops": sum(r["ops"] for r, _ in done_), "ops_per_s": mid["ops_per_s"],
           "rounds_ops_per_s": [r["ops_per_s"] for r in ran if r.get("ops")],
           "p50_ms": round(lat[len(lat) // 2], 3),
           "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3),
           "errors": sum(r.get("errors") or 0 for r in ran),
           "complete": all(r.get("complete") for r in ran),
           "first_error": next((r["first_error"] for r in ran if r.get("first_error")), None)}
    return rec, rounds_phase(mid_phase, [ph for _, ph in recs])


def paired_gets(bench: Bench, h: P.ServerHandle, name: str, res: dict, key: str, label: str,
                conn: C.RawConnection, path: str, size: int, limit: float,
                sender_size: int | None = None) -> dict:
    """``--get-pairs`` raw GETs of ``path``, each between two runs of the bare trio+h11
    sender (the GET ceiling): sender, GET, sender, GET, ..., sender (``paired``).

    Why: this VM's sender ceiling moved from 1.96 to 3.04 GB/s between runs, and
    within a run by as much between minutes, so a GET and a ceiling measured
    minutes apart gave ratios that said as much about the clock as about the
    server."""
    ssize = sender_size or size

    def get():
        return transfer_record(conn.get_stream(path, time.monotonic() + limit), size)

    with P.CeilingSender("h11-sink") as s:
        def sender() -> float | None:
            t = C.raw_get_from_sender(s.port, ssize, time.monotonic() + limit)
            return round(t.gbps, 4) if t.complete else None
        return paired(h, name, res, key, label, [get] * max(1, bench.args.get_pairs), sender,
                      "the sender")


def paired_puts(bench: Bench, h: P.ServerHandle, name: str, res: dict, key: str, label: str,
                conn: C.RawConnection, puts: list[tuple[str, int]], size: int, limit: float,
                recycle: bool = True) -> dict:
    """Raw PUTs of ``size`` new bytes, ``(path, seed)`` each, each between two runs of the
    single-core MD5 ceiling: MD5, PUT, MD5, PUT, ..., MD5 (``paired``).  Each PUT
    stores different data (its own seed), so every one writes ``size`` new bytes.

    Why: the same as ``paired_gets``; the MD5 ceiling measured once at the start of
    a run is compared with PUTs made minutes later on a machine whose speed drifts.

    With ``recycle``, each PUT starts with the same page state (``C.recycle_pages``,
    outside the server's phase): this VM hands free memory back to its host
    (virtio-balloon free page reporting), and a page cache that grows into it
    costs 2.6-3.1 CPU-s per GB of new file data against 0.3 on pages freed
    moments before, whoever writes.  Unrecycled, a PUT's rate depended on how much
    the run had written and deleted before it.  The ``--big`` PUT (10 GiB, more than
    any recycled pool) is measured without: it shows the other state, as does its
    disk ceiling."""
    def put(path: str, seed: int):
        expect = bench.md5(seed, size) if size <= CHECKED_ETAG_MAX else None   # before the pairs
        return lambda: transfer_record(conn.put_stream(path, size, C.Pattern(seed=seed),
                                                       time.monotonic() + limit), size, expect)

    def md5() -> float | None:
        return ceiling_md5(PAIRED_MD5_BYTES)["gbps"]

    before = (lambda: recycled(h.workdir, size, lambda: None)) if recycle else None
    return paired(h, name, res, key, label, [put(p, seed) for p, seed in puts], md5, "MD5",
                  before)


PAIRED_MD5_BYTES = 256 * MiB
CHECKED_ETAG_MAX = 2 * GiB     # a bigger PUT's ETag is not checked (the client's MD5 would take minutes)


def paired(h: P.ServerHandle, name: str, res: dict, key: str, label: str, runs: list,
           ceiling, what: str, before=None) -> dict:
    """``runs`` (each returns a transfer record, as ``res[key]``), each between two
    measurements of its ceiling: ceiling, run, ceiling, ..., ceiling.  Each run is
    compared with the mean of the ceilings on either side of it; the record holds
    the median run (its rate, all runs listed), the median of those ratios and of
    the ceilings, the peak RSS of every run and the CPU of the median one.  Only
    the runs are inside the server's phase (``before()``, if given, runs before each
    run, outside it).  Stops after a run that did not complete."""
    recs: list[tuple[dict, dict | None]] = []
    ceilings: list[float | None] = [ceiling()]
    for i, fn in enumerate(runs):
        if before is not None:
            before()
        rec = run_step(h, name, res, key, f"{label} ({i + 1}/{len(runs)})", fn)
        recs.append((rec, h.phases.get(key)))
        ceilings.append(ceiling())
        if not rec.get("complete"):
            break
    rec, phase = merge_pairs(recs, ceilings)
    res[key] = rec
    if phase is not None:
        h.phases[key] = phase
    if rec.get("ratio") is not None:
        progress(f"{name}: {label}: median {rec['gbps']:.3f} GB/s, {rec['ratio']:.2f} of {what} "
                 f"beside it ({what} median {rec['ceiling_gbps']:.3f} GB/s)")
    return rec


def merge_pairs(recs: list[tuple[dict, dict | None]], ceilings: list[float | None]) -> tuple[dict, dict | None]:
    """``paired``'s record: the median run; ``ratio`` the median of each complete run's
    rate over the mean of the ceiling measurements on either side of it."""
    pairs = []
    for i, (rec, ph) in enumerate(recs):
        around = [v for v in ceilings[i:i + 2] if v]
        if rec.get("complete") and around:
            ceiling = sum(around) / len(around)
            pairs.append((rec, ph, ceiling, rec["gbps"] / ceiling))
    if not pairs:
        rec = dict(recs[-1][0]) if recs else {"skipped": "nothing ran"}
        rec["ceiling_runs"] = ceilings
        return rec, (recs[-1][1] if recs else None)
    by_rate = sorted(pairs, key=lambda x: x[0]["gbps"])
    mid, mid_phase, _, _ = by_rate[(len(by_rate) - 1) // 2]   # the lower median
    ratios = sorted(p[3] for p in pairs)
    means = sorted(p[2] for p in pairs)
    rec = dict(mid)
    rec.update({"runs_gbps": [p[0]["gbps"] for p in pairs], "ceiling_runs": ceilings,
                "ratios": [round(p[3], 3) for p in pairs],
                "ratio": round(ratios[(len(ratios) - 1) // 2], 3),
                "ceiling_gbps": round(means[(len(means) - 1) // 2], 3)})
    return rec, rounds_phase(mid_phase, [p[1] for p in pairs])


def huge(bench: Bench, h: P.ServerHandle, out: dict, ceilings: dict) -> None:
    """The ``--big`` raw PUT and GET (s3gw): its peak RSS stays bounded.  First the
    disk's own rate for that many new bytes (``disk_stream_big``): a PUT is durable
    before its answer, and this VM's disk takes a few GiB much faster than it
    sustains more."""
    args = bench.args
    res = out.setdefault("workloads", {})
    big = args.big * GiB
    free = shutil.disk_usage(h.workdir).free
    if free < big + 4 * GiB:
        res["put_raw_big"] = {"skipped": f"only {free / GiB:.1f} GiB free"}
        return
    lim = max(bench.limit(), args.big * 60)
    if free >= 2 * big + 4 * GiB:
        progress(f"ceiling: one thread writes {fmt_size(big)} to files and syncs them ...", end="")
        try:
            ceilings["disk_stream_big"] = ceiling_disk_stream(bench.workdir, big, lim,
                                                              "disk-stream-ceiling-big")
            done(f"{ceilings['disk_stream_big']['gbps']} GB/s")
        except OSError as e:
            ceilings["disk_stream_big"] = {"gbps": None, "error": f"{type(e).__name__}: {e}"}
            done(f"failed: {e}")
    else:
        ceilings["disk_stream_big"] = {"gbps": None, "error": f"only {free / GiB:.1f} GiB free"}
    conn = C.RawConnection(h.port)
    bp = paired_puts(bench, h, "s3gw", res, "put_raw_big", f"PUT {fmt_size(big)} raw client", conn,
                     [(f"/{BUCKET}/huge", 11)], big, lim, recycle=False)
    if bp["complete"]:
        paired_gets(bench, h, "s3gw", res, "get_raw_big", f"GET {fmt_size(big)} raw client", conn,
                    f"/{BUCKET}/huge", big, lim, sender_size=min(big, 2 * GiB))
    else:
        res["get_raw_big"] = {"skipped": "PUT did not complete"}
    conn.close()
    for key in ("put_raw_big", "get_raw_big"):
        if key in h.phases:
            out.setdefault("phases", {})[key] = h.phases[key]


def small(r: C.OpsResult) -> dict:
    """A round's record (its latencies are pooled by ``merge_rounds``, not stored)."""
    rec = r.summary()
    rec["per_client_done"] = r.per_client_done
    rec["latencies_ms"] = r.latencies_ms
    return rec


def dedup(bench: Bench, h: P.ServerHandle, conn: C.RawConnection, size: int) -> dict:
    def stats() -> dict:
        p = subprocess.run([sys.executable, "-m", "s3gw", "stats", "--json", "--data", h.data_dir],
                           capture_output=True, text=True, timeout=120, cwd=os.path.dirname(HERE))
        return json.loads(p.stdout)

    before = stats()
    mid = size // MiB // 2
    t = conn.put_stream(f"/{BUCKET}/big-raw-v2", size, C.Pattern(seed=1, mutate_block=mid), bench.deadline())
    after = stats()
    rec = transfer_record(t, size, bench.md5(1, size, mid))
    rec["stored_bytes_before"] = before.get("stored_bytes")
    rec["stored_bytes_after"] = after.get("stored_bytes")
    rec["new_bytes_stored"] = (after.get("stored_bytes") or 0) - (before.get("stored_bytes") or 0)
    rec["stats_after"] = after
    return rec


def settle_disk() -> float:
    """``sync`` (every dirty page of the machine to the disk); returns the seconds it took."""
    t0 = time.monotonic()
    os.sync()
    return round(time.monotonic() - t0, 2)


def _rm(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


# ----------------------------------------------------------------------------------------------
# the table


def cell(rec: dict | None) -> str:
    if not rec:
        return "-"
    if rec.get("skipped"):
        return "n/a"
    if "ops_per_s" in rec:
        if not rec.get("ops"):
            return f"failed ({(rec.get('first_error') or '')[:40]})"
        s = f"{rec['ops_per_s']:.0f}/s (p50 {rec['p50_ms']:.1f}, p99 {rec['p99_ms']:.1f} ms)"
        if not rec.get("complete"):
            s += "*"
        return s
    err = rec.get("error") or ""
    if not rec["complete"]:
        if "NotImplemented" in err:
            return "n/a (multipart pending)"
        if rec["bytes"] and rec["gbps"]:
            return f"{rec['gbps']:.3f}*"
        return f"failed ({err[:40]})"
    s = f"{rec['gbps']:.3f}"
    if rec.get("etag_ok") is False:
        s += " (bad ETag)"
    return s


def rss_cell(server: dict, key: str) -> str:
    ph = server.get("phases", {}).get(key) if server else None
    return f"{ph['peak_rss_mib']:.0f}" if ph else "-"


ROWS = [
    # key, label, ceiling key, target
    ("put_raw", "PUT {big}, raw client (GB/s)", "md5", 0.8),
    # the same object again with 1 MiB changed: all but ~2 MiB already stored, so
    # nearly no disk writes: the ingest pipeline against MD5 alone
    ("dedup", "re-PUT {big}, 1 MiB changed (stored already), raw client (GB/s)", "md5", None),
    ("get_raw", "GET {big}, raw client (GB/s)", "h11_get", 0.7),
    ("put_boto3", "boto3 put_object {big} (GB/s)", "md5", None),
    ("get_boto3", "boto3 get_object {big}, 1 MiB reads (GB/s)", "h11_get", None),
    ("upload_file", "boto3 upload_file {big} (GB/s)", "md5", "peers"),
    ("download_file", "boto3 download_file {big} (GB/s)", "h11_get", "peers"),
    ("awscli_up", "aws s3 cp up {big} (GB/s)", "md5", "peers"),
    ("awscli_down", "aws s3 cp down {big} (GB/s)", "h11_get", "peers"),
    ("small_put", "4 KiB PUT, 8 clients", "peer2x", 2.0),
    ("small_get", "4 KiB GET, 8 clients", "peer2x", 2.0),
    ("put_raw_big", "PUT {huge}, raw client (GB/s)", "md5", 0.8),
    ("get_raw_big", "GET {huge}, raw client (GB/s)", "h11_get", 0.7),
]


def rate_of(rec: dict | None) -> float | None:
    if not rec or rec.get("skipped"):
        return None
    if "ops_per_s" in rec:
        return rec["ops_per_s"] if rec.get("ops") else None
    if rec.get("bytes") and rec.get("gbps"):
        return rec["gbps"]
    return None


def build_table(results: dict) -> str:
    servers = results["servers"]
    peer_names = [n for n in ("moto", "s3rver") if n in servers]
    ceil = results["ceilings"]
    cvals = {"md5": (ceil.get("md5") or {}).get("gbps"), "h11_get": (ceil.get("h11_get") or {}).get("gbps")}
    cnames = {"md5": "MD5 1 core", "h11_get": "trio+h11 GET"}
    big = fmt_size(results["config"]["size"])
    huge = fmt_size((results["config"].get("big") or 0) * GiB)
    s3gw = servers.get("s3gw", {})
    head = ["workload", "s3gw"] + peer_names + ["ceiling", "s3gw/ceiling", "target", "s3gw RSS MiB"] + \
        [f"{p} RSS MiB" for p in peer_names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label, ckey, target in ROWS:
        recs = {n: servers.get(n, {}).get("workloads", {}).get(key) for n in ["s3gw"] + peer_names}
        if not any(recs.values()):
            continue
        mine = rate_of(recs["s3gw"])
        peer_rates = [rate_of(recs[p]) for p in peer_names]
        peer_rates = [r for r in peer_rates if r]
        if ckey == "peer2x":
            best = max(peer_rates) if peer_rates else None
            ceiling = f"best peer {best:.0f}/s" if best else "-"
            ratio = f"{mine / best:.2f}x best peer" if (mine and best) else "-"
        elif (recs["s3gw"] or {}).get("ratio") is not None:   # paired
            ceiling = (f"{recs['s3gw']['ceiling_gbps']:.3f} ({cnames[ckey]}, beside each "
                       f"{'PUT' if ckey == 'md5' else 'GET'})")
            ratio = f"{recs['s3gw']['ratio']:.2f}"
        else:
            cv = cvals.get(ckey)
            ceiling = f"{cv:.3f} ({cnames[ckey]})" if cv else "-"
            ratio = f"{mine / cv:.2f}" if (mine and cv) else "-"
        if target == "peers":
            tgt = "> every peer"
            ok = mine is not None and all(mine > r for r in peer_rates)
        elif target is None:
            tgt, ok = "-", None
        elif ckey == "peer2x":
            tgt = f">= {target}x best peer"
            ok = mine is not None and bool(peer_rates) and mine >= target * max(peer_rates)
        else:
            tgt = f">= {target}"
            cv = cvals.get(ckey)
            paired = (recs["s3gw"] or {}).get("ratio")
            if paired is not None:
                ok = paired >= target
            else:
                ok = mine is not None and cv is not None and mine >= target * cv
        if ok is not None:
            tgt += " ok" if ok else " MISS"
        row = [label.format(big=big, huge=huge), cell(recs["s3gw"])] + [cell(recs[p]) for p in peer_names] + \
            [ceiling, ratio, tgt, rss_cell(s3gw, key)] + [rss_cell(servers.get(p), key) for p in peer_names]
        lines.append("| " + " | ".join(row) + " |")
    # ceilings and dedup
    lines.append("")
    lines.append("| ceiling (same run) | GB/s |")
    lines.append("|---|---|")
    labels = {"md5": "MD5, one core (hashlib, 1 MiB updates)",
              "raw_socket": "loopback socket (raw sendall -> recv_into)",
              "h11_get": "bare trio+h11 GET sender -> raw client", "h11_put": "raw client PUT -> bare trio+h11 sink",
              "disk": "disk: 1 MiB files tmp+fsync+rename",
              "disk_stream": f"one thread writes {big} as 1 MiB files (writeback started per file), "
                             "then syncs them (page cache recycled first, as before each raw PUT)",
              "disk_stream_big": f"the same for {huge} (not recycled, as before the {huge} PUT)"}
    for k, lab in labels.items():
        if k not in ceil:
            continue
        v = (ceil.get(k) or {}).get("gbps")
        lines.append(f"| {lab} | {v if v is not None else '-'} |")
    against = []
    for ckey, key, size in (("disk_stream", "put_raw", big), ("disk_stream_big", "put_raw_big", huge)):
        stream = ceil.get(ckey) or {}
        disk = stream.get("gbps")
        r = rate_of(s3gw.get("workloads", {}).get(key))
        if disk and r:
            against.append(f"PUT {size} against one thread writing {size} to files and syncing them: "
                           f"{r:.3f} / {disk} = {r / disk:.2f} (that thread used "
                           f"{stream.get('thread_cpu_s_per_gb')} CPU-s per GB)")
    if against:
        lines.append("")
        lines.append("A PUT of new data is durable before its answer. " + "; ".join(against) + ".")
    dd = s3gw.get("workloads", {}).get("dedup")
    if dd and not dd.get("skipped") and dd.get("complete"):
        lines.append("")
        lines.append(f"dedup: re-PUT of the {big} object with 1 MiB changed stored "
                     f"{dd['new_bytes_stored'] / MiB:.1f} MiB of new chunks (target <= 8 MiB) "
                     f"at {dd['gbps']:.3f} GB/s; `s3gw stats`: "
                     f"{json.dumps({k: v for k, v in dd['stats_after'].items() if 'bytes' in k or 'dedup' in k})}")
    notes = ["`*` = partial: the time limit stopped it; the rate is over the bytes moved so far.",
             "GB/s = 10^9 bytes/s. PUT figures are compared with the single-core MD5 ceiling, GET figures with the "
             "bare trio+h11 sender.",
             "RSS = the server's peak resident set during that phase (VmHWM, reset per phase)."]
    sizes = {n: s.get("big_size_used") for n, s in servers.items()
             if s.get("big_size_used") not in (None, results["config"]["size"])}
    if sizes:
        notes.append("Slow servers ran the boto3/aws cli workloads at a reduced size: " +
                     ", ".join(f"{n} {fmt_size(v)}" for n, v in sizes.items()) + ".")
    for n, s in servers.items():
        if s.get("unavailable"):
            notes.append(f"{n}: not run ({s['unavailable'][:200]}).")
    la0, la1 = results["machine"].get("loadavg_start"), results["machine"].get("loadavg_end")
    if la0:
        notes.append(f"Load average (1 min) at start {la0[0]:.2f}" + (f", at end {la1[0]:.2f}" if la1 else "") +
                     " (this benchmark alone adds about 1-2; more means other work shared the 2 cores).")
    lines.append("")
    lines += notes
    return "\n".join(lines)


def thread_report(results: dict) -> str:
    out = []
    s = results["servers"].get("s3gw", {})
    for key in ("put_raw", "get_raw", "small_put", "put_raw_big"):
        ph = s.get("phases", {}).get(key)
        if not ph:
            continue
        cpu = ph["cpu"]
        th = ", ".join(f"{t['name']}({t['tid']}) {t['cores']}" for t in cpu["threads"][:5])
        out.append(f"s3gw {key}: server {cpu['cores']} cores busy over {cpu['wall_s']} s (bench client "
                   f"{cpu['client_cores']}, other processes {cpu.get('other_cores')}); top threads (cores): {th}")
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-gib", type=float, default=1.0, help="size of the big objects (default 1)")
    ap.add_argument("--big", type=int, default=0, metavar="GIB",
                    help="also a raw PUT/GET of this many GiB through s3gw (e.g. 10)")
    ap.add_argument("--small-count", type=int, default=None,
                    help="4 KiB objects per round (default 2000; --quick 400)")
    ap.add_argument("--small-rounds", type=int, default=None,
                    help="rounds of 4 KiB PUT/GET, alternating between servers (default 3; --quick 2)")
    ap.add_argument("--tool-rounds", type=int, default=None, metavar="N",
                    help="rounds of upload_file, download_file and aws s3 cp up/down, alternating "
                         "between servers (default 3; --quick 1; 0: once each, in each server's "
                         "own phase)")
    ap.add_argument("--get-pairs", type=int, default=3, metavar="N",
                    help="raw GETs of the big objects, each between two runs of the bare sender "
                         "(the GET ceiling); the ratio is their median (default 3)")
    ap.add_argument("--put-pairs", type=int, default=3, metavar="N",
                    help="s3gw's raw PUTs of the big objects (new data each), each between two runs "
                         "of the MD5 ceiling; the ratio is their median (default 3; peers: 1)")
    ap.add_argument("--peers", default="moto,s3rver", help="comma list of peers (moto, s3rver)")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-install", action="store_true", help="do not npm install s3rver")
    ap.add_argument("--no-awscli", action="store_true")
    ap.add_argument("--no-fsync", action="store_true", help="s3gw --no-fsync (not the durable default)")
    ap.add_argument("--pure", action="store_true", help="s3gw on its pure-Python twin (S3GW_PUREPYTHON=1)")
    ap.add_argument("--quick", action="store_true", help="a ~1-2 minute run with small sizes")
    ap.add_argument("--time-limit", type=float, default=None,
                    help="seconds per transfer/phase before it is cut (default 60; --quick 12)")
    ap.add_argument("--ceiling-mib", type=int, default=None,
                    help="bytes per ceiling transfer in MiB (default 2048; --quick 512)")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "latest.json"))
    ap.add_argument("--markdown", default=None, help="also write the table here")
    args = ap.parse_args(argv)

    args.size = int(args.size_gib * GiB) // MiB * MiB
    if args.quick:
        args.size = min(args.size, 256 * MiB)
    if args.pure:
        args.size = min(args.size, 32 * MiB)
        args.big = 0
    if args.small_count is None:
        args.small_count = 400 if (args.quick or args.pure) else 2000
    if args.pure:
        args.small_count = min(args.small_count, 200)
    if args.small_rounds is None:
        args.small_rounds = 2 if (args.quick or args.pure) else 3
    args.small_rounds = max(1, args.small_rounds)
    if args.tool_rounds is None:
        args.tool_rounds = 1 if (args.quick or args.pure) else 3
    args.tool_rounds = max(0, args.tool_rounds)
    if args.time_limit is None:
        args.time_limit = 12.0 if args.quick else 60.0
    args.put_pairs = 1 if args.pure else max(1, args.put_pairs)   # the pure chunker: ~20 MB/s
    args.quick_skip_dedup = False
    if args.ceiling_mib is None:
        args.ceiling_mib = 512 if args.quick else 2048
    peers = [] if args.no_peers else [p.strip() for p in args.peers.split(",") if p.strip()]

    workdir = P.make_workdir()
    results = {"machine": machine_info(args.pure),
               "config": {"size": args.size, "big": args.big, "small_count": args.small_count,
                          "small_rounds": args.small_rounds, "put_pairs": args.put_pairs,
                          "get_pairs": args.get_pairs, "tool_rounds": args.tool_rounds,
                          "peers": peers, "pure": args.pure, "fsync": not args.no_fsync,
                          "quick": args.quick, "time_limit_s": args.time_limit, "workdir": workdir},
               "ceilings": {}, "servers": {}}
    m = results["machine"]
    results["machine"]["loadavg_start"] = os.getloadavg()
    if os.getloadavg()[0] > 0.7:
        progress(f"WARNING: load average {os.getloadavg()[0]:.2f} before the run: other work on this "
                 f"machine will skew the figures")
    progress(f"machine: {m['cpu']}, {m['cores']} cores, python {m['python']}; "
             f"{m['s3gw_version'].splitlines()[1] if m['s3gw_version'].count(chr(10)) else m['s3gw_version']}")
    try:
        cm = max(1, args.ceiling_mib)
        steps = [
            ("md5", "ceiling: MD5, one core", lambda: ceiling_md5(max(1, cm // 2) * MiB)),
            ("raw_socket", "ceiling: loopback raw socket", lambda: ceiling_sender("raw-sender", cm * MiB, 30)),
            ("h11_get", "ceiling: bare trio+h11 GET sender", lambda: ceiling_sender("h11-sink", cm * MiB, 30)),
            ("h11_put", "ceiling: bare trio+h11 PUT sink", lambda: ceiling_h11_put(cm * MiB, 30)),
            ("disk", "ceiling: disk 1 MiB tmp+fsync+rename",
             lambda: ceiling_disk(workdir, max(8, min(512, cm // 4)), 30)),
            ("disk_stream", f"ceiling: one thread writes {fmt_size(args.size)} to files and syncs them",
             lambda: recycled(workdir, args.size, lambda: ceiling_disk_stream(workdir, args.size, 60))),
        ]
        for key, label, fn in steps:
            progress(f"{label} ...", end="")
            try:
                results["ceilings"][key] = fn()
                done(f"{results['ceilings'][key]['gbps']} GB/s")
            except Exception as e:  # noqa: BLE001
                results["ceilings"][key] = {"gbps": None, "error": f"{type(e).__name__}: {e}"}
                done(f"failed: {e}")

        bench = Bench(args, workdir)
        for name in ["s3gw"] + peers:
            out = results["servers"].setdefault(name, {})
            try:
                run_server(bench, name, out)
            except P.PeerUnavailable as e:
                out["unavailable"] = str(e)
                done("")
                progress(f"{name}: unavailable: {str(e)[:500]}")
            except Exception as e:  # noqa: BLE001
                out["unavailable"] = f"{type(e).__name__}: {e}"
                progress(f"{name}: failed: {e}\n{traceback.format_exc()}")
        try:
            tool_rounds(bench, ["s3gw"] + peers, results)
        except Exception as e:  # noqa: BLE001
            progress(f"client-tool rounds failed: {e}\n{traceback.format_exc()}")
        try:
            small_rounds(bench, ["s3gw"] + peers, results)
        except Exception as e:  # noqa: BLE001
            progress(f"4 KiB rounds failed: {e}\n{traceback.format_exc()}")
    finally:
        results["elapsed_s"] = round(time.monotonic() - T0, 1)
        results["machine"]["loadavg_end"] = os.getloadavg()
        try:
            table = build_table(results)
        except Exception:  # noqa: BLE001
            table = "table failed:\n" + traceback.format_exc()
        results["table_markdown"] = table
        results["threads"] = thread_report(results)
        if args.json:
            os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2, default=str)
        if args.markdown:
            with open(args.markdown, "w") as f:
                f.write(table + "\n")
        print()
        print(f"## s3gw benchmark ({m['cpu']}, {m['cores']} cores, python {m['python']}, "
              f"{m['s3gw_implementation']}, fsync {'off' if args.no_fsync else 'on'}, {results['elapsed_s']} s)")
        print()
        print(table)
        if results["threads"]:
            print()
            print(results["threads"])
        if args.json:
            print(f"\nJSON: {args.json}")
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
