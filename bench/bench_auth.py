"""What authentication costs the server: CPU per request and ops/s, auth off vs on.

    python bench/bench_auth.py                  # 1000 x 4 KiB PUT + GET, 8 boto3 threads, each mode
    python bench/bench_auth.py --count 3000 --threads 4

The same signed boto3 workload (SigV4, hex payload hash) runs against a gateway with auth
off (the signature is ignored) and one with ``s3gw auth enable`` (every request verified:
header parse, canonical request, HMAC chain; a snapshot check of the auth store; the
role lookup).  The figure to read is the server's CPU-ms per request (from /proc, all
its threads), which a shared 2-core machine disturbs far less than ops/s.  A third
phase sends SigV2-signed requests (s3cmd / rclone ``v2_auth`` style) with auth on.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import peers as P  # noqa: E402

BUCKET = "master.authbench"


def _client(port, creds, signature="s3v4"):
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id=creds[0], aws_secret_access_key=creds[1],
                        config=Config(signature_version=signature, retries={"max_attempts": 1},
                                      max_pool_connections=2))


def _run(port, creds, method, count, threads, signature, prefix) -> tuple[float, int]:
    body = os.urandom(4096)
    errors = []
    per = count // threads

    def work(t):
        c = _client(port, creds, signature)
        try:
            for i in range(per):
                key = f"{prefix}/{t}/{i}"
                if method == "PUT":
                    c.put_object(Bucket=BUCKET, Key=key, Body=body)
                else:
                    c.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        except Exception as exc:  # reported below
            errors.append(exc)

    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - t0, per * threads


def measure(mode: str, count: int, threads: int) -> dict:
    wd = P.make_workdir(f"s3gw-auth-{mode}-")
    data = os.path.join(wd, "s3gw-data")
    creds = ("any", "any")
    if mode != "off":
        out = subprocess.run([sys.executable, "-m", "s3gw", "auth", "enable", "--json",
                              "--data", data], check=True, capture_output=True, text=True).stdout
        c = json.loads(out)
        creds = (c["access_key"], c["secret_key"])
    h = P.start_s3gw(wd)
    result = {}
    try:
        _client(h.port, creds).create_bucket(Bucket=BUCKET)
        signature = "s3" if mode == "on-sigv2" else "s3v4"
        for method in ("PUT", "GET"):
            with h.phase(f"{mode}-{method}") as ph:
                wall, ops = _run(h.port, creds, method, count, threads, signature, "k")
            ms = ph.cpu["cpu_s"] / ops * 1e3
            result[method] = {"ops_per_s": round(ops / wall), "server_cpu_ms_per_op": round(ms, 3),
                              "other_cores": ph.cpu["other_cores"]}
            print(f"auth {mode:<8} {method:<3} x{ops}: {ops / wall:6.0f}/s  server {ms:.3f} CPU-ms/op"
                  f"  other cores {ph.cpu['other_cores']}", flush=True)
    finally:
        h.stop()
        shutil.rmtree(wd, ignore_errors=True)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=8)
    args = ap.parse_args(argv)
    results = {mode: measure(mode, args.count, args.threads) for mode in ("off", "on", "on-sigv2")}
    for method in ("PUT", "GET"):
        off, on = results["off"][method], results["on"][method]
        print(f"{method}: auth on costs {on['server_cpu_ms_per_op'] - off['server_cpu_ms_per_op']:+.3f} "
              f"CPU-ms per request ({off['server_cpu_ms_per_op']:.3f} -> "
              f"{on['server_cpu_ms_per_op']:.3f}); ops/s {off['ops_per_s']} -> {on['ops_per_s']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
