"""Authentication and access control end to end (issue 6), with auth turned on through the CLI.

One gateway per module (``world``): a fresh data folder, ``s3gw auth enable --json``, then
``s3gw serve`` as a child process; users, keys and grants are made with ``s3gw auth ...``
subprocesses against the running server, as an operator does. Every test makes its own
repos (``rNNNN``) so they do not depend on each other's order.

What is covered: per-repo roles through boto3 (SigV4), ListBuckets filtering, ownership of
new repos, revocation taking effect on the running server, token-style keys, presigned URLs
(SigV4 and boto3's default SigV2) fetched with urllib, SigV2 header auth, clock skew, the
payload hash check, streaming-signed uploads built by hand over a socket (chunk signatures
computed here from the AWS spec, not with s3gw's signer), a denial matrix (every operation ×
unsigned / wrong secret / revoked / expired / reader-writes, each asserting 403 and that the
data did not change), and the real aws cli, s3cmd (V4 and V2) and minio-py.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.request
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.compat.clients import _base_env, _tool
from tests.conftest import ServerProcess
from tests.e2e.auth_helpers import (
    AuthCli,
    Creds,
    boto3_client,
    chunk_signatures,
    error_code,
    frozen_botocore_clock,
    http_request,
    raw_request,
    seed_signature,
    sign_v2,
    sign_v4,
    sign_v4_raw,
    split_chunks,
    streaming_body,
    streaming_length,
    trailer_signature,
    utcnow,
)
from tests.e2e.rawhttp import read_response

MiB = 1 << 20


# --------------------------------------------------------------------------- the gateway

@dataclass
class World:
    server: ServerProcess
    cli: AuthCli
    admin: Creds
    users: dict[str, Creds] = field(default_factory=dict)
    _clients: dict = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def client(self, creds: Creds | None, signature_version: str = "s3v4", region: str = "us-east-1"):
        key = (creds, signature_version, region)
        if key not in self._clients:
            self._clients[key] = boto3_client(self.endpoint, creds, signature_version, region)
        return self._clients[key]

    @property
    def s3(self):
        """The admin's boto3 client."""
        return self.client(self.admin)

    def repo(self, objects: dict[str, bytes] | None = None, **grants: str) -> str:
        """A new repo with ``master.<repo>`` made by the admin, seeded, and roles granted
        (``rita="reader"``: user name -> role)."""
        repo = f"r{uuid.uuid4().hex[:10]}"
        self.s3.create_bucket(Bucket=f"master.{repo}")
        for key, body in (objects if objects is not None else {"a.txt": b"alpha", "b.txt": b"bravo"}).items():
            self.s3.put_object(Bucket=f"master.{repo}", Key=key, Body=body)
        for user, role in grants.items():
            self.cli.grant(user, repo, role)
        return repo

    def state(self, repo: str) -> dict:
        """What the admin sees of ``repo``: every bucket name on the server, and for the
        repo's buckets each object's content and the multipart uploads in progress."""
        names = sorted(b["Name"] for b in self.s3.list_buckets()["Buckets"])
        out: dict = {"buckets": names}
        for b in names:
            if b.endswith("." + repo):
                objs = {}
                for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=b):
                    for o in page.get("Contents", []):
                        objs[o["Key"]] = self.s3.get_object(Bucket=b, Key=o["Key"])["Body"].read()
                out[b] = objs
                uploads = self.s3.list_multipart_uploads(Bucket=b).get("Uploads", [])
                out[b + "?uploads"] = sorted(u["Key"] for u in uploads)
        return out


def _server_problems(log: str) -> list[str]:
    return [line for line in log.splitlines()
            if re.search(r"s3gw\.access \S+ \S+ 500 ", line) or "Traceback" in line]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    data = tmp_path_factory.mktemp("s3gw-auth") / "data"
    data.mkdir()
    cli = AuthCli(str(data))
    admin = cli.enable()
    assert admin.user == "admin" and admin.access_key and admin.secret_key
    srv = ServerProcess(str(data)).start()
    w = World(srv, cli, admin)
    # rita reads, will writes, olga owns (per repo, granted in each test); nick has no roles
    for name in ("rita", "will", "olga", "nick"):
        w.users[name] = cli.key_create(name)
    try:
        yield w
    finally:
        for c in w._clients.values():
            c.close()
        srv.stop()
        problems = _server_problems(srv.log())
        assert not problems, "the server answered 500s or logged tracebacks:\n" + "\n".join(problems)


def denied(call, code: str | None = "AccessDenied", status: int = 403) -> dict:
    """Run a boto3 call that must fail with ``status`` (and S3 error ``code`` unless None,
    e.g. for HEAD, whose error has no body)."""
    with pytest.raises(ClientError) as e:
        call()
    r = e.value.response
    assert r["ResponseMetadata"]["HTTPStatusCode"] == status, r
    if code is not None:
        assert r["Error"]["Code"] == code, r
    return r


# --------------------------------------------------------------------------- the CLI

def test_cli_status_and_enable_twice(world):
    assert world.cli.status() == "enabled"
    again = world.cli.run("enable", "--json", check=False)
    assert again.returncode == 1
    assert (again.stderr + again.stdout).strip(), "enabling twice must say why it failed"
    # the first admin key still works: enabling twice changed nothing
    assert world.s3.list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_cli_data_folder_from_env(world):
    env = dict(os.environ, S3GW_DATA=world.server.data_dir)
    proc = subprocess.run([sys.executable, "-m", "s3gw", "auth", "status"], env=env, capture_output=True,
                          text=True, timeout=60, cwd=world.server.data_dir)
    assert proc.returncode == 0 and proc.stdout.strip() == "enabled", proc


def test_cli_key_list_shows_no_secrets(world):
    c1 = world.cli.key_create("lister")
    c2 = world.cli.key_create("lister")
    tok = world.cli.key_create("lister-tok", token=True)
    assert tok.access_key == tok.secret_key
    assert c1.access_key != c2.access_key and c1.secret_key != c2.secret_key
    entries = world.cli.key_list()
    for e in entries:
        assert set(e) >= {"access_key", "user", "kind", "created", "revoked"}, e
        assert not [k for k in e if "secret" in k.lower()], e
    text = world.cli.run("key", "list").stdout + world.cli.run("key", "list", "--json").stdout
    for secret in (c1.secret_key, c2.secret_key, world.admin.secret_key, world.users["rita"].secret_key):
        assert secret not in text
    mine = world.cli.key_list(user="lister")
    assert {e["access_key"] for e in mine} == {c1.access_key, c2.access_key}
    assert all(e["user"] == "lister" and not e["revoked"] for e in mine)  # false/null: not revoked
    # a token is its own secret: it is listed under an id, never as itself
    assert tok.secret_key not in text + world.cli.run("key", "list", "--user", "lister-tok").stdout
    tok_entries = [e for e in entries if e["user"] == "lister-tok"]
    assert len(tok_entries) == 1
    kinds = {e["access_key"]: e["kind"] for e in entries}
    assert tok_entries[0]["kind"] != kinds[c1.access_key]  # a token is a different kind of key
    world.cli.key_revoke(c1.access_key)
    after = {e["access_key"]: bool(e["revoked"]) for e in world.cli.key_list(user="lister")}
    assert after == {c1.access_key: True, c2.access_key: False}  # true or a revocation time


def test_cli_grants_listing(world):
    repo = world.repo(rita="reader", will="writer")
    rows = world.cli.grants(repo=repo)
    got = {(r["user"], r["repo"], r["role"]) for r in rows}
    assert got >= {("rita", repo, "reader"), ("will", repo, "writer")}
    assert {r["repo"] for r in rows} == {repo}
    assert all(r["user"] == "rita" for r in world.cli.grants(user="rita"))
    world.cli.grant("rita", repo, "owner")  # a new grant replaces the role
    assert {(r["user"], r["role"]) for r in world.cli.grants(user="rita", repo=repo)} == {("rita", "owner")}
    world.cli.revoke("rita", repo)
    assert world.cli.grants(user="rita", repo=repo) == []


