"""Real clients end to end against a live ``s3gw serve``: one scenario per client.

aws cli, boto3, s3cmd, rclone, minio-py and s3fs each run the same user story with
their own commands: mb; ls of buckets; put small files whose keys have spaces, ``+``,
``%``, unicode and deep paths; put a file above the client's multipart threshold; ls
with and without recursion (and of prefixes, and of a bucket with more than one page of
keys); get everything back byte-identical (aws cli and boto3 with parallel ranged GETs,
checked in the access log); server-side copy and move; sync of a folder twice (the
second run transfers nothing), then after a change, then down into an empty folder; rm
of one key and of many; rb. Also the bucket names S3 allows that s3gw's
``<branch>.<repo>`` scheme cannot honour (recorded as "unsupported" with the reason).
A boto3 client (``s3``) is the independent witness of what is on the server after each
step.

Every operation is a result row (tests/compat/recorder.py); docs/compatibility.md is
generated from the rows by ``python -m tests.compat.make_matrix``. The default run uses
a 20 MiB large file; ``-m slow`` adds the 41 MiB large-file round trip per client.
Auth is off here (any credentials); tests/compat/test_clients_auth.py runs the same
scenario against an auth-on gateway with real keys.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.compat.clients import Client, MiB
from tests.compat.recorder import Recorder

pytestmark = pytest.mark.compat

DEFAULT_LARGE_MIB = 20
SLOW_LARGE_MIB = 41

# keys with a space, '+', '%' (alone and as a %xx look-alike), unicode, and a deep path
KEYS = [
    "plain.txt",
    "with space/file name.txt",
    "plus+dir/a+b=c.txt",
    "pct/100% 50%25 %2F %41.txt",
    "ünï/日本語 ファイル ✓.txt",
    "deep/a/b/c/d/e/f/g/h/i/leaf.txt",
]
LARGE_KEY = "large/big file+1 ü.bin"
COPY_KEY = "copies/copy of+ü 100%.txt"
LARGE_COPY_KEY = "copies/big copy+ü.bin"
MOVED_KEY = "moved/über+moved %2B.txt"
# the folder synced twice: relative path -> size
TREE = {
    "x.txt": 1000,
    "sub dir/y+z.txt": 1001,
    "ünï/ü 1%.txt": 1002,
    "a/b/c/d/deep file.bin": 70_000,
}
LS_PREFIXES = ["with space/", "plus+dir/", "pct/", "ünï/", "deep/a/b/"]
SYNC_OPS = ["sync (first run uploads all)", "sync again (transfers nothing)",
            "sync after changes (1 new, 1 changed, 1 deleted)",
            "sync down (bucket to empty folder)"]


def one_level(keys: set[str], prefix: str) -> set[str]:
    """What a delimiter='/' listing of ``prefix`` shows: keys and common prefixes."""
    out = set()
    for k in keys:
        if k.startswith(prefix):
            rest = k[len(prefix):]
            out.add(prefix + rest.split("/", 1)[0] + "/" if "/" in rest else k)
    return out


def check_synced(s3, bucket: str, contents: dict[str, bytes]) -> None:
    on_server = oracle_keys(s3, bucket, "synced/")
    want = {f"synced/{rel}" for rel in contents}
    assert on_server == want, f"on the server: missing {sorted(want - on_server)}, " \
                              f"extra {sorted(on_server - want)}"
    for rel, data in contents.items():
        assert oracle_bytes(s3, bucket, f"synced/{rel}") == data, f"{rel}: bytes differ"


def oracle_keys(s3, bucket: str, prefix: str = "") -> set[str]:
    return {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                             Prefix=prefix)
            for o in page.get("Contents", [])}


def oracle_bytes(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def oracle_missing(s3, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    return False


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_object(s3, bucket, key) -> str:
    h = hashlib.sha256()
    for block in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(1 << 20):
        h.update(block)
    return h.hexdigest()


def access_lines(server, bucket: str, status: int) -> int:
    time.sleep(0.5)  # the server writes its access lines every 0.2 s (http.accesslog)
    return sum(1 for line in server.log().splitlines()
               if f"/{bucket}/" in line and f" {status} " in line and "GET " in line)


def cleanup(s3, bucket: str) -> None:
    """Leave the shared server tidy whatever the client managed to do."""
    try:
        keys = oracle_keys(s3, bucket)
        for i in range(0, len(keys), 1000):
            batch = sorted(keys)[i:i + 1000]
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch]})
        s3.delete_bucket(Bucket=bucket)
    except ClientError:
        pass


def write_random(path, size: int) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def large_steps(c, rec, s3, server, tmp_path, bucket: str, mib: int) -> None:
    """Put a file above the client's multipart threshold, get it back, copy it server-side."""
    big = tmp_path / "big.bin"
    size = mib * MiB + 12345  # not a multiple of any part size
    write_random(big, size)
    digest = sha256_file(big)

    with rec.step(f"put large {mib} MiB (multipart)") as st:
        c.put_large(big, bucket, LARGE_KEY)
        head = s3.head_object(Bucket=bucket, Key=LARGE_KEY)
        assert head["ContentLength"] == size, f"stored {head['ContentLength']} bytes, sent {size}"
        assert "-" in head["ETag"], f"ETag {head['ETag']}: the client did not upload multipart"
        st.note = f"{head['ETag'].strip(chr(34)).rsplit('-', 1)[1]} parts"

    with rec.step(f"get large {mib} MiB") as st:
        out = tmp_path / "big.back"
        before = access_lines(server, bucket, 206)
        c.get(bucket, LARGE_KEY, out)
        assert out.stat().st_size == size, f"got {out.stat().st_size} bytes, want {size}"
        assert sha256_file(out) == digest, "downloaded bytes differ"
        ranged = access_lines(server, bucket, 206) - before
        if c.ranged_download:
            assert ranged >= 2, f"expected parallel ranged GETs, saw {ranged} 206 answers"
            st.note = f"{ranged} parallel ranged GETs"
        out.unlink()

    with rec.step(f"copy large {mib} MiB (server-side)"):
        c.copy(bucket, LARGE_KEY, LARGE_COPY_KEY)
        assert s3.head_object(Bucket=bucket, Key=LARGE_COPY_KEY)["ContentLength"] == size
        assert sha256_object(s3, bucket, LARGE_COPY_KEY) == digest, "copied bytes differ"


