"""``s3gw migrate --from DIR --meta postgresql://... --chunks s3://...``: a small local
store (repos, branches, versions, multipart, packed and inline objects, an upload in
flight, a pipeline with a job and its log) moved into a real PostgreSQL and a real
SeaweedFS, run again after a simulated interruption (it copies only what is missing),
then served from a new folder: every object and every version reads back the same, the
pipeline and its job are the database's, and fsck is clean; then moved back into a new
local folder and served from there, the same again."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
import uuid

from tests.conftest import ServerProcess, make_client
from tests.seaweed import ACCESS_KEY, SECRET_KEY

MiB = 1 << 20
KEYS = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}


def s3gw(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "s3gw", *args], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, **KEYS, S3GW_PROGRESS_INTERVAL="0"))
    if check and proc.returncode != 0:
        raise AssertionError(f"s3gw {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def _snapshot(client, buckets) -> dict:
    """{(bucket, key, version): md5 of the bytes} of every version in ``buckets``."""
    out = {}
    for b in buckets:
        for v in client.list_object_versions(Bucket=b).get("Versions", []):
            body = client.get_object(Bucket=b, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
            out[(b, v["Key"], v["VersionId"])] = (hashlib.md5(body).hexdigest(), v["IsLatest"])
    return out


def _pipelines(data_dir: str) -> tuple[list, list, str]:
    """(pipelines, jobs, the first job's log) as ``s3gw`` shows them from ``data_dir``."""
    pipelines = json.loads(s3gw("pipeline", "list", "--json", "--data", data_dir).stdout)
    jobs = json.loads(s3gw("job", "list", "--json", "--data", data_dir).stdout)
    log = s3gw("job", "logs", jobs[0]["id"], "--data", data_dir).stdout if jobs else ""
    return [(p["name"], p["version"]) for p in pipelines], jobs, log


def _build_store(data_dir: str) -> tuple[dict, list[str], str]:
    srv = ServerProcess(data_dir).start()
    try:
        s3 = make_client(srv.endpoint)
        rng = random.Random(5)
        for repo in ("images", "logs"):
            s3.create_bucket(Bucket=f"master.{repo}")
            for n in range(3):                            # versions: each key three times
                s3.put_object(Bucket=f"master.{repo}", Key="big", Body=rng.randbytes(MiB + n))
                s3.put_object(Bucket=f"master.{repo}", Key="small", Body=f"v{n}".encode())
            for i in range(5):                            # inline in the metadata
                s3.put_object(Bucket=f"master.{repo}", Key=f"dir/{i}", Body=rng.randbytes(300 * i))
            s3.put_object(Bucket=f"master.{repo}", Key="packed", Body=rng.randbytes(20_000))
        up = s3.create_multipart_upload(Bucket="master.images", Key="multi")
        parts = [s3.upload_part(Bucket="master.images", Key="multi", UploadId=up["UploadId"],
                                PartNumber=n, Body=rng.randbytes(5 * MiB if n < 3 else 123))
                 for n in (1, 2, 3)]
        s3.complete_multipart_upload(
            Bucket="master.images", Key="multi", UploadId=up["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": p["ETag"]}
                                       for n, p in zip((1, 2, 3), parts)]})
        s3gw("branch", "create", "dev.images", "--from", "master", "--data", data_dir)
        s3.put_object(Bucket="dev.images", Key="only-on-dev", Body=rng.randbytes(400_000))
        s3.delete_object(Bucket="dev.images", Key="dir/0")
        # an upload in flight: its staged part moves too
        pending = s3.create_multipart_upload(Bucket="master.logs", Key="pending")
        s3.upload_part(Bucket="master.logs", Key="pending", UploadId=pending["UploadId"],
                       PartNumber=1, Body=rng.randbytes(5 * MiB))
        # a pipeline on dev.images: one job, its output commit and its log
        spec = {"pipeline": {"name": "mirror"},
                "input": {"pfs": {"repo": "images", "branch": "dev", "glob": "/", "s3": True}},
                "transform": {"cmd": ["sh"], "stdin": ["echo hello from the job"]},
                "s3_out": True}
        subprocess.run([sys.executable, "-m", "s3gw", "pipeline", "create", "-f", "-",
                        "--data", data_dir], input=json.dumps(spec), text=True, check=True,
                       capture_output=True, timeout=60)
        deadline = time.monotonic() + 60
        while True:
            jobs = json.loads(s3gw("job", "list", "--json", "--data", data_dir).stdout)
            if jobs and jobs[0]["state"] in ("SUCCESS", "FAILURE", "KILLED"):
                break
            assert time.monotonic() < deadline, srv.log()[-3000:]
            time.sleep(0.2)
        assert jobs[0]["state"] == "SUCCESS", jobs
        buckets = ["master.images", "dev.images", "master.logs"]
        return _snapshot(s3, buckets), buckets, pending["UploadId"]
    finally:
        srv.stop()