def _readable_by_others(path: Path, top: Path) -> bool:
    """Could a different local user (group or other) read ``path``? Considers the mode bits
    of the file and of every directory from ``top`` down to it."""
    p = path
    if not path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
        return False
    while p != top:
        p = p.parent
        if not p.stat().st_mode & (stat.S_IXGRP | stat.S_IXOTH):
            return False
    return True


def test_secrets_not_readable_by_other_local_users(world):
    data = Path(world.server.data_dir)
    secrets = [world.admin.secret_key.encode(), world.users["rita"].secret_key.encode()]
    leaks = []
    for root, _dirs, files in os.walk(data):
        for name in files:
            path = Path(root) / name
            try:
                content = path.read_bytes()
            except OSError:
                continue
            if any(s in content for s in secrets) and _readable_by_others(path, data):
                leaks.append(f"{path} mode {oct(path.stat().st_mode & 0o777)}")
    assert not leaks, "secrets readable by other local users: " + ", ".join(leaks)


# --------------------------------------------------------------------------- roles (boto3, SigV4)

def test_admin_full_round_trip(world, tmp_path):
    s3, b = world.s3, f"master.r{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=b)
    assert b in [x["Name"] for x in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket=b)
    assert s3.get_bucket_location(Bucket=b)["LocationConstraint"] is None
    body = os.urandom(100_000)
    put = s3.put_object(Bucket=b, Key="dir/one.bin", Body=body, Metadata={"k": "v"})
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket=b, Key="dir/one.bin")
    assert got["Body"].read() == body and got["Metadata"] == {"k": "v"}
    assert s3.head_object(Bucket=b, Key="dir/one.bin")["ContentLength"] == len(body)
    assert s3.get_object(Bucket=b, Key="dir/one.bin", Range="bytes=10-19")["Body"].read() == body[10:20]
    s3.copy_object(Bucket=b, Key="copy.bin", CopySource={"Bucket": b, "Key": "dir/one.bin"})
    # multipart through s3transfer: parallel parts with Expect: 100-continue, then ranged GETs
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * MiB))
    s3.upload_file(str(big), b, "big.bin")
    s3.download_file(b, "big.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"])
    assert keys == ["big.bin", "copy.bin", "dir/one.bin"]
    assert sorted(o["Key"] for o in s3.list_objects(Bucket=b)["Contents"]) == keys
    assert s3.list_object_versions(Bucket=b)["Versions"]
    r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "copy.bin"}, {"Key": "big.bin"}]})
    assert not r.get("Errors")
    s3.delete_object(Bucket=b, Key="dir/one.bin")
    assert "Contents" not in s3.list_objects_v2(Bucket=b)
    s3.delete_bucket(Bucket=b)
    assert b not in [x["Name"] for x in s3.list_buckets()["Buckets"]]


def test_reader_can_list_and_read_but_not_write(world):
    repo = world.repo(rita="reader")
    b = f"master.{repo}"
    upload = world.s3.create_multipart_upload(Bucket=b, Key="mp.bin")["UploadId"]
    before = world.state(repo)
    rita = world.client(world.users["rita"])
    assert [o["Key"] for o in rita.list_objects_v2(Bucket=b)["Contents"]] == ["a.txt", "b.txt"]
    assert [o["Key"] for o in rita.list_objects(Bucket=b)["Contents"]] == ["a.txt", "b.txt"]
    assert rita.get_object(Bucket=b, Key="a.txt")["Body"].read() == b"alpha"
    assert rita.head_object(Bucket=b, Key="b.txt")["ContentLength"] == 5
    rita.head_bucket(Bucket=b)
    rita.get_bucket_location(Bucket=b)
    assert {v["Key"] for v in rita.list_object_versions(Bucket=b)["Versions"]} == {"a.txt", "b.txt"}
    assert rita.get_object(Bucket=repo, Key="a.txt")["Body"].read() == b"alpha"  # bare repo = master

    denied(lambda: rita.put_object(Bucket=b, Key="a.txt", Body=b"changed"))
    denied(lambda: rita.put_object(Bucket=b, Key="new.txt", Body=b"new"))
    denied(lambda: rita.delete_object(Bucket=b, Key="a.txt"))
    denied(lambda: rita.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "a.txt"}, {"Key": "b.txt"}]}))
    denied(lambda: rita.create_multipart_upload(Bucket=b, Key="mp2.bin"))
    denied(lambda: rita.upload_part(Bucket=b, Key="mp.bin", UploadId=upload, PartNumber=1, Body=b"x"))
    denied(lambda: rita.abort_multipart_upload(Bucket=b, Key="mp.bin", UploadId=upload))
    denied(lambda: rita.complete_multipart_upload(Bucket=b, Key="mp.bin", UploadId=upload,
                                                  MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]}))
    denied(lambda: rita.put_object_acl(Bucket=b, Key="a.txt", ACL="public-read"))
    denied(lambda: rita.copy_object(Bucket=b, Key="copy.txt", CopySource={"Bucket": b, "Key": "a.txt"}))
    denied(lambda: rita.create_bucket(Bucket=f"dev.{repo}"))
    denied(lambda: rita.delete_bucket(Bucket=b))
    assert world.state(repo) == before


def test_writer_can_write_but_not_delete_the_bucket(world):
    src = world.repo({"src.txt": b"from elsewhere"})
    repo = world.repo(will="writer")
    b = f"master.{repo}"
    will = world.client(world.users["will"])
    will.put_object(Bucket=b, Key="w.txt", Body=b"written")
    assert will.get_object(Bucket=b, Key="w.txt")["Body"].read() == b"written"
    will.delete_object(Bucket=b, Key="a.txt")
    r = will.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "b.txt"}]})
    assert not r.get("Errors")
    mp = will.create_multipart_upload(Bucket=b, Key="mp.bin")["UploadId"]
    p1 = will.upload_part(Bucket=b, Key="mp.bin", UploadId=mp, PartNumber=1, Body=b"1" * (5 * MiB))
    p2 = will.upload_part(Bucket=b, Key="mp.bin", UploadId=mp, PartNumber=2, Body=b"2" * 10)
    will.complete_multipart_upload(Bucket=b, Key="mp.bin", UploadId=mp, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]})
    assert will.head_object(Bucket=b, Key="mp.bin")["ContentLength"] == 5 * MiB + 10
    will.copy_object(Bucket=b, Key="w2.txt", CopySource={"Bucket": b, "Key": "w.txt"})
    # the copy source needs reader on its own repo
    denied(lambda: will.copy_object(Bucket=b, Key="stolen.txt",
                                    CopySource={"Bucket": f"master.{src}", "Key": "src.txt"}))
    denied(lambda: will.get_object(Bucket=f"master.{src}", Key="src.txt"))
    upc = will.create_multipart_upload(Bucket=b, Key="upc.bin")["UploadId"]
    denied(lambda: will.upload_part_copy(Bucket=b, Key="upc.bin", UploadId=upc, PartNumber=1,
                                         CopySource={"Bucket": f"master.{src}", "Key": "src.txt"}))
    will.abort_multipart_upload(Bucket=b, Key="upc.bin", UploadId=upc)
    denied(lambda: will.copy_object(Bucket=b, Key="stolen.txt", CopySource={
        "Bucket": f"master.{src}", "Key": "src.txt",
        "VersionId": world.s3.head_object(Bucket=f"master.{src}", Key="src.txt")["VersionId"]}))
    denied(lambda: will.copy_object(Bucket=b, Key="stolen.txt", CopySource={"Bucket": src, "Key": "src.txt"}))
    world.cli.grant("will", src, "reader")
    will.copy_object(Bucket=b, Key="copied.txt", CopySource={"Bucket": f"master.{src}", "Key": "src.txt"})
    assert will.get_object(Bucket=b, Key="copied.txt")["Body"].read() == b"from elsewhere"
    denied(lambda: will.put_object(Bucket=f"master.{src}", Key="x", Body=b"x"))  # reader there
    # a new branch of the repo: yes; deleting a bucket: no
    will.create_bucket(Bucket=f"dev.{repo}")
    will.put_object(Bucket=f"dev.{repo}", Key="on-dev.txt", Body=b"dev")
    before = world.state(repo)
    denied(lambda: will.delete_bucket(Bucket=f"dev.{repo}"))
    denied(lambda: will.delete_bucket(Bucket=b))
    assert world.state(repo) == before
    assert sorted(before[b]) == ["copied.txt", "mp.bin", "w.txt", "w2.txt"]