MANY = 1030  # more than one page (1000) of a listing


def fill_many_keys_bucket(s3) -> tuple[str, set[str]]:
    """Create a bucket with MANY keys; returns (bucket, keys)."""
    from concurrent.futures import ThreadPoolExecutor
    bucket = f"master.compat-many-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    keys = {f"d{i % 3} ü+/{i:05d} x%.txt" for i in range(MANY)}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=b"1"), sorted(keys)))
    return bucket, keys


@pytest.fixture(scope="session")
def many_keys_bucket(s3):
    """A bucket with MANY keys (shared, read-only): listings must paginate."""
    bucket, keys = fill_many_keys_bucket(s3)
    yield bucket, keys
    cleanup(s3, bucket)


def many_keys_step(c, rec, many_keys_bucket) -> None:
    bucket, keys = many_keys_bucket
    with rec.step(f"ls recursive of {MANY} keys (paginated)"):
        got = c.ls_recursive(bucket)
        assert got == keys, f"{len(got)} keys listed; missing {len(keys - got)}, " \
                            f"e.g. {sorted(keys - got)[:3]}; extra {sorted(got - keys)[:3]}"


def scenario(c, rec, s3, server, tmp_path, bucket: str) -> None:
    files = tmp_path / "files"

    with rec.step("mb"):
        c.mb(bucket)
        s3.head_bucket(Bucket=bucket)

    with rec.step("ls buckets"):
        names = c.list_buckets()
        assert bucket in names, f"{bucket} not among {sorted(names)[:20]}"

    dotted_name_step(c, rec, s3)
    bare_name_steps(c, rec, s3)

    small: dict[str, bytes] = {}
    with rec.step("put small (keys: space + % unicode deep)"):
        bad = []
        for i, key in enumerate(KEYS):
            data = write_random(files / f"small{i}.bin", 1000 + 7 * i)
            try:
                c.put(files / f"small{i}.bin", bucket, key)
                got = oracle_bytes(s3, bucket, key)
                if got != data:
                    bad.append(f"{key!r}: stored {len(got)} bytes differ")
                else:
                    small[key] = data
            except Exception as e:  # noqa: BLE001 - report every key
                bad.append(f"{key!r}: {str(e)[:300]}")
        stored = oracle_keys(s3, bucket)
        stray = stored - set(KEYS)
        assert not bad and not stray, f"failed keys: {bad}; unexpected keys on server: {stray}"

    large_steps(c, rec, s3, server, tmp_path, bucket, DEFAULT_LARGE_MIB)

    with rec.step("ls (one level, delimiter /)"):
        expected = one_level(oracle_keys(s3, bucket), "")
        got = c.ls(bucket)
        assert got == expected, f"missing {sorted(expected - got)}, extra {sorted(got - expected)}"

    with rec.step("ls recursive"):
        truth = oracle_keys(s3, bucket)
        got = c.ls_recursive(bucket)
        assert got == truth, f"missing {sorted(truth - got)}, extra {sorted(got - truth)}"

    with rec.step("ls of prefixes (space + % unicode deep)"):
        truth = oracle_keys(s3, bucket)
        bad = []
        for prefix in LS_PREFIXES:
            expected = one_level(truth, prefix)
            try:
                got = c.ls(bucket, prefix)
            except Exception as e:  # noqa: BLE001 - report every prefix
                bad.append(f"{prefix!r}: {str(e)[:300]}")
                continue
            if got != expected:
                bad.append(f"{prefix!r}: missing {sorted(expected - got)}, "
                           f"extra {sorted(got - expected)}")
        assert not bad, "; ".join(bad)

    with rec.step("get small (byte-identical)"):
        bad = []
        for i, (key, data) in enumerate(small.items()):
            out = tmp_path / "back" / f"small{i}.bin"
            out.parent.mkdir(exist_ok=True)
            try:
                c.get(bucket, key, out)
                if out.read_bytes() != data:
                    bad.append(f"{key!r}: bytes differ")
            except Exception as e:  # noqa: BLE001
                bad.append(f"{key!r}: {str(e)[:300]}")
        assert small, "nothing was uploaded"
        assert not bad, f"failed keys: {bad}"

    with rec.step("copy (server-side)"):
        src = KEYS[1]
        c.copy(bucket, src, COPY_KEY)
        assert oracle_bytes(s3, bucket, COPY_KEY) == small[src], "copied bytes differ"
        assert oracle_bytes(s3, bucket, src) == small[src], "the source changed"

    with rec.step("move (server-side)"):
        src = KEYS[2]
        c.move(bucket, src, MOVED_KEY)
        assert oracle_bytes(s3, bucket, MOVED_KEY) == small[src], "moved bytes differ"
        assert oracle_missing(s3, bucket, src), "the source is still there"

    if c.no_sync:
        for op in SYNC_OPS:
            rec.not_applicable(op, c.no_sync)
    else:
        tree = tmp_path / "tree"
        contents = {rel: write_random(tree / rel, size) for rel, size in TREE.items()}
        with rec.step("sync (first run uploads all)") as st:
            up, deleted = c.sync(tree, bucket, "synced/")
            check_synced(s3, bucket, contents)
            assert (up, deleted) == (len(TREE), 0), \
                f"the client reported {up} uploads and {deleted} deletes, expected {len(TREE)}, 0"
            st.note = f"{up} files"
        with rec.step("sync again (transfers nothing)"):
            up, deleted = c.sync(tree, bucket, "synced/")
            assert (up, deleted) == (0, 0), \
                f"the second sync transferred {up} file(s) and deleted {deleted}"
        with rec.step("sync after changes (1 new, 1 changed, 1 deleted)"):
            # same size, new bytes, newer mtime: caught by size+mtime and by MD5 clients
            changed = "x.txt"
            contents[changed] = write_random(tree / changed, TREE[changed])
            later = time.time() + 5
            os.utime(tree / changed, (later, later))
            contents["new ü+.txt"] = write_random(tree / "new ü+.txt", 999)
            (tree / "sub dir/y+z.txt").unlink()
            del contents["sub dir/y+z.txt"]
            up, deleted = c.sync(tree, bucket, "synced/")
            check_synced(s3, bucket, contents)
            assert (up, deleted) == (2, 1), \
                f"the client reported {up} uploads and {deleted} deletes, expected 2, 1"
        with rec.step("sync down (bucket to empty folder)"):
            down = tmp_path / "down"
            n = c.sync_down(bucket, "synced/", down)
            got = {p.relative_to(down).as_posix(): p.read_bytes()
                   for p in down.rglob("*") if p.is_file()}
            assert set(got) == set(contents), \
                f"missing {sorted(set(contents) - set(got))}, extra {sorted(set(got) - set(contents))}"
            assert all(got[k] == contents[k] for k in contents), "downloaded bytes differ"
            assert n == len(contents), f"the client reported {n} downloads, expected {len(contents)}"

    with rec.step("rm one"):
        c.rm(bucket, KEYS[0])
        assert oracle_missing(s3, bucket, KEYS[0]), "still there"
        assert oracle_bytes(s3, bucket, KEYS[3]) == small[KEYS[3]], "removed the wrong key"

    with rec.step("rm many") as st:
        remaining = sorted(oracle_keys(s3, bucket))
        c.rm_many(bucket, remaining)
        left = oracle_keys(s3, bucket)
        assert not left, f"{len(left)} keys left: {sorted(left)[:10]}"
        st.note = f"{len(remaining)} keys"

    with rec.step("rb"):
        c.rb(bucket)
        with pytest.raises(ClientError):
            s3.head_bucket(Bucket=bucket)


