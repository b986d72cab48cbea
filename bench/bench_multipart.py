"""CompleteMultipartUpload cost: a 1 MiB upload vs a large one (default 4 GiB in 8 MiB parts).

Theory of operation
-------------------
Completion concatenates the parts' chunk manifests in one metadata
transaction; it must not read or write any chunk, so its time should not
grow with the object's size (only with the manifest: ~44 bytes per chunk).
Times are the client's (boto3 serialising a 512-part XML body is part of
it) and the server's own, from its access log.  This starts ``s3gw serve`` on a temporary data folder, then:

1. small: ``--repeat`` uploads of one 1 MiB part each; the Complete call is
   timed (client wall clock, median and best);
2. large: one upload of ``--size`` bytes of generated data (every part
   distinct, so nothing deduplicates) in ``--part-size`` parts sent by
   ``--threads`` boto3 threads; the upload rate is printed, then the one
   Complete call is timed.

Around each large Complete it reads the server's ``/proc/<pid>/io``
(``rchar``/``wchar``: bytes through read/write system calls, sockets and
the SQLite file included) and the chunk store's file count and bytes: both
must stay flat (a few hundred KiB of metadata I/O), which the script
asserts.

Usage: ``python bench/bench_multipart.py [--size 4G] [--part-size 8M] [--threads 4]
[--repeat 5] [--no-fsync] [--data DIR]``
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import free_port, wait_listening  # noqa: E402

MiB = 1 << 20


def parse_size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    text = text.strip().lower().rstrip("ib")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def proc_io(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/io") as f:
        return {k: int(v) for k, v in (line.split(": ") for line in f)}


def chunk_usage(data_dir: str) -> tuple[int, int]:
    from s3gw.store.chunkstore import LocalChunkStore
    return LocalChunkStore(data_dir, owner=False).usage()


def client(endpoint: str):
    import boto3
    from botocore.config import Config
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench",
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                      max_pool_connections=32, request_checksum_calculation="when_required"))


def upload_parts(s3, bucket: str, key: str, size: int, part_size: int, threads: int):
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    numbers = list(range(1, (size + part_size - 1) // part_size + 1))
    etags: dict[int, str] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []
    base = random.Random(42).randbytes(part_size + 4096)

    def worker():
        while True:
            with lock:
                if not numbers or errors:
                    return
                n = numbers.pop(0)
            length = min(part_size, size - (n - 1) * part_size)
            shift = (n * 7919) % 4096
            body = bytearray(base[shift:shift + length])
            stamp = n.to_bytes(8, "big")
            for off in range(0, length - 8, 64 * 1024):   # every chunk of every part distinct
                body[off:off + 8] = stamp
            try:
                etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n,
                                      Body=bytes(body))["ETag"]
            except BaseException as exc:  # pragma: no cover - reported
                errors.append(exc)
                return
            with lock:
                etags[n] = etag

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    parts = [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]
    return uid, parts


def server_ms(log_path: str, key: str) -> float | None:
    """The server's own time for the last ``POST /master.bench/<key>`` (access log)."""
    time.sleep(0.5)  # the server writes its access lines every 0.2 s (http.accesslog)
    found = None
    with open(log_path, "rb") as f:
        for line in f:
            fields = line.decode("utf-8", "replace").split()
            if "s3gw.access" in fields and f"/master.bench/{key}" in fields and "POST" in fields:
                found = next((float(x[:-2]) for x in fields if x.endswith("ms")), found)
    return found


def timed_complete(s3, bucket, key, uid, parts) -> float:
    t0 = time.perf_counter()
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                 MultipartUpload={"Parts": parts})
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=parse_size, default=4 << 30)
    ap.add_argument("--part-size", type=parse_size, default=8 * MiB)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-fsync", action="store_true")
    ap.add_argument("--data", default=None, help="data folder (default: a temp dir, removed)")
    args = ap.parse_args(argv)

    tmp = args.data or tempfile.mkdtemp(prefix="s3gw-bench-mp-")
    data_dir = os.path.join(tmp, "data")
    free = shutil.disk_usage(tmp).free
    if free < args.size * 1.1 + (1 << 30):
        print(f"not enough free disk for --size {args.size} ({free} bytes free)")
        return 2
    port = free_port()
    cmd = [sys.executable, "-m", "s3gw", "serve", "--data", data_dir, "--port", str(port),
           "--log-level", "INFO"] + (["--no-fsync"] if args.no_fsync else [])
    log = open(os.path.join(tmp, "server.log"), "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        if not wait_listening(port, proc, 20):
            raise RuntimeError("s3gw did not start")
        s3 = client(f"http://127.0.0.1:{port}")
        s3.create_bucket(Bucket="master.bench")

        small = []
        for i in range(args.repeat):
            uid, parts = upload_parts(s3, "master.bench", f"small{i}", MiB, MiB, 1)
            small.append(timed_complete(s3, "master.bench", f"small{i}", uid, parts))

        t0 = time.perf_counter()
        uid, parts = upload_parts(s3, "master.bench", "large", args.size, args.part_size,
                                  args.threads)
        upload_s = time.perf_counter() - t0
        usage_before = chunk_usage(data_dir)
        io_before = proc_io(proc.pid)
        large_s = timed_complete(s3, "master.bench", "large", uid, parts)
        io_after = proc_io(proc.pid)
        usage_after = chunk_usage(data_dir)
        head = s3.head_object(Bucket="master.bench", Key="large")
        log.flush()
        small_server = [server_ms(log.name, f"small{i}") for i in range(args.repeat)]
        large_server = server_ms(log.name, "large")
        assert head["ContentLength"] == args.size, head
        rchar = io_after["rchar"] - io_before["rchar"]
        wchar = io_after["wchar"] - io_before["wchar"]

        print(f"s3gw multipart completion (fsync={'off' if args.no_fsync else 'on'})")
        print(f"  1 MiB, 1 part      : complete median {statistics.median(small) * 1e3:7.2f} ms,"
              f" best {min(small) * 1e3:7.2f} ms  (n={len(small)}); server side median "
              f"{statistics.median(x for x in small_server if x is not None):.2f} ms")
        print(f"  {args.size / 2**30:.2f} GiB, {len(parts)} parts: upload {upload_s:6.1f} s "
              f"({args.size / upload_s / 1e9:.2f} GB/s, {args.threads} threads)")
        print(f"  {args.size / 2**30:.2f} GiB, {len(parts)} parts: complete "
              f"{large_s * 1e3:7.2f} ms (server side {large_server} ms)   ETag {head['ETag']}")
        print(f"  server I/O during that Complete: read {rchar / 1024:.0f} KiB, "
              f"written {wchar / 1024:.0f} KiB (syscalls, incl. socket and SQLite)")
        print(f"  chunk store before/after Complete: {usage_before} -> {usage_after} "
              f"(files, bytes)")
        assert usage_before == usage_after, "Complete wrote chunks"
        assert rchar < 64 * MiB and wchar < 64 * MiB, "Complete touched chunk data"
        return 0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        if args.data is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