def test_owner_can_delete_the_bucket(world):
    repo = world.repo(olga="owner")
    olga = world.client(world.users["olga"])
    olga.put_object(Bucket=f"master.{repo}", Key="o.txt", Body=b"owned")
    olga.create_bucket(Bucket=f"dev.{repo}")
    olga.delete_bucket(Bucket=f"dev.{repo}")
    olga.delete_bucket(Bucket=f"master.{repo}")
    names = [x["Name"] for x in world.s3.list_buckets()["Buckets"]]
    assert f"master.{repo}" not in names and f"dev.{repo}" not in names
    # owner of one repo is nothing on another
    other = world.repo()
    denied(lambda: olga.get_object(Bucket=f"master.{other}", Key="a.txt"))
    denied(lambda: olga.delete_bucket(Bucket=f"master.{other}"))


def test_user_without_a_role_reads_nothing(world):
    repo = world.repo()
    b = f"master.{repo}"
    upload = world.s3.create_multipart_upload(Bucket=b, Key="mp.bin")["UploadId"]
    nick = world.client(world.users["nick"])
    for name, call in [
            ("ListObjects", lambda: nick.list_objects(Bucket=b)),
            ("ListObjectsV2", lambda: nick.list_objects_v2(Bucket=b)),
            ("ListObjectVersions", lambda: nick.list_object_versions(Bucket=b)),
            ("ListMultipartUploads", lambda: nick.list_multipart_uploads(Bucket=b)),
            ("ListParts", lambda: nick.list_parts(Bucket=b, Key="mp.bin", UploadId=upload)),
            ("GetObject", lambda: nick.get_object(Bucket=b, Key="a.txt")),
            ("GetObject-bare-repo", lambda: nick.get_object(Bucket=repo, Key="a.txt")),
            ("GetObject-range", lambda: nick.get_object(Bucket=b, Key="a.txt", Range="bytes=0-1")),
            ("GetBucketLocation", lambda: nick.get_bucket_location(Bucket=b)),
            ("GetBucketVersioning", lambda: nick.get_bucket_versioning(Bucket=b)),
            ("GetBucketAcl", lambda: nick.get_bucket_acl(Bucket=b)),
            ("GetObjectAcl", lambda: nick.get_object_acl(Bucket=b, Key="a.txt"))]:
        with pytest.raises(ClientError) as e:
            call()
        r = e.value.response
        assert (r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]) == (403, "AccessDenied"), name
    for call in (lambda: nick.head_object(Bucket=b, Key="a.txt"), lambda: nick.head_bucket(Bucket=b)):
        denied(call, code=None)
    world.s3.abort_multipart_upload(Bucket=b, Key="mp.bin", UploadId=upload)


def test_bucket_acl_cannot_escalate(world):
    """Roles can also be set over S3 with PutBucketAcl's x-amz-grant-* headers: owners only."""
    repo = world.repo(rita="reader", will="writer", olga="owner")
    b = f"master.{repo}"
    before = {(g["user"], g["role"]) for g in world.cli.grants(repo=repo)}
    for user in ("rita", "will"):
        c = world.client(world.users[user])
        denied(lambda: c.put_bucket_acl(Bucket=b, GrantFullControl=f'id="{user}"'))
        denied(lambda: c.put_bucket_acl(Bucket=b, GrantWrite='id="nick"'))
    nick = world.client(world.users["nick"])
    denied(lambda: nick.put_bucket_acl(Bucket=b, GrantFullControl='id="nick"'))
    assert {(g["user"], g["role"]) for g in world.cli.grants(repo=repo)} == before
    denied(lambda: nick.get_object(Bucket=b, Key="a.txt"))
    # the owner may grant over S3
    world.client(world.users["olga"]).put_bucket_acl(Bucket=b, GrantRead='id="nick"')
    assert nick.get_object(Bucket=b, Key="a.txt")["Body"].read() == b"alpha"
    denied(lambda: nick.put_object(Bucket=b, Key="a.txt", Body=b"no"))
    world.client(world.users["olga"]).get_object(Bucket=b, Key="a.txt")  # the caller stays owner


def test_admin_users_may_do_everything(world):
    boss = world.cli.key_create("boss", admin=True)
    repo = world.repo(objects={"a.txt": b"alpha"})
    nick = world.client(world.users["nick"])
    theirs = f"master.r{uuid.uuid4().hex[:10]}"
    nick.create_bucket(Bucket=theirs)
    nick.put_object(Bucket=theirs, Key="n.txt", Body=b"nick's")
    c = world.client(boss)
    names = {x["Name"] for x in c.list_buckets()["Buckets"]}
    assert {f"master.{repo}", theirs} <= names
    assert names == {x["Name"] for x in world.s3.list_buckets()["Buckets"]}
    assert c.get_object(Bucket=theirs, Key="n.txt")["Body"].read() == b"nick's"
    c.put_object(Bucket=f"master.{repo}", Key="boss.txt", Body=b"boss")
    c.copy_object(Bucket=theirs, Key="copied.txt", CopySource={"Bucket": f"master.{repo}", "Key": "a.txt"})
    c.create_bucket(Bucket=f"dev.{repo}")
    c.delete_bucket(Bucket=f"dev.{repo}")
    c.delete_bucket(Bucket=theirs)
    assert theirs not in {x["Name"] for x in world.s3.list_buckets()["Buckets"]}


def test_deleting_the_last_branch_drops_the_grants(world):
    """Documented (docs/architecture.md): a repo re-created under the same name does not
    inherit the old roles."""
    nick = world.client(world.users["nick"])
    rita = world.client(world.users["rita"])
    repo = f"r{uuid.uuid4().hex[:10]}"
    nick.create_bucket(Bucket=f"master.{repo}")
    world.cli.grant("rita", repo, "writer")
    rita.put_object(Bucket=f"master.{repo}", Key="r.txt", Body=b"rita")
    nick.delete_bucket(Bucket=f"master.{repo}")
    assert world.cli.grants(repo=repo) == []
    olga = world.client(world.users["olga"])
    olga.create_bucket(Bucket=f"master.{repo}")  # a new repo: olga owns it
    olga.put_object(Bucket=f"master.{repo}", Key="o.txt", Body=b"olga")
    denied(lambda: rita.get_object(Bucket=f"master.{repo}", Key="o.txt"))
    denied(lambda: nick.get_object(Bucket=f"master.{repo}", Key="o.txt"))
    olga.delete_bucket(Bucket=f"master.{repo}")


def test_list_buckets_shows_only_readable_repos(world):
    r1 = world.repo(rita="reader", will="writer")
    world.s3.create_bucket(Bucket=f"dev.{r1}")
    r2 = world.repo()
    def names(creds):
        return {x["Name"] for x in world.client(creds).list_buckets()["Buckets"]}
    mine = {f"master.{r1}", f"dev.{r1}"}
    for user in ("rita", "will"):
        seen = names(world.users[user])
        assert mine <= seen and f"master.{r2}" not in seen, (user, seen)
    assert not (names(world.users["nick"]) & (mine | {f"master.{r2}"}))
    assert mine | {f"master.{r2}"} <= names(world.admin)


def test_create_bucket_of_new_repo_makes_caller_owner(world):
    nick = world.client(world.users["nick"])
    repo = f"r{uuid.uuid4().hex[:10]}"
    b = f"master.{repo}"
    nick.create_bucket(Bucket=b)
    nick.put_object(Bucket=b, Key="mine.txt", Body=b"nick's")
    assert nick.get_object(Bucket=b, Key="mine.txt")["Body"].read() == b"nick's"
    assert b in {x["Name"] for x in nick.list_buckets()["Buckets"]}
    nick.create_bucket(Bucket=f"dev.{repo}")  # as owner, branches too
    # somebody else sees nothing of it
    rita = world.client(world.users["rita"])
    assert b not in {x["Name"] for x in rita.list_buckets()["Buckets"]}
    denied(lambda: rita.get_object(Bucket=b, Key="mine.txt"))
    denied(lambda: rita.list_objects_v2(Bucket=b))
    denied(lambda: rita.head_object(Bucket=b, Key="mine.txt"), code=None)
    denied(lambda: rita.put_object(Bucket=b, Key="x", Body=b"x"))
    denied(lambda: rita.create_bucket(Bucket=f"feature.{repo}"))
    # a bucket in somebody else's existing repo is not "new"
    other = world.repo()
    denied(lambda: nick.create_bucket(Bucket=f"dev.{other}"))
    # the owner may delete it
    nick.delete_bucket(Bucket=f"dev.{repo}")
    nick.delete_bucket(Bucket=b)
    assert b not in {x["Name"] for x in world.s3.list_buckets()["Buckets"]}


