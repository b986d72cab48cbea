"""Authentication end to end (issue 6): real clients with auth on.

The aws cli (cp up/down including multipart, ls, presign fetched with urllib and curl, mb/rb
of a new repo, rm), s3cmd with SigV4 (region ``US``, as its default config signs) and with
``--signature-v2``, and minio-py, each with correct credentials (works) and with a wrong
secret (fails, nothing written).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.compat.clients import _base_env, _tool
from tests.e2e.auth_helpers import (  # noqa: F401 (world: a fixture)
    Creds,
    http_request,
    world,
)

MiB = 1 << 20


# --------------------------------------------------------------------------- real clients

def _aws_env(home: Path, creds: Creds) -> dict:
    (home / ".aws").mkdir(parents=True, exist_ok=True)
    (home / ".aws" / "config").write_text("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n")
    (home / ".aws" / "credentials").write_text(
        f"[default]\naws_access_key_id = {creds.access_key}\naws_secret_access_key = {creds.secret_key}\n")
    return _base_env(home)


def _run(argv, env) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def test_awscli_with_auth(world, tmp_path):
    repo = world.repo(will="writer")
    b = f"master.{repo}"
    env = _aws_env(tmp_path / "home", world.users["will"])
    aws = [_tool("aws"), "--endpoint-url", world.endpoint]

    def ok(*args):
        p = _run([*aws, *args], env)
        assert p.returncode == 0, f"aws {' '.join(args)}: {p.stdout}\n{p.stderr}"
        return p.stdout

    src = tmp_path / "up.bin"
    src.write_bytes(os.urandom(300_000))
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * MiB))  # multipart, parallel parts
    ok("s3", "cp", "--no-progress", str(src), f"s3://{b}/dir/up.bin")
    ok("s3", "cp", "--no-progress", str(big), f"s3://{b}/big.bin")
    listing = ok("s3", "ls", "--recursive", f"s3://{b}")
    assert "dir/up.bin" in listing and "big.bin" in listing and "a.txt" in listing
    assert b in ok("s3", "ls")
    ok("s3", "cp", "--no-progress", f"s3://{b}/dir/up.bin", str(tmp_path / "down.bin"))
    ok("s3", "cp", "--no-progress", f"s3://{b}/big.bin", str(tmp_path / "bigdown.bin"))
    assert (tmp_path / "down.bin").read_bytes() == src.read_bytes()
    assert (tmp_path / "bigdown.bin").read_bytes() == big.read_bytes()
    url = ok("s3", "presign", f"s3://{b}/dir/up.bin", "--expires-in", "300").strip()
    assert http_request(url) == (200, src.read_bytes())
    assert shutil.which("curl"), "curl is needed (.ci/run installs it)"
    curl = _run(["curl", "-sS", "-o", str(tmp_path / "curl.bin"), "-w", "%{http_code}", url], env)
    assert curl.stdout == "200" and (tmp_path / "curl.bin").read_bytes() == src.read_bytes()

    ok("s3", "rm", f"s3://{b}/big.bin")
    assert "big.bin" not in ok("s3", "ls", "--recursive", f"s3://{b}")
    # a new repo made with the aws cli belongs to its maker, who may remove it
    mine = f"master.r{uuid.uuid4().hex[:10]}"
    ok("s3", "mb", f"s3://{mine}")
    ok("s3", "cp", "--no-progress", str(src), f"s3://{mine}/x.bin")
    ok("s3", "rb", "--force", f"s3://{mine}")
    assert mine not in {x["Name"] for x in world.s3.list_buckets()["Buckets"]}
    p = _run([*aws, "s3", "rb", f"s3://{b}"], env)  # only a writer here
    assert p.returncode != 0 and "AccessDenied" in p.stderr, p.stderr

    bad_env = _aws_env(tmp_path / "badhome", world.users["will"].with_secret("wrong-secret"))
    for args in (["s3", "ls", f"s3://{b}"], ["s3", "cp", "--no-progress", str(src), f"s3://{b}/bad.bin"],
                 ["s3", "cp", "--no-progress", f"s3://{b}/a.txt", str(tmp_path / "x")]):
        p = _run([*aws, *args], bad_env)
        assert p.returncode != 0, args
        assert "SignatureDoesNotMatch" in p.stderr or "403" in p.stderr, p.stderr
    assert "bad.bin" not in {o["Key"] for o in world.s3.list_objects_v2(Bucket=b).get("Contents", [])}
    assert b in {x["Name"] for x in world.s3.list_buckets()["Buckets"]}


def _s3cmd_cfg(path: Path, port: int, creds: Creds) -> Path:
    host = f"127.0.0.1:{port}"
    path.write_text("\n".join([
        "[default]", f"access_key = {creds.access_key}", f"secret_key = {creds.secret_key}",
        f"host_base = {host}", f"host_bucket = {host}", "use_https = False",
        "bucket_location = US",  # s3cmd's default: it signs with region "US"
        "signature_v2 = False", "max_retries = 1", ""]))
    return path


@pytest.mark.parametrize("sig", ["v4", "v2"])
def test_s3cmd_with_auth(world, tmp_path, sig):
    repo = world.repo(will="writer")
    b = f"master.{repo}"
    env = _base_env(tmp_path)
    cfg = _s3cmd_cfg(tmp_path / "s3cfg", world.server.port, world.users["will"])
    extra = ["--signature-v2"] if sig == "v2" else []

    def s3cmd(*args, cfg=cfg):
        return _run([_tool("s3cmd"), "-c", str(cfg), "--no-progress", *extra, *args], env)

    src = tmp_path / "f.txt"
    src.write_bytes(b"s3cmd says hi " * 100)
    p = s3cmd("put", str(src), f"s3://{b}/s3cmd/f.txt")
    assert p.returncode == 0, p.stderr
    p = s3cmd("ls", f"s3://{b}/s3cmd/")
    assert p.returncode == 0 and f"s3://{b}/s3cmd/f.txt" in p.stdout, p.stdout + p.stderr
    p = s3cmd("ls")
    assert p.returncode == 0 and f"s3://{b}" in p.stdout, p.stdout + p.stderr
    p = s3cmd("get", "--force", f"s3://{b}/s3cmd/f.txt", str(tmp_path / "back.txt"))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "back.txt").read_bytes() == src.read_bytes()
    assert s3cmd("put", str(src), f"s3://{b}/s3cmd/tmp.txt").returncode == 0
    p = s3cmd("del", f"s3://{b}/s3cmd/tmp.txt")
    assert p.returncode == 0, p.stderr
    assert "s3cmd/tmp.txt" not in {o["Key"] for o in world.s3.list_objects_v2(Bucket=b)["Contents"]}

    bad = _s3cmd_cfg(tmp_path / "bad.cfg", world.server.port, world.users["will"].with_secret("wrong"))
    p = s3cmd("put", str(src), f"s3://{b}/s3cmd/bad.txt", cfg=bad)
    assert p.returncode != 0
    p = s3cmd("get", "--force", f"s3://{b}/s3cmd/f.txt", str(tmp_path / "bad.txt"), cfg=bad)
    assert p.returncode != 0
    assert "s3cmd/bad.txt" not in {o["Key"] for o in world.s3.list_objects_v2(Bucket=b)["Contents"]}


def test_minio_py_with_auth(world, tmp_path):
    import io

    from minio import Minio
    from minio.error import S3Error
    repo = world.repo(will="writer")
    b = f"master.{repo}"
    will = world.users["will"]
    m = Minio(f"127.0.0.1:{world.server.port}", access_key=will.access_key, secret_key=will.secret_key,
              secure=False, region="us-east-1")
    data = os.urandom(200_000)
    m.put_object(b, "minio/obj.bin", io.BytesIO(data), len(data))
    resp = m.get_object(b, "minio/obj.bin")
    try:
        assert resp.read() == data
    finally:
        resp.close()
        resp.release_conn()
    assert {o.object_name for o in m.list_objects(b, recursive=True)} == {"a.txt", "b.txt", "minio/obj.bin"}
    assert b in {x.name for x in m.list_buckets()}
    src = tmp_path / "f.bin"
    src.write_bytes(data[:1000])
    m.fput_object(b, "minio/f.bin", str(src))
    m.fget_object(b, "minio/f.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == data[:1000]

    bad = Minio(f"127.0.0.1:{world.server.port}", access_key=will.access_key, secret_key="wrong",
                secure=False, region="us-east-1")
    with pytest.raises(S3Error) as e:
        bad.put_object(b, "minio/bad.bin", io.BytesIO(b"x"), 1)
    assert e.value.code == "SignatureDoesNotMatch"
    with pytest.raises(S3Error) as e:
        list(bad.list_objects(b))
    assert e.value.code == "SignatureDoesNotMatch"
    assert "minio/bad.bin" not in {o["Key"] for o in world.s3.list_objects_v2(Bucket=b)["Contents"]}