def test_migrate_a_local_store_to_postgres_and_seaweedfs_then_serve_it(
        tmp_path, pg_server, seaweedfs):
    src = str(tmp_path / "local")
    before, buckets, upload_id = _build_store(src)
    assert any(n.endswith(".pack") for n in os.listdir(os.path.join(src, "packs")))
    assert os.listdir(os.path.join(src, "chunks"))        # chunk files and packed chunks
    url = pg_server.database(migrate=False)          # migrate --from applies the schema too
    bucket = seaweedfs.make_bucket("e2e-migrate")
    chunks = seaweedfs.chunks_url(bucket, f"m{uuid.uuid4().hex[:10]}")
    to = str(tmp_path / "gw")

    pipelines = _pipelines(src)
    assert pipelines[0] == [("mirror", 1)] and len(pipelines[1]) == 1
    assert "hello from the job" in pipelines[2]
    first = s3gw("migrate", "--from", src, "--meta", url, "--chunks", chunks, "--to", to)
    assert " 0 in the destination already" in first.stdout, first.stdout
    assert "verified:" in first.stdout and "4 branches" in first.stdout
    assert "pipelines: 1 pipeline(s) and 1 job(s) copied into the database" in first.stdout
    assert not os.path.exists(os.path.join(to, "pps.sqlite"))   # the database has them
    assert _pipelines(to) == pipelines
    assert "copying chunks" in first.stderr           # the progress reports (not a tty: lines)

    # an interrupted run: some chunks and the branches never arrived
    weed = seaweedfs.client()
    prefix = chunks.split("/", 3)[3].split("?")[0]
    listed = weed.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/chunks/")["Contents"]
    for obj in listed[:3]:
        weed.delete_object(Bucket=bucket, Key=obj["Key"])
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM branches")
    again = s3gw("migrate", "--from", src, "--meta", url, "--chunks", chunks)
    assert f"{len(listed) - 3} in the destination already, 3 to copy" in again.stdout, again.stdout
    assert "verified:" in again.stdout
    assert "pipelines: 0 pipeline(s) and 0 job(s) copied" in again.stdout

    # a database holding another store is refused
    other = str(tmp_path / "other")
    srv = ServerProcess(other).start()
    make_client(srv.endpoint).create_bucket(Bucket="master.unrelated")
    srv.stop()
    refused = s3gw("migrate", "--from", other, "--meta", url, "--chunks", chunks, check=False)
    assert refused.returncode == 1 and "another store" in refused.stderr, refused.stderr

    gw = ServerProcess(to, env=KEYS).start()         # the folder recorded both stores
    try:
        client = make_client(gw.endpoint)
        assert _snapshot(client, buckets) == before
        body = os.urandom(5 * MiB)                   # the moved upload completes
        part2 = client.upload_part(Bucket="master.logs", Key="pending", UploadId=upload_id,
                                   PartNumber=2, Body=body)
        listed_parts = client.list_parts(Bucket="master.logs", Key="pending", UploadId=upload_id)
        client.complete_multipart_upload(
            Bucket="master.logs", Key="pending", UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]}
                                       for p in listed_parts["Parts"]]})
        assert part2["ETag"] in [p["ETag"] for p in listed_parts["Parts"]]
        got = client.get_object(Bucket="master.logs", Key="pending")["Body"].read()
        assert len(got) == 10 * MiB and got[5 * MiB:] == body
        client.put_object(Bucket="master.images", Key="new", Body=b"after the move")
        moved = _snapshot(client, buckets)
    finally:
        gw.stop()
    assert "metadata: postgresql://" in gw.log() and "chunks: s3://" in gw.log()
    assert "Traceback" not in gw.log()
    fsck = s3gw("fsck", "--data", to)
    assert fsck.stdout.strip().endswith(": 0 corrupt"), fsck.stdout

    # and back: the shared stores into a new local folder (gateways stopped)
    back = str(tmp_path / "back")
    out = s3gw("migrate", "--from", to, "--to", back)
    assert "verified:" in out.stdout and " 0 in the destination already" in out.stdout, out.stdout
    assert "pipelines: 1 pipeline(s) and 1 job(s) copied into" in out.stdout
    out = s3gw("migrate", "--from", to, "--to", back).stdout             # resumable both ways
    assert "in the destination already, 0 to copy" in out
    assert "pipelines: 0 pipeline(s) and 0 job(s)" in out
    assert _pipelines(back) == pipelines
    local = ServerProcess(back).start()
    try:
        assert _snapshot(make_client(local.endpoint), buckets) == moved
    finally:
        local.stop()
    assert "chunks: s3://" not in local.log() and "Traceback" not in local.log()
    assert "no problems found" in s3gw("fsck", "--data", back).stdout


