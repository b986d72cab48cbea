"""Past one machine: three gateways, each with a data folder of its own, on one
PostgreSQL database (``--meta``) and one SeaweedFS bucket (``--chunks``): nothing
they share is on a disk of theirs.

Real ``s3gw serve`` processes, real boto3 clients spread across them: 64
concurrent writers on one branch lose no commit; a gateway killed with SIGKILL
mid-PUT leaves nothing partial and the others serve on; ``s3gw gc`` run from one
folder while the other gateways write deletes nothing a commit needs (every
acknowledged object reads back); ``s3gw fsck`` is clean from any folder.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ServerProcess, make_client
from tests.seaweed import ACCESS_KEY, SECRET_KEY

MiB = 1 << 20
KEYS = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
GRACE = 10   # the store's GC grace (s), its least: garbage is reclaimed during a test


def s3gw(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "s3gw", *args], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, **KEYS))
    if check and proc.returncode != 0:
        raise AssertionError(f"s3gw {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def fsck_clean(data_dir: str) -> None:
    out = s3gw("fsck", "--data", data_dir).stdout
    assert out.strip().endswith(": 0 corrupt"), out
    assert "MISSING" not in out and "CORRUPT" not in out, out


@pytest.fixture(scope="module")
def cluster(pg_server, seaweedfs, tmp_path_factory):
    url = pg_server.database()
    bucket = seaweedfs.make_bucket("e2e-shared")
    chunks = seaweedfs.chunks_url(bucket, f"g{uuid.uuid4().hex[:10]}", grace=GRACE)
    root = tmp_path_factory.mktemp("gateways")
    gateways = [ServerProcess(str(root / f"gw{i}"), env=KEYS,
                              extra_args=["--meta", url, "--chunks", chunks]).start()
                for i in range(3)]
    try:
        for g in gateways:                 # the port opens before the stores are open
            deadline = time.monotonic() + 20
            while "s3gw listening on" not in g.log() and time.monotonic() < deadline:
                time.sleep(0.1)
        yield gateways
    finally:
        for g in gateways:
            g.stop()
        for g in gateways:
            assert "Traceback" not in g.log(), g.log()[-3000:]
        pg_server.drop(url)


def _clients(gateways):
    return [make_client(g.endpoint) for g in gateways if g.proc is not None]


def test_each_folder_holds_only_its_own_small_state(cluster):
    for g in cluster:
        assert "chunks: s3://" in g.log() and "metadata: postgresql://" in g.log()
        names = set(os.listdir(g.data_dir))
        assert {"chunks.url", "metadata.url", "serve.lock"} <= names
        assert "meta.sqlite" not in names and "packs" not in names
        assert not os.path.isdir(os.path.join(g.data_dir, "chunks")) or not any(
            os.listdir(os.path.join(g.data_dir, "chunks", d))
            for d in os.listdir(os.path.join(g.data_dir, "chunks")))


def test_a_gateway_may_share_another_ones_folder(cluster):
    """Gateways of one machine may also share one folder (its lock is taken shared)."""
    extra = ServerProcess(cluster[0].data_dir, env=KEYS).start()   # the folder knows the stores
    try:
        c = make_client(extra.endpoint)
        c.create_bucket(Bucket="master.same-folder")
        c.put_object(Bucket="master.same-folder", Key="k", Body=b"y" * 500_000)
        got = make_client(cluster[1].endpoint).get_object(Bucket="master.same-folder", Key="k")
        assert got["Body"].read() == b"y" * 500_000
    finally:
        extra.stop()
    assert "Traceback" not in extra.log()


def test_64_concurrent_writers_on_one_branch_lose_no_commit(cluster):
    clients = _clients(cluster)
    clients[0].create_bucket(Bucket="master.many")
    errors: list[BaseException] = []
    versions: list[str] = []
    bodies = {i: random.Random(i).randbytes(300_000 if i % 4 == 0 else 100 + i) for i in range(64)}

    def writer(i: int) -> None:
        try:
            r = clients[i % 3].put_object(Bucket="master.many", Key=f"w/{i:02d}", Body=bodies[i])
            versions.append(r["VersionId"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(set(versions)) == 64
    for c in clients:                      # every gateway sees every file
        keys = [o["Key"] for o in c.list_objects_v2(Bucket="master.many")["Contents"]]
        assert keys == [f"w/{i:02d}" for i in range(64)]
    log = s3gw("log", "master.many", "-n", "1000", "--data", cluster[1].data_dir)
    assert len(log.stdout.splitlines()) == 64             # one chain of 64 commits
    assert {line.split()[0] for line in log.stdout.splitlines()} == set(versions)
    for i, body in bodies.items():         # each read through another gateway than its writer
        got = clients[(i + 1) % 3].get_object(Bucket="master.many", Key=f"w/{i:02d}")["Body"].read()
        assert got == body
    fsck_clean(cluster[2].data_dir)


def test_a_gateway_killed_mid_put_leaves_nothing_partial(cluster):
    clients = _clients(cluster)
    clients[0].create_bucket(Bucket="master.crash")
    clients[0].put_object(Bucket="master.crash", Key="before", Body=b"kept" * 10_000)
    victim = cluster[2]
    size = 64 * MiB
    sock = socket.create_connection(("127.0.0.1", victim.port), timeout=30)
    sock.sendall((f"PUT /master.crash/big HTTP/1.1\r\nHost: 127.0.0.1:{victim.port}\r\n"
                  f"Content-Length: {size}\r\n\r\n").encode())
    rng = random.Random(3)
    for _ in range(24):                    # 24 MiB of 64 MiB sent: chunks reach the store
        sock.sendall(rng.randbytes(MiB))
    time.sleep(0.5)
    victim.kill()                          # SIGKILL
    sock.close()
    for c in clients[:2]:                  # the others serve on; nothing of "big" exists
        with pytest.raises(ClientError) as e:
            c.head_object(Bucket="master.crash", Key="big")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert c.get_object(Bucket="master.crash", Key="before")["Body"].read() == b"kept" * 10_000
        c.put_object(Bucket="master.crash", Key="after", Body=b"x" * 300_000)
        assert c.get_object(Bucket="master.crash", Key="after")["Body"].read() == b"x" * 300_000
    versions = clients[1].list_object_versions(Bucket="master.crash")
    assert sorted(v["Key"] for v in versions.get("Versions", [])) == ["after", "after", "before"]
    fsck_clean(cluster[0].data_dir)
    victim.start()                         # it comes back (its folder's lock died with it)
    assert make_client(victim.endpoint).get_object(
        Bucket="master.crash", Key="after")["Body"].read() == b"x" * 300_000


def test_gc_from_one_folder_during_writes_on_the_others_deletes_nothing_needed(cluster):
    """Two gateways take writes (new content, overwrites, content whose chunks became
    garbage) while ``s3gw gc`` runs again and again from the third gateway's folder,
    past the store's grace so garbage is really deleted; then every acknowledged
    object reads back whole through every gateway."""
    clients = _clients(cluster)
    rng = random.Random(11)
    recycled = [rng.randbytes(rng.randrange(300_000, 2 * MiB)) for _ in range(3)]
    clients[0].create_bucket(Bucket="master.scratch")       # garbage from the start
    for i, body in enumerate(recycled + [rng.randbytes(MiB) for _ in range(3)]):
        clients[0].put_object(Bucket="master.scratch", Key=f"r{i}", Body=body)
    clients[0].delete_bucket(Bucket="master.scratch")
    clients[1].create_bucket(Bucket="master.gc")
    started = time.monotonic()
    acknowledged: dict[str, bytes] = {}
    failures: list[str] = []
    lock = threading.Lock()

    def uploader(which: int, seed: int) -> None:
        client = make_client(cluster[which].endpoint)
        r = random.Random(seed)
        n = 0
        while time.monotonic() < started + GRACE + 2 and n < 300:
            key = f"g{which}/k{n % 15}"
            if n % 4 == 3 and time.monotonic() > started + GRACE / 2:
                body = recycled[n % len(recycled)]
            else:
                body = r.randbytes(r.randrange(1, 2 * MiB))
            try:
                client.put_object(Bucket="master.gc", Key=key, Body=body)
            except Exception as exc:  # noqa: BLE001 - a refused PUT is allowed, not a lost one
                failures.append(repr(exc))
            else:
                with lock:
                    acknowledged[key] = body
            n += 1

    threads = [threading.Thread(target=uploader, args=(w, w)) for w in (1, 2)]
    for t in threads:
        t.start()
    removed = runs = 0
    try:
        # beside the writes, and until the first garbage is older than the grace
        while (any(t.is_alive() for t in threads) or time.monotonic() < started + GRACE + 1) \
                and runs < 40:
            out = s3gw("gc", "--data", cluster[0].data_dir).stdout
            removed += int(out.split()[1])
            runs += 1
            time.sleep(0.5)
    finally:
        for t in threads:
            t.join(60)
    assert runs >= 3 and removed > 0, (runs, removed)
    assert len(failures) <= 2, failures     # a 503 (retry) is allowed, rarely
    assert len(acknowledged) >= 10
    for key, body in acknowledged.items():
        for c in clients:
            got = c.get_object(Bucket="master.gc", Key=key)["Body"].read()
            assert hashlib.blake2b(got).digest() == hashlib.blake2b(body).digest(), key
    fsck_clean(cluster[1].data_dir)
