"""Crash safety, deduplication and garbage collection, through a real server process."""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from s3gw.store.chunkstore import LocalChunkStore
from s3gw.store.packs import HEAD_SIZE, PACK_MAX
from tests.conftest import ServerProcess, make_client
from tests.e2e.rawhttp import PatternSource, put_stream


def s3gw_cli(*args):
    return subprocess.run([sys.executable, "-m", "s3gw", *args], capture_output=True, text=True,
                          timeout=120)


def test_kill_mid_put_loses_nothing_committed_and_exposes_nothing(tmp_path):
    data = str(tmp_path / "data")
    srv = ServerProcess(data).start()
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket="master.crash")
    s3.put_object(Bucket="master.crash", Key="kept", Body=b"committed before the crash")
    sock = socket.create_connection(("127.0.0.1", srv.port))
    sock.sendall(b"PUT /master.crash/partial HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n")
    source = PatternSource(seed=3)
    for i in range(40):  # 40 of 100 MiB, then the server dies
        sock.sendall(source.block(i))
    time.sleep(0.3)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    sock.close()
    srv.proc = None
    srv._log.close()
    assert os.listdir(os.path.join(data, "tmp"))  # staged chunks of the interrupted PUT
    srv2 = ServerProcess(data).start()
    try:
        s3 = make_client(srv2.endpoint)
        assert s3.get_object(Bucket="master.crash", Key="kept")["Body"].read() == \
            b"committed before the crash"
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="master.crash")["Contents"]] == ["kept"]
        assert os.listdir(os.path.join(data, "tmp")) == []  # cleaned at start
    finally:
        srv2.stop()


def test_kill_during_small_puts_keeps_every_acknowledged_one(tmp_path):
    """Small objects (1 to 9000 bytes: inline in their commits up to INLINE_MAX,
    packed above) are made durable in batches: kill the server while four
    clients PUT them; after a restart every PUT that got its 200 reads back
    exactly, and any other key that shows up is whole."""
    import threading

    data = str(tmp_path / "data")
    srv = ServerProcess(data).start()
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket="master.small")
    acked: dict[str, bytes] = {}
    tried: dict[str, bytes] = {}
    stop = threading.Event()

    def writer(c: int) -> None:
        client = make_client(srv.endpoint)
        for i in range(100_000):
            if stop.is_set():
                return
            key, body = f"c{c}/{i}", os.urandom(1 + (i * 997 + c) % 9000)
            tried[key] = body
            try:
                client.put_object(Bucket="master.small", Key=key, Body=body)
            except Exception:  # noqa: BLE001 - the server is gone
                return
            acked[key] = body

    threads = [threading.Thread(target=writer, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    srv.proc = None
    srv._log.close()
    assert len(acked) >= 200
    srv2 = ServerProcess(data).start()
    try:
        s3 = make_client(srv2.endpoint)
        for key, body in acked.items():
            assert s3.get_object(Bucket="master.small", Key=key)["Body"].read() == body, key
        listed = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="master.small")
                  for o in page.get("Contents", [])}
        assert set(acked) <= listed <= set(tried)
        for key in listed - set(acked):     # committed, but the 200 never arrived
            assert s3.get_object(Bucket="master.small", Key=key)["Body"].read() == tried[key]
        s3.put_object(Bucket="master.small", Key="after", Body=b"still writable")
        assert s3.get_object(Bucket="master.small", Key="after")["Body"].read() == b"still writable"
        fsck = s3gw_cli("fsck", "--data", data)
        assert fsck.returncode == 0, fsck.stdout
    finally:
        srv2.stop()


def test_sigterm_stops_cleanly(tmp_path):
    srv = ServerProcess(str(tmp_path / "data")).start()
    assert srv.stop(signal.SIGTERM) == 0
    assert "stopping" in srv.log()


