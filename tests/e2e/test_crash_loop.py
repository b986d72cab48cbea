"""kill -9 in a loop (issue 23, slow): small PUTs, streamed PUTs, multipart completions
and DeleteObjects run from four clients; the server is killed at a random moment,
restarted, and every acknowledged write is checked, with fsck clean each cycle.

The model: per key, the value its last acknowledged operation left (None: deleted),
and the values of operations sent but not acknowledged when the server died (each
may or may not have landed).  After a restart a key must read back as its
acknowledged value, or as one of its unacknowledged ones; anything else is a lost
write (an acknowledged value gone) or a partial object (bytes no operation wrote).
The figures are printed at the end (``-s`` shows them).
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ServerProcess, make_client

BUCKET = "master.crash"
CYCLES = int(os.environ.get("S3GW_CRASH_CYCLES", "30"))


def _md5(b: bytes | None) -> str | None:
    return None if b is None else hashlib.md5(b).hexdigest()


class Model:
    def __init__(self):
        self.lock = threading.Lock()
        self.acked: dict[str, str | None] = {}       # key -> md5 of the value (None: deleted)
        self.maybe: dict[str, set] = {}              # key -> md5s an unacknowledged op may have left
        self.acked_writes = 0

    def begin(self, key: str, value: str | None) -> None:
        with self.lock:
            self.maybe.setdefault(key, set()).add(value)

    def ack(self, key: str, value: str | None) -> None:
        with self.lock:
            self.acked[key] = value
            self.maybe.pop(key, None)
            self.acked_writes += 1


def worker(endpoint: str, port: int, model: Model, w: int, cycle: int, stop: threading.Event) -> None:
    s3 = make_client(endpoint)
    rnd = random.Random(cycle * 100 + w)
    mine = [k for k, v in model.acked.items() if k.startswith(f"w{w}/") and v is not None]
    n = 0
    while not stop.is_set():
        n += 1
        kind = rnd.choice(["small", "small", "stream", "multipart", "delete"])
        key = f"w{w}/c{cycle}/{kind}{n}"
        try:
            if kind == "small":
                body = rnd.randbytes(rnd.randint(0, 20_000))
                model.begin(key, _md5(body))
                s3.put_object(Bucket=BUCKET, Key=key, Body=body)
                model.ack(key, _md5(body))
                mine.append(key)
            elif kind == "stream":
                body = rnd.randbytes(rnd.randint(300_000, 3_000_000))
                model.begin(key, _md5(body))
                s3.put_object(Bucket=BUCKET, Key=key, Body=body)
                model.ack(key, _md5(body))
                mine.append(key)
            elif kind == "multipart":
                parts = [rnd.randbytes(5 << 20), rnd.randbytes(rnd.randint(1, 100_000))]
                up = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
                etags = [s3.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=i + 1,
                                        Body=p)["ETag"] for i, p in enumerate(parts)]
                whole = b"".join(parts)
                model.begin(key, _md5(whole))
                s3.complete_multipart_upload(
                    Bucket=BUCKET, Key=key, UploadId=up,
                    MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]})
                model.ack(key, _md5(whole))
                mine.append(key)
            elif mine:
                victims = rnd.sample(mine, min(len(mine), rnd.randint(1, 3)))
                for k in victims:
                    model.begin(k, None)
                r = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in victims]})
                assert not r.get("Errors"), r
                for k in victims:
                    model.ack(k, None)
                    mine.remove(k)
        except Exception:  # noqa: BLE001 - the server was killed
            return


def check(s3, model: Model) -> tuple[int, int, int]:
    """(keys checked, lost, partial visible)."""
    lost = partial = 0
    keys = set(model.acked) | set(model.maybe)
    for key in keys:
        try:
            got = _md5(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "NoSuchKey", exc.response
            got = None
        allowed = set(model.maybe.get(key, ()))
        if key in model.acked:
            allowed.add(model.acked[key])
        else:
            allowed.add(None)      # never acknowledged: absent is fine
        if got not in allowed:
            if model.acked.get(key) is not None:
                lost += 1
            else:
                partial += 1
        # what is there now is what a later cycle must find
        model.acked[key] = got
    model.maybe.clear()
    listed = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
              for o in page.get("Contents", [])}
    partial += len(listed - {k for k, v in model.acked.items() if v is not None})
    return len(keys), lost, partial


@pytest.mark.slow
def test_kill_9_loop_loses_no_acknowledged_write(tmp_path):
    data = str(tmp_path / "data")
    model = Model()
    rnd = random.Random(23)
    checked = lost = partial = 0
    srv = ServerProcess(data).start()
    make_client(srv.endpoint).create_bucket(Bucket=BUCKET)
    started = time.monotonic()
    for cycle in range(CYCLES):
        stop = threading.Event()
        threads = [threading.Thread(target=worker, args=(srv.endpoint, srv.port, model, w, cycle, stop))
                   for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(rnd.uniform(0.3, 2.0))
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        srv.proc = None
        srv._log.close()
        stop.set()
        for t in threads:
            t.join(timeout=60)
        srv = ServerProcess(data).start()
        c, lo, pa = check(make_client(srv.endpoint), model)
        checked += c
        lost += lo
        partial += pa
        fsck = subprocess.run([sys.executable, "-m", "s3gw", "fsck", "--data", data],
                              capture_output=True, text=True, timeout=300)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        assert time.monotonic() - started < 1800
    srv.stop()
    print(f"\ncrash cycles {CYCLES}; acknowledged writes {model.acked_writes}; key checks {checked}; "
          f"lost {lost}; partial visible {partial}")
    assert lost == 0 and partial == 0