def test_revocation_takes_effect_on_the_running_server(world):
    repo = world.repo()
    b = f"master.{repo}"
    k1 = world.cli.key_create("temp")
    k2 = world.cli.key_create("temp")
    world.cli.grant("temp", repo, "writer")
    c1, c2 = boto3_client(world.endpoint, k1), boto3_client(world.endpoint, k2)
    try:
        c1.put_object(Bucket=b, Key="t.txt", Body=b"one")
        url = c1.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "t.txt"}, ExpiresIn=600)
        assert http_request(url) == (200, b"one")
        world.cli.key_revoke(k1.access_key)
        status, body = http_request(url)
        assert status == 403 and error_code(body) == "InvalidAccessKeyId", body
        denied(lambda: c1.get_object(Bucket=b, Key="t.txt"), code="InvalidAccessKeyId")
        denied(lambda: c1.put_object(Bucket=b, Key="t.txt", Body=b"two"), code="InvalidAccessKeyId")
        denied(lambda: c1.list_buckets(), code="InvalidAccessKeyId")
        # the user's other key is unaffected
        assert c2.get_object(Bucket=b, Key="t.txt")["Body"].read() == b"one"
        # changing and taking the role away are immediate too
        world.cli.grant("temp", repo, "reader")
        denied(lambda: c2.put_object(Bucket=b, Key="t.txt", Body=b"two"))
        assert c2.get_object(Bucket=b, Key="t.txt")["Body"].read() == b"one"
        world.cli.revoke("temp", repo)
        denied(lambda: c2.get_object(Bucket=b, Key="t.txt"))
        denied(lambda: c2.put_object(Bucket=b, Key="t.txt", Body=b"three"))
        assert world.s3.get_object(Bucket=b, Key="t.txt")["Body"].read() == b"one"
    finally:
        c1.close()
        c2.close()


def test_token_style_key(world):
    tok = world.cli.key_create("pach", token=True)
    assert tok.access_key == tok.secret_key and tok.user == "pach"
    repo = world.repo(pach="writer")
    b = f"master.{repo}"
    c = world.client(tok)
    c.put_object(Bucket=b, Key="tok.txt", Body=b"by token")
    assert c.get_object(Bucket=b, Key="tok.txt")["Body"].read() == b"by token"
    assert world.client(tok, "s3").get_object(Bucket=b, Key="tok.txt")["Body"].read() == b"by token"
    assert b in {x["Name"] for x in c.list_buckets()["Buckets"]}
    denied(lambda: world.client(tok.with_secret(tok.secret_key + "x")).list_buckets(),
           code="SignatureDoesNotMatch")
    world.cli.key_revoke(tok.access_key)
    denied(lambda: world.client(tok).list_buckets(), code="InvalidAccessKeyId")


# --------------------------------------------------------------------------- signatures

def test_anonymous_requests_are_denied(world):
    repo = world.repo()
    for url, method in [(f"{world.endpoint}/", "GET"), (f"{world.endpoint}/master.{repo}", "GET"),
                        (f"{world.endpoint}/master.{repo}/a.txt", "GET")]:
        status, body = http_request(url, method)
        assert status == 403 and error_code(body) == "AccessDenied", (url, body)
        assert body.startswith(b"<?xml")
    status, body = http_request(f"{world.endpoint}/master.{repo}/a.txt", "PUT", b"anon")
    assert status == 403 and error_code(body) == "AccessDenied"
    anon = world.client(None)
    denied(lambda: anon.list_objects_v2(Bucket=f"master.{repo}"))
    denied(lambda: anon.head_object(Bucket=f"master.{repo}", Key="a.txt"), code=None)
    assert world.s3.get_object(Bucket=f"master.{repo}", Key="a.txt")["Body"].read() == b"alpha"


SPECIAL_KEY = "dir/a b+c ü&=;:@$,!*'()~%.txt"


@pytest.mark.parametrize("sv", ["s3v4", "s3"])
def test_special_character_keys_and_signed_query_params(world, sv):
    repo = world.repo(objects={}, will="writer")
    b = f"master.{repo}"
    c = world.client(world.users["will"], sv)
    c.put_object(Bucket=b, Key=SPECIAL_KEY, Body=b"special")
    assert c.get_object(Bucket=b, Key=SPECIAL_KEY)["Body"].read() == b"special"
    assert c.head_object(Bucket=b, Key=SPECIAL_KEY)["ContentLength"] == 7
    url = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": SPECIAL_KEY})
    assert http_request(url) == (200, b"special")
    url = c.generate_presigned_url("head_object", Params={"Bucket": b, "Key": SPECIAL_KEY})
    assert http_request(url, "HEAD")[0] == 200
    url = c.generate_presigned_url("get_object", Params={
        "Bucket": b, "Key": SPECIAL_KEY, "ResponseContentDisposition": 'attachment; filename="x y.txt"',
        "ResponseContentType": "text/x-special"})
    req = urllib.request.Request(url)
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.read() == b"special"
        assert resp.headers["Content-Disposition"] == 'attachment; filename="x y.txt"'
        assert resp.headers["Content-Type"] == "text/x-special"
    # the response-* overrides are signed: changing one breaks the signature
    status, body = http_request(url.replace("text%2Fx-special", "text%2Fhtml"))
    assert status == 403 and error_code(body) == "SignatureDoesNotMatch", body
    # last: a bucket-level request (see test_sigv2_header_auth_bucket_operations for SigV2)
    assert [o["Key"] for o in c.list_objects_v2(Bucket=b, Prefix="dir/a b+")["Contents"]] == [SPECIAL_KEY]


def test_unknown_key_and_wrong_secret(world):
    r = denied(lambda: world.client(Creds("x", "AKNOSUCHKEY0000000", "whatever")).list_buckets(),
               code="InvalidAccessKeyId")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 403
    bad = world.admin.with_secret(world.admin.secret_key[:-1] + ("A" if world.admin.secret_key[-1] != "A" else "B"))
    r = denied(lambda: world.client(bad).list_buckets(), code="SignatureDoesNotMatch")
    assert r["Error"].get("StringToSign", "").startswith("AWS4-HMAC-SHA256\n"), r["Error"]
    r = denied(lambda: world.client(bad, "s3").list_buckets(), code="SignatureDoesNotMatch")
    assert r["Error"].get("StringToSign", "").startswith("GET\n"), r["Error"]


@pytest.mark.parametrize("region", ["US", "eu-central-1"])
def test_any_region_in_the_scope_is_accepted(world, region):
    repo = world.repo(will="writer")
    c = world.client(world.users["will"], region=region)
    c.put_object(Bucket=f"master.{repo}", Key="r.txt", Body=region.encode())
    assert c.get_object(Bucket=f"master.{repo}", Key="r.txt")["Body"].read() == region.encode()
    url = c.generate_presigned_url("get_object", Params={"Bucket": f"master.{repo}", "Key": "r.txt"})
    assert f"%2F{region}%2Fs3%2F" in url
    assert http_request(url) == (200, region.encode())


def test_clock_skew(world):
    c = world.client(world.admin)
    cv2 = world.client(world.admin, "s3")
    for minutes in (-20, 20):
        with frozen_botocore_clock(utcnow() + dt.timedelta(minutes=minutes)):
            denied(c.list_buckets, code="RequestTimeTooSkewed")
            denied(cv2.list_buckets, code="RequestTimeTooSkewed")
    with frozen_botocore_clock(utcnow() - dt.timedelta(minutes=5)):
        c.list_buckets()
        cv2.list_buckets()
    # a raw request with an old X-Amz-Date, signed by botocore
    url = f"{world.endpoint}/"
    headers = sign_v4(world.admin, "GET", url, {}, when=utcnow() - dt.timedelta(hours=1))
    status, _, body = raw_request(world.server.port, "GET", "/", headers)
    assert status == 403 and error_code(body) == "RequestTimeTooSkewed", body