def test_access_log_lines_are_written_soon_and_all_at_stop(tmp_path):
    """One line per request in the server's log format: written in batches while it
    runs (within a second) and the rest at a clean stop."""
    srv = ServerProcess(str(tmp_path / "data")).start()
    try:
        s3 = make_client(srv.endpoint)
        s3.create_bucket(Bucket="master.logs")
        first = s3.put_object(Bucket="master.logs", Key="a", Body=b"x")["ResponseMetadata"]["RequestId"]
        line = re.compile(rf"^\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d,\d{{3}} INFO s3gw\.access "
                          rf"PUT /master\.logs/a 200 0 \d+\.\dms {first} 127\.0\.0\.1:\d+$", re.M)
        deadline = time.monotonic() + 5
        while not line.search(srv.log()):
            assert time.monotonic() < deadline, srv.log()[-2000:]
            time.sleep(0.05)
        ids = [s3.get_object(Bucket="master.logs", Key="a")["ResponseMetadata"]["RequestId"]
               for _ in range(50)]
    finally:
        assert srv.stop(signal.SIGTERM) == 0
    log = srv.log()
    for rid in ids:
        assert re.search(rf" INFO s3gw\.access GET /master\.logs/a 200 1 \S+ {rid} ", log), rid


def test_dedup_across_versions_keys_and_repos(tmp_path):
    data = str(tmp_path / "data")
    srv = ServerProcess(data).start()
    try:
        size = 256 << 20
        for bucket in ("master.one", "master.two"):
            assert put_stream(srv.port, f"/{bucket}", 0)[0] == 200
        source = PatternSource(seed=11, pool_mib=300)
        assert put_stream(srv.port, "/master.one/file", size, source)[0] == 200
        stats1 = _stats(data)

        class Modified(PatternSource):
            def block(self, i, n=1 << 20):
                b = source.block(i, n)
                if i == 128:  # 1 MiB changed in the middle
                    return memoryview(bytes(x ^ 0xFF for x in b[:4096]) + bytes(b[4096:]))
                return b

        mod = Modified.__new__(Modified)
        assert put_stream(srv.port, "/master.one/file", size, mod)[0] == 200      # new version
        assert put_stream(srv.port, "/master.one/copy", size, source)[0] == 200   # another key
        assert put_stream(srv.port, "/master.two/file", size, source)[0] == 200   # another repo
        stats2 = _stats(data)
        new_bytes = stats2["stored_bytes"] - stats1["stored_bytes"]
        assert new_bytes <= 8 << 20, f"stored {new_bytes} new bytes for a 1 MiB change"
        assert stats2["object_bytes"] == 4 * size
    finally:
        srv.stop()