DOTTED_OP = "mb of a DNS-style dotted name (logs.example.com)"
DOTTED_WHY = ("s3gw bucket names are <branch>.<repo>; a three-part name is "
              "<32-hex commit>.<branch>.<repo> (a read-only view of a commit), so a DNS-style "
              "name like logs.example.com is refused with 400 InvalidBucketName")


def dotted_name_step(c, rec, s3) -> None:
    """S3 allows bucket names like logs.example.com; s3gw's naming scheme cannot."""
    name = f"logs-{c.slug}.example.com"
    try:
        c.mb(name)
    except Exception as e:  # noqa: BLE001 - the expected refusal
        text = str(e)
        try:
            s3.head_bucket(Bucket=name)
            exists = True
        except ClientError:
            exists = False
        # s3fs turns the error into OSError(EINVAL, <message>): accept the message too
        if not exists and ("InvalidBucketName" in text or "specified bucket is not valid" in text):
            rec.unsupported(DOTTED_OP, DOTTED_WHY)
        else:
            with rec.step(DOTTED_OP):
                raise AssertionError(f"expected a clean InvalidBucketName refusal: {text[:400]}")
    else:
        cleanup(s3, name)
        with rec.step(DOTTED_OP) as st:
            st.note = "accepted"


BARE_OP = "mb + rb of a bare name (no branch: mybucket)"
BARE_LS_OP = "ls buckets shows a bare name as created"
BARE_WHY = ("a bare bucket name is the master branch of that repo: ListBuckets lists it as "
            "master.<name>; every operation through the bare name works")


