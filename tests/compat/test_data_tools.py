"""The tools of data work end to end against a live ``s3gw serve``.

pyarrow (``pyarrow.fs.S3FileSystem``: the AWS C++ SDK), polars (Rust ``object_store``),
obstore (the same Rust crate, called directly), pandas (through s3fs), DVC (an S3 remote,
run as a subprocess) and the AWS SDK for JavaScript v3 (``tests/compat/js/scenario.mjs``
under node), each configured as its users configure it for a non-AWS endpoint, doing
what its users do: write and read a hive-partitioned Parquet dataset of several files,
CSV round trips, listings, ranged reads, multipart uploads, server-side copies, deletes,
``dvc push`` / ``dvc pull`` into a clean workspace; and reading an old version, by its
version id (a commit id) where the tool can pass one, and through a commit bucket
(``<commit>.master.<repo>``, read-only) where it cannot.

Every operation is a result row (tests/compat/recorder.py) and goes into the second
table of docs/compatibility.md (``python -m tests.compat.make_matrix``). Each scenario
runs twice: against the auth-off gateway (the rows of the matrix) and against an auth-on
one with the admin's key pair (``auth_server``: every request signed and checked; its
rows are not merged). A boto3 client is the independent witness of what is on the server.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.compat.clients import MiB, REGION, ACCESS_KEY, SECRET_KEY, _base_env
from tests.compat.recorder import Recorder
from tests.compat.test_clients import cleanup, oracle_bytes, oracle_keys

pytestmark = pytest.mark.compat

JS_DIR = Path(__file__).parent / "js"

# operation names shared by the tools (one row of the matrix each)
WRITE_DS = "write Parquet dataset (hive-partitioned, several files)"
READ_DS = "read Parquet dataset back (partition filter)"
CSV = "write + read CSV"
PUT = "put object"
CONDITIONAL_PUT = "conditional put (create only, update if ETag matches)"
GET = "get object (byte-identical)"
RANGE = "get with Range"
LIST = "list"
MULTIPART = "multipart upload 20 MiB"
COPY = "copy (server-side)"
DELETE = "delete"
OLD_BY_ID = "read an old version by version id (commit)"
OLD_BY_BUCKET = "read an old version through a commit bucket (<commit>.master.<repo>)"
DVC_PUSH = "dvc add + push"
DVC_PULL = "dvc pull into a clean workspace"
DVC_STATUS = "dvc status -c clean afterwards"

# partition values with a space, '+', '%' and unicode: each tool escapes them in its own way
KINDS = ["plain", "with space", "ü+100%"]


@dataclass
class Target:
    """The gateway a scenario runs against, its witness client and where rows go."""
    server: object
    s3: object
    rows: list
    auth: bool
    key: str = ACCESS_KEY
    secret: str = SECRET_KEY
    buckets: list = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def bucket(self, tool: str) -> str:
        name = f"master.{tool}-{uuid.uuid4().hex[:8]}"
        self.s3.create_bucket(Bucket=name)
        self.buckets.append(name)
        return name

    def commit_bucket(self, bucket: str, key: str) -> str:
        """The read-only bucket of the commit that is the branch head now."""
        return f"{self.s3.head_object(Bucket=bucket, Key=key)['VersionId']}.{bucket}"


@pytest.fixture(params=["auth-off", "auth-on"])
def target(request, compat_rows):
    if request.param == "auth-off":
        t = Target(request.getfixturevalue("server"), request.getfixturevalue("s3"),
                   compat_rows, auth=False)
    else:
        srv = request.getfixturevalue("auth_server")
        t = Target(srv, request.getfixturevalue("auth_s3"), [], auth=True,
                   key=srv.credentials[0], secret=srv.credentials[1])
    yield t
    for b in t.buckets:
        cleanup(t.s3, b)


def frame(n: int = 600):
    """A table with a partition column of awkward values, ints, floats and unicode text."""
    return {
        "kind": [KINDS[i % len(KINDS)] for i in range(n)],
        "i": list(range(n)),
        "x": [i / 7 for i in range(n)],
        "s": [f"row {i}: ü, \"q\"; 100%" for i in range(n)],
    }


def parquet_keys(s3, bucket: str, prefix: str) -> list[str]:
    return sorted(k for k in oracle_keys(s3, bucket, prefix) if k.endswith(".parquet"))


def check_partitions(keys: list[str], prefix: str, min_files: int) -> str:
    dirs = {k[len(prefix):].split("/", 1)[0] for k in keys}
    assert len(dirs) == len(KINDS), f"partition folders {sorted(dirs)}"
    assert all(d.startswith("kind=") for d in dirs), f"partition folders {sorted(dirs)}"
    assert len(keys) >= min_files, f"{len(keys)} files: {keys}"
    return f"{len(keys)} files in {sorted(dirs)}"


def ranged_gets(server, bucket: str, since: int) -> int:
    import time
    time.sleep(0.5)  # the access log is written every 0.2 s
    lines = server.log().splitlines()[since:]
    return sum(1 for line in lines if f"/{bucket}/" in line and " 206 " in line)


def log_len(server) -> int:
    return len(server.log().splitlines())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def unsupported_version_id(rec, tool: str, why: str) -> None:
    rec.unsupported(OLD_BY_ID, f"{tool} cannot pass a version id ({why}); read the commit "
                               "bucket <commit>.master.<repo> instead")


# --------------------------------------------------------------------------- pyarrow

def test_pyarrow(target, tmp_path, request):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    rec = Recorder("pyarrow", pa.__version__, request.node.nodeid, target.rows)
    s3, bucket = target.s3, target.bucket("pyarrow")
    fs = pafs.S3FileSystem(endpoint_override=target.endpoint.split("://", 1)[1], scheme="http",
                           access_key=target.key, secret_key=target.secret, region=REGION)
    table = pa.table(frame())

    with rec.step(WRITE_DS) as st:
        ds.write_dataset(table, f"{bucket}/ds", filesystem=fs, format="parquet",
                         partitioning=ds.partitioning(pa.schema([("kind", pa.string())]),
                                                      flavor="hive"),
                         max_rows_per_file=100, max_rows_per_group=100)
        st.note = check_partitions(parquet_keys(s3, bucket, "ds/"), "ds/", 6)

    with rec.step(LIST) as st:
        infos = fs.get_file_info(pafs.FileSelector(f"{bucket}/ds", recursive=True))
        files = sorted(i.path.split("/", 1)[1] for i in infos if i.type == pafs.FileType.File)
        assert files == parquet_keys(s3, bucket, "ds/"), f"listed {files}"
        dirs = [i for i in infos if i.type == pafs.FileType.Directory]
        assert len(dirs) == len(KINDS), f"directories {[d.path for d in dirs]}"
        one = fs.get_file_info(f"{bucket}/{files[0]}")
        assert one.size == s3.head_object(Bucket=bucket, Key=files[0])["ContentLength"]
        st.note = "FileSelector(recursive=True), get_file_info"

    with rec.step(READ_DS) as st:
        dset = ds.dataset(f"{bucket}/ds", filesystem=fs, format="parquet", partitioning="hive")
        back = dset.to_table()
        assert sorted(back.column("i").to_pylist()) == list(range(table.num_rows))
        sub = dset.to_table(filter=ds.field("kind") == KINDS[2])
        assert set(sub.column("kind").to_pylist()) == {KINDS[2]}
        assert sub.num_rows == table.num_rows // len(KINDS), f"{sub.num_rows} rows"
        st.note = f"{len(dset.files)} files"

    pq.write_table(table, f"{bucket}/one.parquet", filesystem=fs)
    stored = oracle_bytes(s3, bucket, "one.parquet")
    with rec.step(RANGE) as st:
        with fs.open_input_file(f"{bucket}/one.parquet") as f:
            assert f.size() == len(stored)
            assert f.read_at(4, 0) == b"PAR1"
            assert f.read_at(1000, 500) == stored[500:1500]
            f.seek(len(stored) - 8)
            assert f.read() == stored[-8:]
        with fs.open_input_stream(f"{bucket}/one.parquet") as f:
            assert f.read() == stored
        st.note = "open_input_file read_at/seek, open_input_stream"

    with rec.step(MULTIPART) as st:
        big = os.urandom(20 * MiB + 12345)
        with fs.open_output_stream(f"{bucket}/big.bin") as f:
            for i in range(0, len(big), 3 * MiB):
                f.write(big[i:i + 3 * MiB])
        head = s3.head_object(Bucket=bucket, Key="big.bin")
        assert head["ContentLength"] == len(big)
        assert "-" in head["ETag"], f"ETag {head['ETag']}: not multipart"
        with fs.open_input_file(f"{bucket}/big.bin") as f:
            assert sha256(f.read()) == sha256(big), "read back differs"
        st.note = f"open_output_stream: {head['ETag'].strip(chr(34)).rsplit('-', 1)[1]} parts"

    with rec.step(COPY) as st:
        fs.copy_file(f"{bucket}/one.parquet", f"{bucket}/copies/one ü+.parquet")
        assert oracle_bytes(s3, bucket, "copies/one ü+.parquet") == stored
        fs.move(f"{bucket}/copies/one ü+.parquet", f"{bucket}/moved.parquet")
        assert oracle_bytes(s3, bucket, "moved.parquet") == stored
        assert "copies/one ü+.parquet" not in oracle_keys(s3, bucket)
        st.note = "copy_file, move"

    # an old version: overwrite one.parquet, then read the commit before it
    commit = target.commit_bucket(bucket, "one.parquet")
    pq.write_table(table.slice(0, 10), f"{bucket}/one.parquet", filesystem=fs)
    unsupported_version_id(rec, "pyarrow.fs.S3FileSystem", "no version id parameter")
    with rec.step(OLD_BY_BUCKET):
        old = pq.read_table(f"{commit}/one.parquet", filesystem=fs)
        assert old.num_rows == table.num_rows, f"{old.num_rows} rows"
        assert pq.read_table(f"{bucket}/one.parquet", filesystem=fs).num_rows == 10

    with rec.step(DELETE) as st:
        fs.delete_file(f"{bucket}/big.bin")
        fs.delete_dir(f"{bucket}/ds")
        # pyarrow keeps the emptied parent of a moved file as a marker object (as on AWS)
        left = oracle_keys(s3, bucket) - {"copies/"}
        assert left == {"one.parquet", "moved.parquet"}, left
        fs.delete_dir_contents(bucket)
        assert not oracle_keys(s3, bucket), oracle_keys(s3, bucket)
        st.note = "delete_file, delete_dir, delete_dir_contents"
    rec.finish()


# --------------------------------------------------------------------------- polars

def test_polars(target, tmp_path, request):
    pl = pytest.importorskip("polars")
    rec = Recorder("polars", pl.__version__, request.node.nodeid, target.rows)
    s3, bucket = target.s3, target.bucket("polars")
    storage_options = {
        "aws_endpoint_url": target.endpoint, "aws_access_key_id": target.key,
        "aws_secret_access_key": target.secret, "aws_region": REGION,
        "aws_allow_http": "true",
    }
    df = pl.DataFrame(frame())

    with rec.step(WRITE_DS) as st:
        df.write_parquet(f"s3://{bucket}/ds/", storage_options=storage_options,
                         partition_by="kind")
        st.note = check_partitions(parquet_keys(s3, bucket, "ds/"), "ds/", len(KINDS))

    with rec.step(READ_DS) as st:
        since = log_len(target.server)
        lf = pl.scan_parquet(f"s3://{bucket}/ds/**/*.parquet", storage_options=storage_options,
                             hive_partitioning=True)
        back = lf.collect()
        assert back.sort("i")["i"].to_list() == list(range(df.height))
        assert back.sort("i")["kind"].to_list() == df["kind"].to_list()
        sub = lf.filter(pl.col("kind") == KINDS[2]).collect()
        assert sub.height == df.height // len(KINDS), f"{sub.height} rows"
        st.note = f"scan_parquet with a glob: {ranged_gets(target.server, bucket, since)} ranged GETs"

    with rec.step(CSV) as st:
        df.write_csv(f"s3://{bucket}/t.csv", storage_options=storage_options)
        assert oracle_bytes(s3, bucket, "t.csv").startswith(b"kind,i,x,s\n")
        back = pl.read_csv(f"s3://{bucket}/t.csv", storage_options=storage_options)
        assert back.equals(df), "the CSV read back differs"
        st.note = "write_csv, read_csv"

    df.write_parquet(f"s3://{bucket}/one.parquet", storage_options=storage_options)
    commit = target.commit_bucket(bucket, "one.parquet")
    df.head(10).write_parquet(f"s3://{bucket}/one.parquet", storage_options=storage_options)
    unsupported_version_id(rec, "polars", "storage_options have no version")
    with rec.step(OLD_BY_BUCKET):
        old = pl.read_parquet(f"s3://{commit}/one.parquet", storage_options=storage_options)
        assert old.equals(df), f"{old.height} rows"
        now = pl.scan_parquet(f"s3://{bucket}/one.parquet", storage_options=storage_options)
        assert now.collect().height == 10
    rec.finish()


# --------------------------------------------------------------------------- obstore

def test_obstore(target, tmp_path, request):
    obs = pytest.importorskip("obstore")
    from obstore.store import S3Store
    rec = Recorder("obstore", obs.__version__, request.node.nodeid, target.rows)
    s3, bucket = target.s3, target.bucket("obstore")

    def store(name: str) -> S3Store:
        return S3Store(name, endpoint=target.endpoint, access_key_id=target.key,
                       secret_access_key=target.secret, region=REGION,
                       client_options={"allow_http": True})

    st_ = store(bucket)
    key = "dir ü/a+b 100%.txt"
    v1, v2 = b"version one: hello from obstore\n", b"version two\n"
    put1 = {}

    with rec.step(PUT) as st:
        put1.update(obs.put(st_, key, v1))
        assert put1["e_tag"] == f'"{hashlib.md5(v1).hexdigest()}"', put1
        assert put1.get("version"), f"no version id answered: {put1}"
        assert oracle_bytes(s3, bucket, key) == v1
        put2 = obs.put(st_, key, v2)
        assert put2["version"] != put1["version"]
        st.note = "version = commit id"

    with rec.step(GET):
        assert obs.get(st_, key).bytes().to_bytes() == v2

    with rec.step(CONDITIONAL_PUT) as st:  # what Delta Lake / lance-style commit locks use
        first = obs.put(st_, "lock.json", b"1", mode="create")
        with pytest.raises(obs.exceptions.AlreadyExistsError):
            obs.put(st_, "lock.json", b"2", mode="create")
        obs.put(st_, "lock.json", b"3", mode={"e_tag": first["e_tag"]})
        with pytest.raises(obs.exceptions.PreconditionError):
            obs.put(st_, "lock.json", b"4", mode={"e_tag": first["e_tag"]})
        assert oracle_bytes(s3, bucket, "lock.json") == b"3"
        obs.delete(st_, "lock.json")
        st.note = "mode=create (If-None-Match: *), mode={e_tag} (If-Match)"

    with rec.step(RANGE) as st:
        assert bytes(obs.get_range(st_, key, start=8, end=11)) == v2[8:11]
        assert bytes(obs.get(st_, key, options={"range": {"suffix": 4}}).bytes()) == v2[-4:]
        parts = obs.get_ranges(st_, key, starts=[0, 5], ends=[3, 9])
        assert [bytes(p) for p in parts] == [v2[0:3], v2[5:9]]
        st.note = "get_range, suffix, get_ranges"

    with rec.step(OLD_BY_ID):
        got = obs.get(st_, key, options={"version": put1["version"]})
        assert got.bytes().to_bytes() == v1

    with rec.step(OLD_BY_BUCKET):
        old = store(f"{put1['version']}.{bucket}")
        assert obs.get(old, key).bytes().to_bytes() == v1

    with rec.step(MULTIPART) as st:
        big = os.urandom(20 * MiB + 12345)
        obs.put(st_, "big.bin", big, chunk_size=5 * MiB)
        head = s3.head_object(Bucket=bucket, Key="big.bin")
        assert head["ContentLength"] == len(big)
        assert "-" in head["ETag"], f"ETag {head['ETag']}: not multipart"
        assert sha256(obs.get(st_, "big.bin").bytes().to_bytes()) == sha256(big)
        st.note = f"put(chunk_size=5 MiB): {head['ETag'].strip(chr(34)).rsplit('-', 1)[1]} parts"

    with rec.step(LIST) as st:
        for i in range(12):
            obs.put(st_, f"many/{i:02d} ü.txt", b"x")
        listed = sorted(o["path"] for batch in obs.list(st_, chunk_size=5) for o in batch)
        assert listed == sorted(oracle_keys(s3, bucket)), listed
        top = obs.list_with_delimiter(st_)
        assert sorted(top["common_prefixes"]) == ["dir ü", "many"], top["common_prefixes"]
        assert [o["path"] for o in top["objects"]] == ["big.bin"], top["objects"]
        st.note = "list, list_with_delimiter"

    with rec.step(COPY):
        obs.copy(st_, key, "copies/copy ü+.txt")
        assert oracle_bytes(s3, bucket, "copies/copy ü+.txt") == v2
        obs.rename(st_, "copies/copy ü+.txt", "renamed.txt")
        assert oracle_bytes(s3, bucket, "renamed.txt") == v2

    with rec.step(DELETE) as st:
        obs.delete(st_, key)
        many = [f"many/{i:02d} ü.txt" for i in range(12)]
        obs.delete(st_, many)
        assert oracle_keys(s3, bucket) == {"big.bin", "renamed.txt"}, oracle_keys(s3, bucket)
        st.note = "one key, and 12 (DeleteObjects)"
    rec.finish()


# --------------------------------------------------------------------------- pandas

def test_pandas(target, tmp_path, request):
    pd = pytest.importorskip("pandas")
    import s3fs
    rec = Recorder("pandas", f"{pd.__version__} (s3fs {s3fs.__version__})",
                   request.node.nodeid, target.rows)
    s3, bucket = target.s3, target.bucket("pandas")
    storage_options = {"client_kwargs": {"endpoint_url": target.endpoint},
                       "key": target.key, "secret": target.secret}
    df = pd.DataFrame(frame())

    with rec.step(CSV) as st:
        df.to_csv(f"s3://{bucket}/t.csv", index=False, storage_options=storage_options)
        back = pd.read_csv(f"s3://{bucket}/t.csv", storage_options=storage_options)
        pd.testing.assert_frame_equal(back, df, check_dtype=False)
        st.note = "to_csv, read_csv"

    with rec.step(WRITE_DS) as st:
        for part in range(2):  # two writes: two files per partition folder
            df.iloc[part::2].to_parquet(f"s3://{bucket}/ds", partition_cols=["kind"],
                                        storage_options=storage_options)
        st.note = check_partitions(parquet_keys(s3, bucket, "ds/"), "ds/", 2 * len(KINDS))

    with rec.step(READ_DS) as st:
        back = pd.read_parquet(f"s3://{bucket}/ds", storage_options=storage_options)
        assert sorted(back["i"]) == list(range(len(df))), f"{len(back)} rows"
        sub = pd.read_parquet(f"s3://{bucket}/ds", storage_options=storage_options,
                              filters=[("kind", "==", KINDS[2])])
        assert len(sub) == len(df) // len(KINDS) and set(sub["kind"]) == {KINDS[2]}
        st.note = "read_parquet (pyarrow engine), filters"

    df.to_parquet(f"s3://{bucket}/one.parquet", storage_options=storage_options)
    version = s3.head_object(Bucket=bucket, Key="one.parquet")["VersionId"]
    df.head(10).to_parquet(f"s3://{bucket}/one.parquet", storage_options=storage_options)
    with rec.step(OLD_BY_ID) as st:
        old = pd.read_parquet(f"s3://{bucket}/one.parquet?versionId={version}",
                              storage_options=dict(storage_options, version_aware=True))
        pd.testing.assert_frame_equal(old, df)
        assert len(pd.read_parquet(f"s3://{bucket}/one.parquet",
                                   storage_options=storage_options)) == 10
        st.note = "version_aware=True, ?versionId="
    with rec.step(OLD_BY_BUCKET):
        old = pd.read_parquet(f"s3://{version}.{bucket}/one.parquet",
                              storage_options=storage_options)
        pd.testing.assert_frame_equal(old, df)
    rec.finish()


# --------------------------------------------------------------------------- DVC

def _dvc_env(target, home: Path) -> dict:
    env = _base_env(home)
    env.update(AWS_ACCESS_KEY_ID=target.key, AWS_SECRET_ACCESS_KEY=target.secret,
               AWS_DEFAULT_REGION=REGION, DVC_NO_ANALYTICS="1",
               XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"),
               DVC_SITE_CACHE_DIR=str(home / "site-cache"))
    return env


def _dvc(cwd: Path, env: dict, *args) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr + proc.stdout).strip().splitlines()[-12:])
        raise AssertionError(f"`dvc {' '.join(args)}` exited {proc.returncode}: {tail}")
    return proc.stdout + proc.stderr


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _clone(src: Path, dst: Path) -> None:
    """What a git clone of a DVC project gives: its .dvc files and .dvc/config, no cache."""
    dst.mkdir(parents=True)
    (dst / ".dvc").mkdir()
    shutil.copy(src / ".dvc" / "config", dst / ".dvc" / "config")
    for f in (p for p in src.glob("*.dvc") if p.is_file()):
        shutil.copy(f, dst / f.name)


def test_dvc(target, tmp_path, request):
    pytest.importorskip("dvc")
    pytest.importorskip("dvc_s3")
    from importlib.metadata import version
    rec = Recorder("dvc", f"{version('dvc')} (dvc-s3 {version('dvc-s3')})",
                   request.node.nodeid, target.rows)
    s3, bucket = target.s3, target.bucket("dvc")
    env = _dvc_env(target, tmp_path / "home")
    work = tmp_path / "work"
    work.mkdir()
    data = {"big.bin": os.urandom(3 * MiB + 17), "sub dir/ü+1.txt": b"hello\n",
            "sub dir/empty.txt": b"", "a.csv": b"a,b\n1,2\n"}
    for rel, blob in data.items():
        (work / "data" / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / "data" / rel).write_bytes(blob)

    with rec.step(DVC_PUSH) as st:
        _dvc(work, env, "init", "--no-scm", "-q")
        _dvc(work, env, "remote", "add", "-d", "r", f"s3://{bucket}/store")
        _dvc(work, env, "remote", "modify", "r", "endpointurl", target.endpoint)
        _dvc(work, env, "add", "-q", "data")
        out = _dvc(work, env, "push")
        stored = oracle_keys(s3, bucket, "store/")
        # one object per file plus the directory manifest (.dir), content-addressed by MD5
        assert len(stored) == len(data) + 1, f"on the server: {sorted(stored)}"
        md5 = hashlib.md5(data["big.bin"]).hexdigest()
        key = f"store/files/md5/{md5[:2]}/{md5[2:]}"
        assert oracle_bytes(s3, bucket, key) == data["big.bin"], f"{key} differs"
        st.note = out.strip().splitlines()[-1]

    clean = tmp_path / "clean"
    _clone(work, clean)
    with rec.step(DVC_PULL) as st:
        out = _dvc(clean, env, "pull")
        got = _tree(clean / "data")
        assert got == data, f"pulled {sorted(got)}, want {sorted(data)}"
        st.note = out.strip().splitlines()[-1]

    with rec.step(DVC_STATUS):
        out = _dvc(clean, env, "status", "-c")
        assert "in sync" in out, out
        out = _dvc(clean, env, "status")
        assert "up to date" in out, out

    # cloud versioning: the remote keeps the workspace layout and the .dvc file records
    # each file's version id (a commit id); an old .dvc file pulls the old bytes
    with rec.step(OLD_BY_ID) as st:
        vwork = tmp_path / "versioned"
        (vwork / "data").mkdir(parents=True)
        (vwork / "data" / "a.txt").write_bytes(b"version one\n")
        (vwork / "data" / "b.txt").write_bytes(b"unchanged\n")
        _dvc(vwork, env, "init", "--no-scm", "-q")
        _dvc(vwork, env, "remote", "add", "-d", "r", f"s3://{bucket}/versioned")
        _dvc(vwork, env, "remote", "modify", "r", "endpointurl", target.endpoint)
        _dvc(vwork, env, "remote", "modify", "r", "version_aware", "true")
        _dvc(vwork, env, "add", "-q", "data")
        _dvc(vwork, env, "push")
        old_dvc = (vwork / "data.dvc").read_text()
        assert "version_id:" in old_dvc, old_dvc
        (vwork / "data" / "a.txt").write_bytes(b"version two\n")
        _dvc(vwork, env, "add", "-q", "data")
        _dvc(vwork, env, "push")
        assert oracle_bytes(s3, bucket, "versioned/data/a.txt") == b"version two\n"
        old = tmp_path / "old"
        _clone(vwork, old)
        (old / "data.dvc").write_text(old_dvc)
        _dvc(old, env, "pull")
        assert _tree(old / "data") == {"a.txt": b"version one\n", "b.txt": b"unchanged\n"}
        st.note = "remote version_aware = true (dvc status -c is not supported there)"
    rec.finish()


# --------------------------------------------------------------------------- JS SDK v3

JS_OPS = [PUT, GET, RANGE, OLD_BY_ID, OLD_BY_BUCKET, LIST, MULTIPART, COPY, DELETE]


def _js_version() -> str:
    def pkg(name):
        return json.loads((JS_DIR / "node_modules" / name / "package.json").read_text())["version"]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True,
                          timeout=30).stdout.strip()
    return f"{pkg('@aws-sdk/client-s3')} (lib-storage {pkg('@aws-sdk/lib-storage')}, node {node})"


def test_aws_sdk_js(target, tmp_path, request):
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    if not (JS_DIR / "node_modules" / "@aws-sdk" / "client-s3").is_dir():
        pytest.skip("run `npm ci` in tests/compat/js (bash .ci/run does)")
    rec = Recorder("aws-sdk-js v3", _js_version(), request.node.nodeid, target.rows)
    s3, bucket = target.s3, target.bucket("js")
    env = _base_env(tmp_path)
    env.update(S3_ENDPOINT=target.endpoint, AWS_ACCESS_KEY_ID=target.key,
               AWS_SECRET_ACCESS_KEY=target.secret, AWS_REGION=REGION, BUCKET=bucket,
               NODE_NO_WARNINGS="1")
    proc = subprocess.run(["node", "scenario.mjs"], cwd=JS_DIR, env=env, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)
    results, state = {}, None
    for line in proc.stdout.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if obj.get("done"):
            state = obj["state"]
        elif "op" in obj:
            results[obj["op"]] = obj
    for op in JS_OPS:
        with rec.step(op) as st:
            r = results.get(op)
            if r is None:
                raise AssertionError(f"the script did not run this step (exit {proc.returncode}): "
                                     f"{proc.stderr.strip()[-1500:]}")
            st.note, st.seconds = r.get("note", ""), r.get("seconds")
            if r["status"] != "pass":
                raise AssertionError(r.get("reason", "failed"))
            if op == MULTIPART:  # the witness agrees
                head = s3.head_object(Bucket=bucket, Key="js/big.bin")
                assert head["ContentLength"] == state["big_size"]
                got = s3.get_object(Bucket=bucket, Key="js/big.bin")["Body"].read()
                assert sha256(got) == state["big_sha256"], "the witness reads other bytes"
            if op == DELETE:
                keys = oracle_keys(s3, bucket)
                assert keys == {"js/big.bin", "js/copy of big.bin", "js/copy ü.txt",
                                "js/restored.txt"}, f"left on the server: {sorted(keys)}"
    extra = sorted(set(results) - set(JS_OPS))
    assert not extra, f"steps of the script the test does not know: {extra}"
    rec.finish()


def test_commit_bucket_is_read_only(server, s3):
    """What the pinned-commit fallback of pyarrow/polars relies on: reads work, writes refuse."""
    bucket = f"master.ro-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    try:
        v = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
        s3.put_object(Bucket=bucket, Key="k", Body=b"two")
        assert oracle_bytes(s3, f"{v}.{bucket}", "k") == b"one"
        with pytest.raises(ClientError):
            s3.put_object(Bucket=f"{v}.{bucket}", Key="k", Body=b"three")
    finally:
        cleanup(s3, bucket)