def test_presigned_sigv4(world):
    repo = world.repo(rita="reader")
    b = f"master.{repo}"
    c = world.client(world.admin)
    url = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "a.txt"}, ExpiresIn=300)
    assert "X-Amz-Signature=" in url
    assert http_request(url) == (200, b"alpha")
    assert http_request(url, "HEAD")[0] == 403  # signed for GET
    # tampered: signature, key, expiry
    sig = re.search(r"X-Amz-Signature=([0-9a-f]+)", url).group(1)
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    status, body = http_request(url.replace(sig, flipped))
    assert status == 403 and error_code(body) == "SignatureDoesNotMatch"
    status, body = http_request(url.replace("/a.txt?", "/b.txt?"))
    assert status == 403 and error_code(body) == "SignatureDoesNotMatch"
    status, body = http_request(url.replace("X-Amz-Expires=300", "X-Amz-Expires=3000"))
    assert status == 403 and error_code(body) == "SignatureDoesNotMatch"
    with frozen_botocore_clock(utcnow() - dt.timedelta(hours=1)):
        old = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "a.txt"}, ExpiresIn=60)
    status, body = http_request(old)
    assert status == 403 and error_code(body) == "AccessDenied" and b"expired" in body.lower(), body
    week = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "a.txt"}, ExpiresIn=7 * 86400)
    assert http_request(week) == (200, b"alpha")
    status, body = http_request(week.replace(f"X-Amz-Expires={7 * 86400}", f"X-Amz-Expires={7 * 86400 + 1}"))
    assert status in (400, 403), (status, body)  # at most 7 days, whatever the signature says
    too_long = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "a.txt"},
                                        ExpiresIn=7 * 86400 + 1)
    status, body = http_request(too_long)
    assert status in (400, 403) and error_code(body) in ("AuthorizationQueryParametersError", "AccessDenied"), body
    # dated in the future: not a way around the 7 days
    with frozen_botocore_clock(utcnow() + dt.timedelta(days=30)):
        future = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "a.txt"}, ExpiresIn=3600)
    status, body = http_request(future)
    assert status == 403, (status, body)
    # presigned PUT carries the signer's rights: the admin's works, the reader's does not
    put = c.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "up.txt"}, ExpiresIn=300)
    assert http_request(put, "PUT", b"uploaded")[0] == 200
    assert world.s3.get_object(Bucket=b, Key="up.txt")["Body"].read() == b"uploaded"
    rput = world.client(world.users["rita"]).generate_presigned_url(
        "put_object", Params={"Bucket": b, "Key": "up.txt"}, ExpiresIn=300)
    status, body = http_request(rput, "PUT", b"by reader")
    assert status == 403 and error_code(body) == "AccessDenied"
    assert world.s3.get_object(Bucket=b, Key="up.txt")["Body"].read() == b"uploaded"


def test_presigned_sigv2_boto3_default(world):
    import boto3
    from botocore.config import Config
    repo = world.repo()
    b = f"master.{repo}"
    c = boto3.session.Session().client(
        "s3", endpoint_url=world.endpoint, region_name="us-east-1",
        aws_access_key_id=world.admin.access_key, aws_secret_access_key=world.admin.secret_key,
        config=Config(s3={"addressing_style": "path"}))  # no signature_version: boto3's default
    try:
        url = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "a.txt"})
        assert "AWSAccessKeyId=" in url and "Signature=" in url and "Expires=" in url, url
        assert http_request(url) == (200, b"alpha")
        sig = re.search(r"Signature=([^&]+)", url).group(1)
        status, body = http_request(url.replace(sig, "A" + sig[1:] if sig[0] != "A" else "B" + sig[1:]))
        assert status == 403 and error_code(body) == "SignatureDoesNotMatch"
        expires = re.search(r"Expires=(\d+)", url).group(1)
        status, body = http_request(url.replace(expires, str(int(expires) + 1000)))
        assert status == 403 and error_code(body) == "SignatureDoesNotMatch"
        with frozen_botocore_clock(utcnow() - dt.timedelta(hours=2)):
            old = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "a.txt"}, ExpiresIn=60)
        assert int(re.search(r"Expires=(\d+)", old).group(1)) < time.time() - 3600
        status, body = http_request(old)
        assert status == 403 and error_code(body) == "AccessDenied" and b"expired" in body.lower(), body
    finally:
        c.close()


def test_sigv2_header_auth(world):
    repo = world.repo(rita="reader", will="writer")
    b = f"master.{repo}"
    will = world.client(world.users["will"], "s3")
    will.put_object(Bucket=b, Key="v2 key+plus.txt", Body=b"signed v2")
    assert will.get_object(Bucket=b, Key="v2 key+plus.txt")["Body"].read() == b"signed v2"
    assert will.head_object(Bucket=b, Key="v2 key+plus.txt")["ContentLength"] == 9
    mp = will.create_multipart_upload(Bucket=b, Key="mp2")["UploadId"]
    part = will.upload_part(Bucket=b, Key="mp2", UploadId=mp, PartNumber=1, Body=b"p")
    will.complete_multipart_upload(Bucket=b, Key="mp2", UploadId=mp, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    will.delete_object(Bucket=b, Key="mp2")
    will.copy_object(Bucket=b, Key="copied v2.txt", CopySource={"Bucket": b, "Key": "v2 key+plus.txt"})
    assert will.get_object(Bucket=b, Key="copied v2.txt")["Body"].read() == b"signed v2"
    rita = world.client(world.users["rita"], "s3")
    assert rita.get_object(Bucket=b, Key="a.txt")["Body"].read() == b"alpha"
    before = world.state(repo)
    denied(lambda: rita.put_object(Bucket=b, Key="a.txt", Body=b"no"))
    denied(lambda: world.client(world.users["rita"].with_secret("wrong"), "s3").get_object(
        Bucket=b, Key="a.txt"), code="SignatureDoesNotMatch")
    denied(lambda: world.client(Creds("x", "AKNOSUCHKEY0000000", "x"), "s3").list_buckets(),
           code="InvalidAccessKeyId")
    assert world.state(repo) == before


def test_sigv2_header_auth_bucket_operations(world):
    """botocore's SigV2 signs a bucket-level request sent as ``/bucket`` with the
    CanonicalizedResource ``/bucket/`` (its ``auth_path``); AWS accepts that."""
    repo = world.repo(rita="reader", will="writer")
    b = f"master.{repo}"
    will = world.client(world.users["will"], "s3")
    assert [o["Key"] for o in will.list_objects(Bucket=b)["Contents"]] == ["a.txt", "b.txt"]
    assert [o["Key"] for o in will.list_objects_v2(Bucket=b)["Contents"]] == ["a.txt", "b.txt"]
    will.head_bucket(Bucket=b)
    will.get_bucket_location(Bucket=b)
    r = will.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "b.txt"}]})
    assert not r.get("Errors")
    will.create_bucket(Bucket=f"dev.{repo}")
    denied(lambda: will.delete_bucket(Bucket=f"dev.{repo}"))
    world.client(world.admin, "s3").delete_bucket(Bucket=f"dev.{repo}")
    assert f"dev.{repo}" not in {x["Name"] for x in world.s3.list_buckets()["Buckets"]}
    url = world.client(world.users["rita"], "s3").generate_presigned_url("list_objects", Params={"Bucket": b})
    status, body = http_request(url)
    assert status == 200 and b"<Key>a.txt</Key>" in body, body