def bare_name_steps(c, rec, s3) -> None:
    bare = f"bare{c.slug}{uuid.uuid4().hex[:6]}"
    listed = set()
    try:
        with rec.step(BARE_OP):
            c.mb(bare)
            s3.head_bucket(Bucket=bare)
            listed = c.list_buckets()
            c.rb(bare)
            with pytest.raises(ClientError):
                s3.head_bucket(Bucket=bare)
    finally:
        cleanup(s3, bare)
    if bare in listed:
        with rec.step(BARE_LS_OP):
            pass
    elif f"master.{bare}" in listed:
        rec.unsupported(BARE_LS_OP, BARE_WHY)
    else:
        with rec.step(BARE_LS_OP):
            raise AssertionError(f"neither {bare} nor master.{bare} among {sorted(listed)[:20]}")


def _bucket_for(c) -> str:
    return f"master.compat-{c.slug}-{uuid.uuid4().hex[:8]}"


def run_scenario(client, server, s3, tmp_path, rows, many_keys_bucket, nodeid) -> None:
    rec = Recorder(client.name, client.version(), nodeid, rows)
    bucket = _bucket_for(client)
    try:
        scenario(client, rec, s3, server, tmp_path, bucket)
        many_keys_step(client, rec, many_keys_bucket)
    finally:
        cleanup(s3, bucket)
    rec.finish()


