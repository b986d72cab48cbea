"""Faults on disk, end to end: damaged chunks and databases, what the user sees, and
how they heal (issue 23).  Each scenario damages a real server's data folder the
way a disk would and checks the expected outcome:

==========================  =====================================================
fault                       expected
==========================  =====================================================
a chunk file's byte flipped GET: 503 DataDamaged (logged once, with the key and
a pack record's byte flipped  chunk; no traceback); the chunk is quarantined;
a chunk file truncated      fsck names repo, branch, key and commit, exits 1;
a chunk file deleted        an upload of the same bytes heals it (also as a
                            dedup hit: the damaged copy is never trusted)
a ranged GET into damage    503 before any header (no 206)
a pack index row lost       fsck: missing; fsck --repair indexes it again
the pack index destroyed    serve refuses; fsck --repair rebuilds it
meta.sqlite tail damaged    serve refuses in one line naming fsck; fsck says
meta.sqlite truncated         DAMAGED meta.sqlite, exits 1, no traceback
==========================  =====================================================
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ServerProcess, make_client


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "s3gw", *args], capture_output=True, text=True,
                          timeout=timeout)


def chunk_files(data):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(data, "chunks"))
                  for f in fs if not f.startswith("."))


def pack_files(data):
    return sorted(os.path.join(data, "packs", f) for f in os.listdir(os.path.join(data, "packs"))
                  if f.endswith(".pack"))


def flip(path, offset_from_end=10):
    with open(path, "r+b") as f:
        f.seek(-offset_from_end, os.SEEK_END)
        b = f.read(1)
        f.seek(-offset_from_end, os.SEEK_END)
        f.write(bytes([b[0] ^ 0x5A]))


def damage(kind, data):
    if kind == "flip-file":
        flip(chunk_files(data)[0])
    elif kind == "flip-pack":
        flip(pack_files(data)[0])
    elif kind == "truncate-file":
        path = chunk_files(data)[0]
        os.truncate(path, os.path.getsize(path) // 2)
    elif kind == "delete-file":
        os.unlink(chunk_files(data)[0])
    else:
        raise AssertionError(kind)


SIZES = {"flip-file": 300_000, "flip-pack": 20_000, "truncate-file": 300_000, "delete-file": 300_000}


def get_error(s3, bucket, key, **kw):
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()
    return info.value.response


@pytest.fixture
def served(tmp_path):
    data = str(tmp_path / "data")
    srv = ServerProcess(data).start()
    yield srv, data, make_client(srv.endpoint)
    srv.stop()


@pytest.mark.parametrize("kind", sorted(SIZES))
def test_damaged_chunk_answers_data_damaged_and_a_reupload_heals(served, kind):
    srv, data, s3 = served
    body = os.urandom(SIZES[kind])
    s3.create_bucket(Bucket="master.rot")
    s3.put_object(Bucket="master.rot", Key="a/k", Body=body)
    damage(kind, data)
    for _ in range(2):      # logged once, answered the same each time
        err = get_error(s3, "master.rot", "a/k")
        assert err["Error"]["Code"] == "DataDamaged"
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 503
    log = srv.log()
    assert "Traceback" not in log and " 500 " not in log
    lines = [line for line in log.splitlines() if "stored data damaged" in line]
    assert len(lines) == 1 and "a/k" in lines[0] and "master.rot" in lines[0]
    if kind != "delete-file":
        stats = json.loads(cli("stats", "--data", data, "--json").stdout)
        assert stats["quarantined_chunks"] == 1
    fsck = cli("fsck", "--data", data)
    assert fsck.returncode == 1, fsck.stdout
    commit = s3.head_object(Bucket="master.rot", Key="a/k")["VersionId"]
    assert f"DAMAGED repo rot, branch master, key a/k, commit {commit}" in fsck.stdout
    assert "Traceback" not in fsck.stderr
    # the same bytes uploaded again (another key): the chunk is written again
    s3.put_object(Bucket="master.rot", Key="again", Body=body)
    assert s3.get_object(Bucket="master.rot", Key="a/k")["Body"].read() == body
    assert s3.get_object(Bucket="master.rot", Key="again")["Body"].read() == body
    fsck = cli("fsck", "--data", data)
    assert fsck.returncode == 0, fsck.stdout


@pytest.mark.parametrize("kind", ["flip-file", "flip-pack", "truncate-file"])
def test_dedup_never_trusts_a_damaged_chunk(served, kind):
    """The bug of issue 23: a PUT of the very bytes of a damaged chunk found it
    'already stored' and made a new object as unreadable as the old one."""
    srv, data, s3 = served
    body = os.urandom(SIZES[kind])
    s3.create_bucket(Bucket="master.dd")
    s3.put_object(Bucket="master.dd", Key="old", Body=body)
    damage(kind, data)
    s3.put_object(Bucket="master.dd", Key="new", Body=body)     # no read in between
    assert s3.get_object(Bucket="master.dd", Key="new")["Body"].read() == body
    assert s3.get_object(Bucket="master.dd", Key="old")["Body"].read() == body   # healed too
    assert cli("fsck", "--data", data).returncode == 0


def test_ranged_get_into_a_damaged_chunk_fails_before_the_headers(served):
    srv, data, s3 = served
    body = os.urandom(3 << 20)
    s3.create_bucket(Bucket="master.rg")
    s3.put_object(Bucket="master.rg", Key="k", Body=body)
    for path in chunk_files(data):
        flip(path, 5)
    err = get_error(s3, "master.rg", "k", Range="bytes=1000-200000")
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert err["Error"]["Code"] == "DataDamaged"


def test_lost_pack_index_row_is_repaired(served):
    srv, data, s3 = served
    small = os.urandom(20_000)
    s3.create_bucket(Bucket="master.ix")
    s3.put_object(Bucket="master.ix", Key="s", Body=small)
    srv.stop()
    db = sqlite3.connect(os.path.join(data, "packs", "index.sqlite"))
    db.execute("DELETE FROM chunks")
    db.commit()
    db.close()
    fsck = cli("fsck", "--data", data)
    assert fsck.returncode == 1 and "missing" in fsck.stdout and "key s," in fsck.stdout
    fsck = cli("fsck", "--data", data, "--repair")
    assert fsck.returncode == 0 and "indexed again" in fsck.stdout, fsck.stdout
    srv.start()
    assert s3.get_object(Bucket="master.ix", Key="s")["Body"].read() == small


def test_destroyed_pack_index_is_rebuilt(served):
    srv, data, s3 = served
    small = os.urandom(20_000)
    s3.create_bucket(Bucket="master.ix")
    s3.put_object(Bucket="master.ix", Key="s", Body=small)
    srv.stop()
    index = os.path.join(data, "packs", "index.sqlite")
    with open(index, "r+b") as f:
        f.write(b"\0" * 200)       # the header gone
    start = subprocess.run([sys.executable, "-m", "s3gw", "serve", "--data", data, "--port", "0"],
                           capture_output=True, text=True, timeout=60)
    assert start.returncode == 1 and "fsck" in start.stderr and len(start.stderr.splitlines()) == 1
    fsck = cli("fsck", "--data", data)
    assert fsck.returncode == 1 and "DAMAGED packs/index.sqlite" in fsck.stdout, fsck.stdout
    fsck = cli("fsck", "--data", data, "--repair")
    assert fsck.returncode == 0 and "rebuilt" in fsck.stdout, fsck.stdout
    srv.start()
    assert s3.get_object(Bucket="master.ix", Key="s")["Body"].read() == small


@pytest.mark.parametrize("how", ["tail", "truncate"])
def test_damaged_metadata_is_refused_in_one_line(served, how):
    srv, data, s3 = served
    s3.create_bucket(Bucket="master.md")
    for i in range(300):
        s3.put_object(Bucket="master.md", Key=f"k{i:04d}", Body=os.urandom(3000))
    srv.stop()
    meta = os.path.join(data, "meta.sqlite")
    for ext in ("-wal", "-shm"):
        assert not os.path.exists(meta + ext) or ext == "-shm" or os.path.getsize(meta + ext) == 0
    size = os.path.getsize(meta)
    if how == "tail":
        with open(meta, "r+b") as f:
            f.seek(size - 3 * 4096)
            f.write(os.urandom(3 * 4096))
    else:
        os.truncate(meta, size // 3)
    start = subprocess.run([sys.executable, "-m", "s3gw", "serve", "--data", data, "--port", "0"],
                           capture_output=True, text=True, timeout=60)
    assert start.returncode == 1, start.stderr
    assert len(start.stderr.splitlines()) == 1 and "fsck" in start.stderr, start.stderr
    assert "meta.sqlite" in start.stderr
    fsck = cli("fsck", "--data", data)
    assert fsck.returncode == 1 and "DAMAGED meta.sqlite" in fsck.stdout, fsck.stdout
    assert "Traceback" not in fsck.stderr + fsck.stdout
    stats = cli("stats", "--data", data)
    assert stats.returncode == 1 and "Traceback" not in stats.stderr and "fsck" in stats.stderr