def test_sigv2_x_amz_date_in_rfc_2822_form(world):
    """s3cmd --signature-v2 sends no Date but ``x-amz-date: Thu, 26 Nov 2026 12:15:00 +0000``
    (signed among the x-amz- headers, with an empty Date line)."""
    repo = world.repo(rita="reader")
    now = dt.datetime.now(dt.timezone.utc)
    results = {}
    for date in (now.strftime("%a, %d %b %Y %H:%M:%S GMT"), now.strftime("%a, %d %b %Y %H:%M:%S +0000")):
        headers = {"Host": f"127.0.0.1:{world.server.port}", "x-amz-date": date}
        headers["Authorization"] = sign_v2(world.users["rita"], "GET", f"/master.{repo}/a.txt", headers)
        status, _, body = raw_request(world.server.port, "GET", f"/master.{repo}/a.txt", headers)
        results[date] = (status, body if status != 200 else body.decode())
    assert all(r == (200, "alpha") for r in results.values()), results
    old = (now - dt.timedelta(minutes=30)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    headers = {"Host": f"127.0.0.1:{world.server.port}", "x-amz-date": old}
    headers["Authorization"] = sign_v2(world.users["rita"], "GET", f"/master.{repo}/a.txt", headers)
    status, _, body = raw_request(world.server.port, "GET", f"/master.{repo}/a.txt", headers)
    assert status == 403 and error_code(body) == "RequestTimeTooSkewed", body


# --------------------------------------------------------------------------- payloads

def _signed_put(world, creds, b, key, body, payload_hash=None, send_body=None, extra=None):
    url = f"{world.endpoint}/{b}/{key}"
    headers = sign_v4(creds, "PUT", url, {"Content-Length": str(len(body)), **(extra or {})}, body,
                      payload_hash=payload_hash)
    return raw_request(world.server.port, "PUT", f"/{b}/{key}", headers,
                       body if send_body is None else send_body)


def test_payload_hash_is_checked(world):
    repo = world.repo(objects={})
    b = f"master.{repo}"
    status, _, body = _signed_put(world, world.admin, b, "ok.txt", b"good data")
    assert status == 200, body
    # a valid signature over the hash of other bytes: the body does not match its hash
    status, _, body = _signed_put(world, world.admin, b, "bad.txt", b"good data", send_body=b"evil data")
    assert status == 400 and error_code(body) == "XAmzContentSHA256Mismatch", body
    status, _, body = _signed_put(world, world.admin, b, "ok.txt", b"good data", send_body=b"evil data")
    assert status == 400 and error_code(body) == "XAmzContentSHA256Mismatch", body
    assert world.state(repo)[b] == {"ok.txt": b"good data"}
    status, _, body = _signed_put(world, world.admin, b, "unsigned.txt", b"any bytes",
                                  payload_hash="UNSIGNED-PAYLOAD")
    assert status == 200, body
    assert world.s3.get_object(Bucket=b, Key="unsigned.txt")["Body"].read() == b"any bytes"


def test_unsigned_trailer_body_with_a_signed_header(world):
    """What botocore sends over https: STREAMING-UNSIGNED-PAYLOAD-TRAILER, the header signed."""
    repo = world.repo(objects={}, will="writer")
    b = f"master.{repo}"
    data = os.urandom(70_000)
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    body = b"".join(f"{len(data[i:i + 65536]):x}\r\n".encode() + data[i:i + 65536] + b"\r\n"
                    for i in range(0, len(data), 65536))
    body += f"0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
               "x-amz-trailer": "x-amz-checksum-crc32", "Content-Length": str(len(body))}
    signed = sign_v4(world.users["will"], "PUT", f"{world.endpoint}/{b}/t.bin", headers,
                     payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    status, _, resp = raw_request(world.server.port, "PUT", f"/{b}/t.bin", signed, body)
    assert status == 200, resp
    assert world.s3.get_object(Bucket=b, Key="t.bin")["Body"].read() == data
    # the same by a user without a role there: refused, nothing stored
    signed = sign_v4(world.users["rita"], "PUT", f"{world.endpoint}/{b}/r.bin", headers,
                     payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    status, _, resp = raw_request(world.server.port, "PUT", f"/{b}/r.bin", signed, body)
    assert status == 403 and error_code(resp) == "AccessDenied"
    assert sorted(world.state(repo)[b]) == ["t.bin"]


def test_payload_hash_is_checked_for_xml_bodies(world):
    """A signed DeleteObjects naming a.txt must not delete b.txt when the body is swapped."""
    repo = world.repo(will="writer")
    b = f"master.{repo}"
    def delete_xml(key):
        return (f'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>{key}</Key>'
                f'</Object><Quiet>true</Quiet></Delete>').encode()
    signed_for, sent = delete_xml("a.txt"), delete_xml("b.txt")
    assert len(signed_for) == len(sent)
    url = f"{world.endpoint}/{b}?delete="
    headers = sign_v4(world.users["will"], "POST", url, {"Content-Length": str(len(sent)),
                                                         "Content-Type": "application/xml"}, signed_for)
    status, _, body = raw_request(world.server.port, "POST", f"/{b}?delete=", headers, sent)
    assert status == 400 and error_code(body) == "XAmzContentSHA256Mismatch", (status, body)
    assert sorted(world.state(repo)[b]) == ["a.txt", "b.txt"]
    status, _, body = raw_request(world.server.port, "POST", f"/{b}?delete=", headers, signed_for)
    assert status == 200, body
    assert sorted(world.state(repo)[b]) == ["b.txt"]


DATA = bytes(range(256)) * 120  # 30720 bytes: 3 chunks of 8 KiB and a short one


def _streaming_put(world, creds, b, key, data, *, tamper=None, trailer=False, region="us-east-1",
                   query=""):
    """PUT ``data`` as STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] over a raw socket.

    ``tamper``: ``("sig", i)`` alters chunk i's signature, ``("data", i)`` one byte of chunk
    i's data, ``("trailer-sig", None)`` the trailer signature."""
    chunks = split_chunks(data, 8192)
    trailer_lines = None
    if trailer:
        crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        trailer_lines = f"x-amz-checksum-crc32:{crc}\n".encode()
    marker = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else "")
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
               "Content-Length": str(streaming_length(chunks, trailer_lines))}
    if trailer:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
    url = f"{world.endpoint}/{b}/{key}" + (f"?{query}" if query else "")
    signed = sign_v4(creds, "PUT", url, headers, payload_hash=marker, region=region)
    ts = signed["X-Amz-Date"]
    sigs = chunk_signatures(creds.secret_key, ts, region, seed_signature(signed), chunks)
    tsig = trailer_signature(creds.secret_key, ts, region, sigs[-1], trailer_lines) if trailer else None
    if tamper and tamper[0] == "sig":
        i = tamper[1]
        sigs[i] = sigs[i][:-1] + ("0" if sigs[i][-1] != "0" else "1")
    if tamper and tamper[0] == "data":
        i = tamper[1]
        chunks[i] = bytes([chunks[i][0] ^ 1]) + chunks[i][1:]
    if tamper and tamper[0] == "trailer-sig":
        tsig = tsig[:-1] + ("0" if tsig[-1] != "0" else "1")
    body = streaming_body(chunks, sigs, trailer_lines, tsig)
    assert len(body) == int(headers["Content-Length"])
    return raw_request(world.server.port, "PUT", f"/{b}/{key}" + (f"?{query}" if query else ""), signed, body)


@pytest.mark.parametrize("trailer", [False, True], ids=["payload", "payload-trailer"])
def test_streaming_signed_upload(world, trailer):
    repo = world.repo(objects={}, will="writer")
    b = f"master.{repo}"
    status, headers, body = _streaming_put(world, world.users["will"], b, "streamed.bin", DATA,
                                           trailer=trailer, region="US")
    assert status == 200, body
    assert headers["etag"] == f'"{hashlib.md5(DATA).hexdigest()}"'
    got = world.s3.get_object(Bucket=b, Key="streamed.bin")
    assert got["Body"].read() == DATA and got["ContentLength"] == len(DATA)