def test_migrate_carries_users_keys_and_roles_both_ways(tmp_path, pg_server, seaweedfs):
    """A folder with auth on moves into PostgreSQL + SeaweedFS: its users, keys (pairs,
    tokens, revoked ones) and roles are in the database, where a gateway with a new
    folder finds them; moved back, they are the new folder's auth.sqlite again."""
    import json

    from botocore.exceptions import ClientError

    from tests.e2e.auth_helpers import Creds, boto3_client

    def creds(proc) -> Creds:
        doc = json.loads(proc.stdout)
        return Creds(doc["user"], doc["access_key"], doc["secret_key"])

    def code(call) -> str | None:
        try:
            call()
        except ClientError as exc:
            return exc.response["Error"]["Code"]
        return None

    src = str(tmp_path / "local")
    os.makedirs(src)
    admin = creds(s3gw("auth", "enable", "--json", "--data", src))
    alice = creds(s3gw("auth", "key", "create", "--user", "alice", "--json", "--data", src))
    tok = creds(s3gw("auth", "key", "create", "--user", "tokie", "--token", "--json",
                     "--data", src))
    gone = creds(s3gw("auth", "key", "create", "--user", "alice", "--json", "--data", src))
    s3gw("auth", "key", "revoke", gone.access_key, "--data", src)
    s3gw("auth", "grant", "--user", "alice", "--repo", "docs", "--role", "writer", "--data", src)
    srv = ServerProcess(src).start()
    try:
        boto3_client(srv.endpoint, admin).create_bucket(Bucket="master.docs")
        boto3_client(srv.endpoint, alice).put_object(Bucket="master.docs", Key="a", Body=b"A")
    finally:
        srv.stop()

    def check(endpoint: str) -> None:
        assert boto3_client(endpoint, alice).get_object(
            Bucket="master.docs", Key="a")["Body"].read() == b"A"
        boto3_client(endpoint, tok).list_buckets()
        assert code(lambda: boto3_client(endpoint, gone).list_buckets()) == "InvalidAccessKeyId"
        assert code(lambda: boto3_client(endpoint, None).list_buckets()) == "AccessDenied"
        assert code(lambda: boto3_client(endpoint, alice).delete_bucket(
            Bucket="master.docs")) == "AccessDenied"                  # a writer still

    url = pg_server.database(migrate=False)
    chunks = seaweedfs.chunks_url(seaweedfs.make_bucket("e2e-migrate-auth"), "c")
    to = str(tmp_path / "gw")
    out = s3gw("migrate", "--from", src, "--meta", url, "--chunks", chunks, "--to", to).stdout
    assert ("auth: 3 users, 4 keys and 1 roles verified in the database (8 rows new), auth "
            "enabled") in out, out
    assert not os.path.exists(os.path.join(to, "auth.sqlite"))    # it is in the database
    gw = ServerProcess(to, env=KEYS).start()
    try:
        check(gw.endpoint)
        later = creds(s3gw("auth", "key", "create", "--user", "later", "--json", "--data", to))
    finally:
        gw.stop()
    assert "Traceback" not in gw.log()

    back = str(tmp_path / "back")
    out = s3gw("migrate", "--from", to, "--to", back).stdout
    assert "auth: 4 users, 5 keys and 1 roles verified in " in out, out
    local = ServerProcess(back).start()
    try:
        check(local.endpoint)
        boto3_client(local.endpoint, later).list_buckets()
    finally:
        local.stop()
    assert "Traceback" not in local.log()
