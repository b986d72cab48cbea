"""``s3gw serve --chunks s3://...`` on a real SeaweedFS: the admin commands, the data
folder's record of its store, and GC running beside uploads in another process."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ServerProcess, make_client
from tests.seaweed import ACCESS_KEY, SECRET_KEY

MiB = 1024 * 1024
KEYS = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}


def s3gw(*args, env=None, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "s3gw", *args], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, **KEYS, **(env or {})))
    if check and proc.returncode != 0:
        raise AssertionError(f"s3gw {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def store_url(seaweedfs):
    bucket = seaweedfs.make_bucket("e2e-objstore")
    return lambda grace=3600: seaweedfs.chunks_url(bucket, f"t{uuid.uuid4().hex[:10]}", grace=grace)


def test_serve_on_an_object_store_with_fsck_gc_stats(tmp_path, store_url, seaweedfs):
    url = store_url(12)
    data_dir = str(tmp_path / "data")
    srv = ServerProcess(data_dir, env=KEYS, extra_args=["--chunks", url]).start()
    try:
        s3 = make_client(srv.endpoint)
        s3.create_bucket(Bucket="master.objs")
        big = random.Random(1).randbytes(9 * MiB)
        s3.put_object(Bucket="master.objs", Key="big", Body=big)
        s3.put_object(Bucket="master.objs", Key="gone", Body=random.Random(2).randbytes(3 * MiB))
        s3.delete_object(Bucket="master.objs", Key="gone")
        got = s3.get_object(Bucket="master.objs", Key="big", Range="bytes=5000000-5000099")["Body"].read()
        assert got == big[5000000:5000100]
    finally:
        assert srv.stop() == 0
    assert "chunks: s3://" in srv.log()
    raw = seaweedfs.client()
    bucket, prefix = url[len("s3://"):].split("?")[0].split("/", 1)
    keys = [o["Key"] for o in raw.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/chunks/")["Contents"]]
    assert len(keys) >= 4
    assert not os.path.exists(os.path.join(data_dir, "chunks"))   # no local chunk store made
    with open(os.path.join(data_dir, "chunks.url")) as f:
        assert f.read().startswith(url.split("?")[0])

    # the folder remembers its store: admin commands need no --chunks
    stats = json.loads(s3gw("stats", "--data", data_dir, "--json").stdout)
    assert stats["chunks"] == len(keys) and stats["stored_bytes"] >= 12 * MiB
    out = s3gw("fsck", "--data", data_dir).stdout
    assert f"checked {len(keys)} chunks used by" in out and "0 missing or damaged" in out
    assert "no problems found" in out
    out = s3gw("gc", "--data", data_dir, "--grace", "0").stdout   # raised to the store's 12 s
    assert "removed 0 chunks" in out
    # (reclaiming garbage on the object store: test_gc_beside_uploads_... below)

    # payload signing may change (it is how the gateway talks to the store, not which
    # store): the folder then records the new choice
    signed = url + "&payload=signed"
    srv = ServerProcess(data_dir, env=KEYS, extra_args=["--chunks", signed]).start()
    try:
        assert make_client(srv.endpoint).get_object(Bucket="master.objs", Key="big")["Body"].read() == big
    finally:
        assert srv.stop() == 0
    with open(os.path.join(data_dir, "chunks.url")) as f:
        assert f.read().strip().endswith("payload=signed")

    # another store for this folder is refused; so is an object store for a local folder
    refused(ServerProcess(data_dir, env=KEYS, extra_args=["--chunks", store_url(12)]),
            "keeps its chunks in")
    local = str(tmp_path / "local")
    srv2 = ServerProcess(local).start()
    make_client(srv2.endpoint).create_bucket(Bucket="master.l")
    make_client(srv2.endpoint).put_object(Bucket="master.l", Key="k", Body=os.urandom(200000))
    srv2.stop()
    refused(ServerProcess(local, env=KEYS, extra_args=["--chunks", store_url()]),
            "holds chunks of its own")


def refused(srv: ServerProcess, words: str) -> None:
    """The server stops at once with exit status 1 and says why (the port may have
    answered for an instant: it is bound before the data folder is opened)."""
    try:
        srv.start()
    except RuntimeError as exc:
        srv._log.close()
        assert words in str(exc)
        return
    assert srv.proc.wait(timeout=30) == 1
    assert words in srv.log()
    srv.stop()


def test_gc_beside_uploads_deletes_nothing_a_commit_needs(tmp_path, store_url):
    """One process uploads (new content, content uploaded before and deleted, overwrites,
    deletes) while another runs ``s3gw gc`` again and again; afterwards every object whose
    PUT was acknowledged reads back whole, and fsck is clean.  The store's grace is 12 s,
    so the early garbage is reclaimed while the uploads go on."""
    url = store_url(12)
    data_dir = str(tmp_path / "data")
    srv = ServerProcess(data_dir, env=KEYS, extra_args=["--chunks", url]).start()
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket="master.gc")
    rng = random.Random(7)
    recycled = [rng.randbytes(rng.randrange(300_000, 2 * MiB)) for _ in range(4)]
    # garbage from the start: uploaded to a repo that is then deleted; the ``recycled``
    # bodies are uploaded again once their chunks are stale or gone
    s3.create_bucket(Bucket="master.scratch")
    for i, body in enumerate(recycled + [rng.randbytes(MiB) for _ in range(3)]):
        s3.put_object(Bucket="master.scratch", Key=f"r{i}", Body=body)
    s3.delete_bucket(Bucket="master.scratch")
    started = time.monotonic()
    acknowledged: dict[str, bytes] = {}
    failures: list = []
    stop = threading.Event()

    def uploader() -> None:
        client = make_client(srv.endpoint)
        n = 0
        deadline = started + 17
        while not stop.is_set() and time.monotonic() < deadline and n < 400:
            key = f"k{n % 25}"
            if n % 5 == 4 and time.monotonic() > started + 7:
                body = recycled[n % len(recycled)]       # content whose chunks became garbage
            else:
                body = rng.randbytes(rng.randrange(1, 3 * MiB))
            try:
                client.put_object(Bucket="master.gc", Key=key, Body=body)
            except Exception as exc:  # noqa: BLE001 - a refused PUT is allowed, not a lost one
                failures.append(repr(exc))
            else:
                acknowledged[key] = body
            n += 1

    thread = threading.Thread(target=uploader)
    thread.start()
    removed = 0
    runs = 0
    try:
        # beside the uploads, and at least until the first garbage (written before
        # ``started``) is older than the 12 s grace: fast uploads may end sooner
        while (thread.is_alive() or time.monotonic() < started + 15) and runs < 40:
            out = s3gw("gc", "--data", data_dir).stdout
            removed += int(out.split()[1])
            runs += 1
            time.sleep(0.5)
    finally:
        stop.set()
        thread.join(60)
    try:
        assert runs >= 3 and removed > 0, (runs, removed)
        assert len(failures) <= 2, failures   # a 503 (retry) is allowed, rarely
        client = make_client(srv.endpoint)
        for key, body in acknowledged.items():
            got = client.get_object(Bucket="master.gc", Key=key)["Body"].read()
            assert hashlib.md5(got).digest() == hashlib.md5(body).digest(), key
    finally:
        srv.stop()
    assert "Traceback" not in srv.log()
    out = s3gw("fsck", "--data", data_dir).stdout
    assert "0 missing or damaged" in out and "no problems found" in out


def test_small_and_ranged_reads_verified_on_an_object_store(tmp_path, store_url, seaweedfs):
    """Objects and ranges in chunk objects are read each chunk whole, its length and XXH3
    checked: whole, ranged, suffix and conditional GETs give the right bytes; a damaged
    chunk object answers 503 DataDamaged (whole or ranged GET), is quarantined, and a
    re-upload of the same bytes heals it."""
    url = store_url()
    srv = ServerProcess(str(tmp_path / "data"), env=KEYS, extra_args=["--chunks", url]).start()
    try:
        s3 = make_client(srv.endpoint)
        s3.create_bucket(Bucket="master.mid")
        bodies = {"one": random.Random(3).randbytes(64 * 1024),
                  "top": random.Random(4).randbytes(256 * 1024),
                  "big": random.Random(5).randbytes(3 * MiB)}
        for key, body in bodies.items():
            s3.put_object(Bucket="master.mid", Key=key, Body=body)
        for key, body in bodies.items():
            if key != "big":
                assert s3.get_object(Bucket="master.mid", Key=key)["Body"].read() == body
            got = s3.get_object(Bucket="master.mid", Key=key, Range="bytes=100-60099")
            assert got["Body"].read() == body[100:60100]
            assert got["ContentRange"] == f"bytes 100-60099/{len(body)}"
            got = s3.get_object(Bucket="master.mid", Key=key, Range="bytes=-5000")
            assert got["Body"].read() == body[-5000:]
        etag = s3.head_object(Bucket="master.mid", Key="one")["ETag"]
        assert etag == f'"{hashlib.md5(bodies["one"]).hexdigest()}"'
        got = s3.get_object(Bucket="master.mid", Key="one", IfMatch=etag)["Body"].read()
        assert got == bodies["one"]
        # a range of the large object across its (content-defined) chunk boundaries
        big = bodies["big"]
        got = s3.get_object(Bucket="master.mid", Key="big", Range="bytes=1000000-1262143")
        assert got["Body"].read() == big[1000000:1262144]

        # damage the small object's one chunk object in the store
        raw = seaweedfs.client()
        bucket, prefix = url[len("s3://"):].split("?")[0].split("/", 1)
        listed = raw.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/chunks/")
        chunk_key = next(o["Key"] for o in listed["Contents"] if o["Size"] == 64 * 1024)
        flipped = bytearray(bodies["one"])
        flipped[5] ^= 0xFF
        raw.put_object(Bucket=bucket, Key=chunk_key, Body=bytes(flipped))
        for kw in ({}, {"Range": "bytes=10-99"}):
            with pytest.raises(ClientError) as info:
                s3.get_object(Bucket="master.mid", Key="one", **kw)["Body"].read()
            assert info.value.response["Error"]["Code"] == "DataDamaged"
            assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        quarantined = raw.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/quarantine/")
        assert quarantined.get("KeyCount", 0) == 1
        # the same bytes uploaded again write the chunk again: the old object heals
        s3.put_object(Bucket="master.mid", Key="again", Body=bodies["one"])
        assert s3.get_object(Bucket="master.mid", Key="one")["Body"].read() == bodies["one"]
    finally:
        assert srv.stop() == 0
    log = srv.log()
    assert "Traceback" not in log and " 500 " not in log
    assert sum("stored data damaged" in line for line in log.splitlines()) == 1