def test_streaming_signed_upload_part(world):
    """minio-go sends its multipart parts as signed aws-chunks too (query string signed)."""
    repo = world.repo(objects={}, will="writer")
    b = f"master.{repo}"
    will = world.client(world.users["will"])
    upload = will.create_multipart_upload(Bucket=b, Key="mp.bin")["UploadId"]
    part1 = os.urandom(5 * MiB)
    status, h1, body = _streaming_put(world, world.users["will"], b, "mp.bin", part1,
                                      query=f"partNumber=1&uploadId={upload}")
    assert status == 200, body
    status, _, body = _streaming_put(world, world.users["will"], b, "mp.bin", DATA, tamper=("sig", 2),
                                     query=f"partNumber=2&uploadId={upload}")
    assert status == 403 and error_code(body) == "SignatureDoesNotMatch", body
    assert [p["PartNumber"] for p in will.list_parts(Bucket=b, Key="mp.bin", UploadId=upload)["Parts"]] == [1]
    status, h2, body = _streaming_put(world, world.users["will"], b, "mp.bin", DATA,
                                      query=f"partNumber=2&uploadId={upload}")
    assert status == 200, body
    will.complete_multipart_upload(Bucket=b, Key="mp.bin", UploadId=upload, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": h1["etag"]}, {"PartNumber": 2, "ETag": h2["etag"]}]})
    assert world.s3.get_object(Bucket=b, Key="mp.bin")["Body"].read() == part1 + DATA


@pytest.mark.parametrize("tamper", [("sig", 1), ("sig", 3), ("sig", 4), ("data", 2), ("trailer-sig", None)],
                         ids=["chunk1-sig", "last-data-chunk-sig", "final-chunk-sig", "chunk2-data",
                              "trailer-sig"])
def test_streaming_bad_chunk_commits_nothing(world, tamper):
    repo = world.repo(objects={"keep.bin": b"old"}, will="writer")
    b = f"master.{repo}"
    before = world.state(repo)
    for key in ("new.bin", "keep.bin"):
        status, _, body = _streaming_put(world, world.users["will"], b, key, DATA, tamper=tamper,
                                         trailer=tamper[0] == "trailer-sig")
        assert status == 403 and error_code(body) == "SignatureDoesNotMatch", (key, status, body)
    assert world.state(repo) == before


def test_manual_sigv4_control(world):
    """The hand-made signer used below is right: a plain GET signed with it works."""
    repo = world.repo(rita="reader")
    h = sign_v4_raw(world.users["rita"], "GET", f"/master.{repo}/a.txt", "",
                    {"Host": f"127.0.0.1:{world.server.port}"}, ["host", "x-amz-content-sha256", "x-amz-date"],
                    hashlib.sha256(b"").hexdigest())
    assert raw_request(world.server.port, "GET", f"/master.{repo}/a.txt", h)[::2] == (200, b"alpha")


def test_dot_segments_do_not_escape_the_signed_bucket(world):
    """A reader of R signs ``/master.R/../master.S/a.txt`` exactly as sent: whatever the
    router makes of it, S's object must not come back."""
    mine = world.repo(rita="reader")
    other = world.repo(objects={"a.txt": b"secret of S"})
    host = f"127.0.0.1:{world.server.port}"
    for path in (f"/master.{mine}/../master.{other}/a.txt", f"/master.{mine}/%2E%2E/master.{other}/a.txt",
                 f"/master.{mine}/./../master.{other}/a.txt"):
        h = sign_v4_raw(world.users["rita"], "GET", path, "", {"Host": host},
                        ["host", "x-amz-content-sha256", "x-amz-date"], hashlib.sha256(b"").hexdigest())
        status, _, body = raw_request(world.server.port, "GET", path, h)
        assert b"secret of S" not in body and status != 200, (path, status, body)


def test_unsigned_x_amz_headers_are_refused(world):
    """S3 requires every x-amz-* header to be signed: a captured signed PutObject must not
    turn into a CopyObject (or change its payload hash) by adding unsigned headers."""
    repo = world.repo(objects={"target.txt": b"original"}, will="writer")
    secret_repo = world.repo(objects={"s.txt": b"secret"}, will="reader")
    b = f"master.{repo}"
    host = f"127.0.0.1:{world.server.port}"
    empty = hashlib.sha256(b"").hexdigest()
    base = {"Host": host, "Content-Length": "0"}
    control = sign_v4_raw(world.users["will"], "PUT", f"/{b}/control.txt", "", base,
                          ["host", "content-length", "x-amz-content-sha256", "x-amz-date"], empty)
    assert raw_request(world.server.port, "PUT", f"/{b}/control.txt", control)[0] == 200
    # x-amz-copy-source added, not signed
    h = sign_v4_raw(world.users["will"], "PUT", f"/{b}/target.txt", "", base,
                    ["host", "content-length", "x-amz-content-sha256", "x-amz-date"], empty)
    h["x-amz-copy-source"] = f"/master.{secret_repo}/s.txt"
    status, _, body = raw_request(world.server.port, "PUT", f"/{b}/target.txt", h)
    assert status == 403, (status, body)
    # x-amz-content-sha256 not signed: the body can be swapped with its hash
    h = sign_v4_raw(world.users["will"], "PUT", f"/{b}/target.txt", "", {"Host": host, "Content-Length": "4"},
                    ["host", "content-length", "x-amz-date"], hashlib.sha256(b"evil").hexdigest())
    status, _, body = raw_request(world.server.port, "PUT", f"/{b}/target.txt", h, b"evil")
    assert status == 403, (status, body)
    assert world.state(repo)[b] == {"target.txt": b"original", "control.txt": b""}


def test_signed_but_unauthorised_put_with_expect_100_is_refused_before_the_body(world):
    repo = world.repo(objects={}, rita="reader")
    path = f"/master.{repo}/big.bin"
    headers = sign_v4(world.users["rita"], "PUT", f"{world.endpoint}{path}",
                      {"Content-Length": str(4 * MiB), "Expect": "100-continue"},
                      payload_hash="UNSIGNED-PAYLOAD")
    with socket.create_connection(("127.0.0.1", world.server.port), timeout=30) as s:
        s.sendall((f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                   + "\r\n").encode())
        status, _, body = read_response(s)
        assert status == 403 and error_code(body) == "AccessDenied", (status, body)  # not 100
        assert s.recv(10) == b""
    assert "Contents" not in world.s3.list_objects_v2(Bucket=f"master.{repo}")


BAD_AUTH = [
    {"Authorization": "AWS4-HMAC-SHA256"},
    {"Authorization": "AWS4-HMAC-SHA256 Credential="},
    {"Authorization": "AWS4-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=zz"},
    {"Authorization": "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, "
                      "SignedHeaders=host;x-amz-date, Signature=00"},
    {"Authorization": "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, "
                      "SignedHeaders=host;x-nope, Signature=" + "0" * 64, "x-amz-date": "20260101T000000Z",
     "x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
    {"Authorization": "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, "
                      "SignedHeaders=host, Signature=" + "0" * 64, "x-amz-date": "garbage",
     "x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
    {"Authorization": "AWS4-ECDSA-P256-SHA256 Credential=AK/20260101/s3/aws4_request, "
                      "SignedHeaders=host, Signature=00"},
    {"Authorization": "AWS "},
    {"Authorization": "AWS onlykey"},
    {"Authorization": "AWS key:sig", "Date": "not a date"},
    {"Authorization": "Bearer abc"},
    {"Authorization": "AWS4-HMAC-SHA256 Credential=\u00e9/20260101/us-east-1/s3/aws4_request"},
]
BAD_QUERY = [
    "X-Amz-Algorithm=AWS4-HMAC-SHA256",
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=abc&X-Amz-SignedHeaders=host&X-Amz-Signature=00",
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=2026&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00",
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=-5&X-Amz-SignedHeaders=host&X-Amz-Signature=00",
    "AWSAccessKeyId=x&Signature=y",
    "AWSAccessKeyId=x&Expires=notanumber&Signature=y",
    "AWSAccessKeyId=x&Expires=99999999999999999999999999&Signature=y",
    "AWSAccessKeyId=&Expires=1&Signature=",
]


@pytest.mark.parametrize("headers", BAD_AUTH, ids=[f"header{i}" for i in range(len(BAD_AUTH))])
def test_malformed_authorization_is_a_clean_4xx(world, headers):
    h = {"Host": f"127.0.0.1:{world.server.port}", **headers}
    status, _, body = raw_request(world.server.port, "GET", "/", h)
    assert 400 <= status < 500 and body.startswith(b"<?xml") and error_code(body), (status, body)


@pytest.mark.parametrize("query", BAD_QUERY, ids=[f"query{i}" for i in range(len(BAD_QUERY))])
def test_malformed_presigned_query_is_a_clean_4xx(world, query):
    h = {"Host": f"127.0.0.1:{world.server.port}"}
    status, _, body = raw_request(world.server.port, "GET", "/?" + query, h)
    assert 400 <= status < 500 and body.startswith(b"<?xml") and error_code(body), (status, body)


def test_refused_before_the_body_closes_the_connection(world):
    repo = world.repo(objects={})
    with socket.create_connection(("127.0.0.1", world.server.port), timeout=30) as s:
        s.sendall(f"PUT /master.{repo}/anon.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Content-Length: {4 * MiB}\r\nExpect: 100-continue\r\n\r\n".encode())
        status, _, body = read_response(s)
        assert status == 403 and error_code(body) == "AccessDenied"
        assert s.recv(10) == b""  # closed: the body was never sent
    assert "Contents" not in world.s3.list_objects_v2(Bucket=f"master.{repo}")


# --------------------------------------------------------------------------- auth on/off live

def test_enable_and_disable_on_a_running_server(tmp_path):
    data = tmp_path / "data"
    srv = ServerProcess(str(data)).start()
    try:
        cli = AuthCli(str(data))
        anon = boto3_client(srv.endpoint, None)
        junk = boto3_client(srv.endpoint, Creds("x", "anything", "goes"))
        anon.create_bucket(Bucket="master.live")
        anon.put_object(Bucket="master.live", Key="k", Body=b"before")
        assert junk.get_object(Bucket="master.live", Key="k")["Body"].read() == b"before"
        assert cli.status() == "disabled"
        admin = cli.enable()
        assert cli.status() == "enabled"
        denied(lambda: anon.get_object(Bucket="master.live", Key="k"))
        denied(lambda: junk.get_object(Bucket="master.live", Key="k"), code="InvalidAccessKeyId")
        adm = boto3_client(srv.endpoint, admin)
        assert adm.get_object(Bucket="master.live", Key="k")["Body"].read() == b"before"
        cli.disable()
        assert cli.status() == "disabled"
        assert anon.get_object(Bucket="master.live", Key="k")["Body"].read() == b"before"
        assert junk.get_object(Bucket="master.live", Key="k")["Body"].read() == b"before"
        for c in (anon, junk, adm):
            c.close()
    finally:
        srv.stop()
    assert not _server_problems(srv.log())


# --------------------------------------------------------------------------- the denial matrix

@dataclass
class Ctx:
    bucket: str
    repo: str
    new_repo_bucket: str


# operation -> (boto3 call, presign spec or None); the presign spec is
# (ClientMethod, Params, HTTP method, body)
OPS = {
    "ListBuckets": (lambda c, x: c.list_buckets(), lambda x: ("list_buckets", {}, "GET", None)),
    "ListObjectsV2": (lambda c, x: c.list_objects_v2(Bucket=x.bucket),
                      lambda x: ("list_objects_v2", {"Bucket": x.bucket}, "GET", None)),
    "GetObject": (lambda c, x: c.get_object(Bucket=x.bucket, Key="a.txt"),
                  lambda x: ("get_object", {"Bucket": x.bucket, "Key": "a.txt"}, "GET", None)),
    "HeadObject": (lambda c, x: c.head_object(Bucket=x.bucket, Key="a.txt"),
                   lambda x: ("head_object", {"Bucket": x.bucket, "Key": "a.txt"}, "HEAD", None)),
    "PutObject": (lambda c, x: c.put_object(Bucket=x.bucket, Key="a.txt", Body=b"overwritten"),
                  lambda x: ("put_object", {"Bucket": x.bucket, "Key": "a.txt"}, "PUT", b"overwritten")),
    "DeleteObject": (lambda c, x: c.delete_object(Bucket=x.bucket, Key="a.txt"),
                     lambda x: ("delete_object", {"Bucket": x.bucket, "Key": "a.txt"}, "DELETE", None)),
    "DeleteObjects": (lambda c, x: c.delete_objects(Bucket=x.bucket, Delete={
        "Objects": [{"Key": "a.txt"}, {"Key": "b.txt"}]}), None),
    "CreateMultipartUpload": (lambda c, x: c.create_multipart_upload(Bucket=x.bucket, Key="mp.bin"),
                              lambda x: ("create_multipart_upload", {"Bucket": x.bucket, "Key": "mp.bin"},
                                         "POST", None)),
    "CopyObject": (lambda c, x: c.copy_object(Bucket=x.bucket, Key="copy.txt",
                                              CopySource={"Bucket": x.bucket, "Key": "a.txt"}), None),
    "DeleteBucket": (lambda c, x: c.delete_bucket(Bucket=x.bucket),
                     lambda x: ("delete_bucket", {"Bucket": x.bucket}, "DELETE", None)),
    "CreateBucket-branch": (lambda c, x: c.create_bucket(Bucket=f"dev.{x.repo}"),
                            lambda x: ("create_bucket", {"Bucket": f"dev.{x.repo}"}, "PUT", None)),
    "CreateBucket-new-repo": (lambda c, x: c.create_bucket(Bucket=x.new_repo_bucket),
                              lambda x: ("create_bucket", {"Bucket": x.new_repo_bucket}, "PUT", None)),
}
WRITES = {"PutObject", "DeleteObject", "DeleteObjects", "CreateMultipartUpload", "CopyObject",
          "DeleteBucket", "CreateBucket-branch"}
MODES = {  # mode -> expected S3 error code
    "unsigned": "AccessDenied",
    "wrong-secret": "SignatureDoesNotMatch",
    "wrong-secret-v2": "SignatureDoesNotMatch",
    "revoked-key": "InvalidAccessKeyId",
    "expired-presigned": "AccessDenied",
    "reader-writes": "AccessDenied",
}
MATRIX = [(op, mode) for op in OPS for mode in MODES
          if not (mode == "reader-writes" and op not in WRITES)
          and not (mode == "expired-presigned" and OPS[op][1] is None)]


@pytest.fixture(scope="module")
def matrix(world):
    reader = world.cli.key_create("mx-reader")
    revoked = world.cli.key_create("mx-revoked", admin=True)  # an admin: only revocation stops it
    world.cli.key_revoke(revoked.access_key)
    repo = world.repo()
    world.cli.grant("mx-reader", repo, "reader")
    bad = world.admin.with_secret("not-" + world.admin.secret_key)
    return {"repo": repo, "reader": reader, "revoked": revoked, "bad": bad}


@pytest.mark.parametrize("op,mode", MATRIX, ids=[f"{op}-{mode}" for op, mode in MATRIX])
def test_denial_matrix(world, matrix, op, mode):
    repo = matrix["repo"]
    ctx = Ctx(bucket=f"master.{repo}", repo=repo, new_repo_bucket=f"master.n{uuid.uuid4().hex[:10]}")
    before = world.state(repo)
    assert ctx.new_repo_bucket not in before["buckets"]
    call, presign = OPS[op]
    code = MODES[mode]
    if mode == "expired-presigned":
        method_name, params, http_method, body = presign(ctx)
        with frozen_botocore_clock(utcnow() - dt.timedelta(hours=1)):
            url = world.s3.generate_presigned_url(method_name, Params=params, ExpiresIn=60)
        status, resp = http_request(url, http_method, body)
        assert status == 403, (status, resp)
        if http_method != "HEAD":
            assert error_code(resp) == code, resp
    else:
        creds, sv = {
            "unsigned": (None, "s3v4"),
            "wrong-secret": (matrix["bad"], "s3v4"),
            "wrong-secret-v2": (matrix["bad"], "s3"),
            "revoked-key": (matrix["revoked"], "s3v4"),
            "reader-writes": (matrix["reader"], "s3v4"),
        }[mode]
        client = world.client(creds, sv)
        denied(lambda: call(client, ctx), code=None if op == "HeadObject" else code)
    after = world.state(repo)
    assert after == before
    assert ctx.new_repo_bucket not in after["buckets"]


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
    curl = _run(["curl", "-sS", "-o", str(tmp_path / "curl.bin"), "-w", "%{http_code}", url], env) \
        if shutil.which("curl") else None
    if curl is not None:
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