def _stats(data):
    import json
    r = s3gw_cli("stats", "--data", data, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_gc_reclaims_deleted_data_but_not_live_data(tmp_path):
    data = str(tmp_path / "data")
    srv = ServerProcess(data).start()
    try:
        s3 = make_client(srv.endpoint)
        s3.create_bucket(Bucket="master.keep")
        s3.create_bucket(Bucket="master.drop")
        s3.put_object(Bucket="master.keep", Key="k", Body=os.urandom(2 << 20))
        s3.put_object(Bucket="master.drop", Key="d", Body=os.urandom(3 << 20))
        small = os.urandom(20_000)      # over INLINE_MAX: a packed chunk
        s3.put_object(Bucket="master.keep", Key="small", Body=small)           # packed chunks
        for i in range(20):
            s3.put_object(Bucket="master.drop", Key=f"small{i}", Body=os.urandom(20_000))
        s3.delete_bucket(Bucket="master.drop")
        young = s3gw_cli("gc", "--data", data)  # default grace: nothing is old enough
        assert "removed 0 chunks" in young.stdout, young.stdout + young.stderr
        r = s3gw_cli("gc", "--data", data, "--grace", "0")
        assert r.returncode == 0 and "removed 0 chunks" not in r.stdout, r.stdout
        assert s3.get_object(Bucket="master.keep", Key="k")["ContentLength"] == 2 << 20
        s3.get_object(Bucket="master.keep", Key="k")["Body"].read()
        assert s3.get_object(Bucket="master.keep", Key="small")["Body"].read() == small
        fsck = s3gw_cli("fsck", "--data", data)
        assert fsck.returncode == 0 and "no problems found" in fsck.stdout
    finally:
        srv.stop()
    # the pack the server was appending to is left alone while it runs; once it is
    # closed, GC rewrites it without its 20 dead chunks
    before = _stats(data)
    assert before["packs"] == 1 and before["pack_file_bytes"] >= 21 * 20_000
    r = s3gw_cli("gc", "--data", data, "--grace", "0")
    assert "compacted 1 packs" in r.stdout, r.stdout + r.stderr
    after = _stats(data)
    live, live_bytes = LocalChunkStore(data, owner=False).packs.usage()
    assert live >= 1 and after["packs"] == 1       # the kept small object (and perhaps k's tail)
    assert after["pack_file_bytes"] == live_bytes + live * HEAD_SIZE < before["pack_file_bytes"]
    srv = ServerProcess(data).start()
    try:
        s3 = make_client(srv.endpoint)
        assert s3.get_object(Bucket="master.keep", Key="small")["Body"].read() == small
        assert len(s3.get_object(Bucket="master.keep", Key="k")["Body"].read()) == 2 << 20
        fsck = s3gw_cli("fsck", "--data", data)
        assert fsck.returncode == 0 and "no problems found" in fsck.stdout, fsck.stdout
    finally:
        srv.stop()


@pytest.mark.parametrize("size", [20_000, 100_000], ids=["packed", "file"])
def test_corrupt_chunk_is_not_served(tmp_path, size):
    data = str(tmp_path / "data")
    srv = ServerProcess(data).start()
    try:
        s3 = make_client(srv.endpoint)
        s3.create_bucket(Bucket="master.rot")
        s3.put_object(Bucket="master.rot", Key="k", Body=b"precious" * (size // 8))
        chunk_files = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(data, "chunks"))
                       for f in fs if not f.startswith(".")]
        packs = [os.path.join(data, "packs", f) for f in os.listdir(os.path.join(data, "packs"))
                 if f.endswith(".pack")]
        target = chunk_files if size >= PACK_MAX else packs
        assert len(target) == 1 and len(chunk_files + packs) == 1
        with open(target[0], "r+b") as f:
            f.seek(-10, os.SEEK_END)      # inside the data (a pack record's header comes first)
            f.write(b"X")
        try:
            body = s3.get_object(Bucket="master.rot", Key="k")["Body"].read()
        except Exception:
            body = None
        assert body != b"precious" * (size // 8) or body is None
        assert body is None or len(body) < size  # never the full, wrong content
        assert "stored data damaged" in srv.log()
        fsck = s3gw_cli("fsck", "--data", data)
        assert fsck.returncode == 1 and "DAMAGED" in fsck.stdout
    finally:
        srv.proc.kill()
        srv.proc.wait()
        srv.proc = None
        srv._log.close()


@pytest.mark.parametrize("size", [20_000, 200_000], ids=["packed", "file"])
def test_small_get_of_an_uncached_chunk_is_served_whole(tmp_path, size):
    """A small GET reads its chunk on the event loop only from the page cache; a
    chunk the cache dropped is read by a worker thread, the same bytes."""
    data = str(tmp_path / "data")
    srv = ServerProcess(data).start()
    try:
        s3 = make_client(srv.endpoint)
        s3.create_bucket(Bucket="master.cold")
        body = os.urandom(size)
        s3.put_object(Bucket="master.cold", Key="k", Body=body)
        for _ in range(2):
            for d, _, fs in [*os.walk(os.path.join(data, "chunks")), *os.walk(os.path.join(data, "packs"))]:
                for f in fs:
                    fd = os.open(os.path.join(d, f), os.O_RDONLY)
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    os.close(fd)
            assert s3.get_object(Bucket="master.cold", Key="k")["Body"].read() == body
        assert s3.get_object(Bucket="master.cold", Key="k", Range="bytes=5-9")["Body"].read() == body[5:10]
    finally:
        srv.stop()