def test_client_scenario(client, server, s3, tmp_path, compat_rows, many_keys_bucket, request):
    run_scenario(client, server, s3, tmp_path, compat_rows, many_keys_bucket, request.node.nodeid)


@pytest.mark.slow
def test_client_large_file(client, server, s3, tmp_path, compat_rows, request):
    rec = Recorder(client.name, client.version(), request.node.nodeid, compat_rows)
    bucket = _bucket_for(client)
    s3.create_bucket(Bucket=bucket)
    try:
        large_steps(client, rec, s3, server, tmp_path, bucket, SLOW_LARGE_MIB)
    finally:
        cleanup(s3, bucket)
    rec.finish()


PURGE_OP = "rb of a bucket with history (purge, every version)"
VERSIONS_OP = "delete every version by id (bucket with history)"


def _history_bucket(s3, client) -> str:
    bucket = _bucket_for(client)
    s3.create_bucket(Bucket=bucket)
    for i in range(3):
        for body in (b"one", b"two"):
            s3.put_object(Bucket=bucket, Key=f"h/k{i}", Body=body + b"%d" % i)
    s3.delete_object(Bucket=bucket, Key="h/k0")
    return bucket


def test_client_versions_cleanup(client, server, s3, compat_rows, request):
    """rclone purge / delete --s3-versions, aws s3 rb --force and boto3's
    ``object_versions.delete()`` against a bucket with history (docs/versioning.md)."""
    rec = Recorder(client.name, client.version(), request.node.nodeid, compat_rows)
    for op, method in ((PURGE_OP, "purge_history"), (VERSIONS_OP, "delete_all_versions")):
        if getattr(type(client), method) is getattr(Client, method):
            rec.not_applicable(op, "no such command in this client")
            continue
        bucket = _history_bucket(s3, client)
        try:
            with rec.step(op) as st:
                getattr(client, method)(bucket)
                if method == "purge_history":
                    with pytest.raises(ClientError):
                        s3.head_bucket(Bucket=bucket)
                else:
                    r = s3.list_object_versions(Bucket=bucket)
                    assert not r.get("Versions"), f"{len(r['Versions'])} versions left"
                    markers = len(r.get("DeleteMarkers", []))
                    if markers:   # rclone lists no delete markers (as against AWS)
                        st.note = f"{markers} delete marker left (the client does not list them)"
        finally:
            cleanup(s3, bucket)
    rec.finish()
