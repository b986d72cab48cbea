"""Authentication and access control end to end (issue 6): the CLI and per-repo roles.

Auth is turned on the way an operator does it: a fresh data folder, ``s3gw auth enable
--json``, ``s3gw serve`` as a child process, then users, keys and grants with ``s3gw auth
...`` subprocesses against the running server (``world`` in auth_helpers.py). Every test
makes its own repos, so the order does not matter.

Here: the CLI (enable twice, status, key list without secrets, grants, file modes of the
stored secrets), reader/writer/owner/admin through boto3 (SigV4), ListBuckets filtering,
ownership of new repos, PutBucketAcl escalation, revocation and role changes on the
running server, token-style keys, secrets kept out of the log, and enabling/disabling auth
under a running server. Signatures and bodies are in test_auth_signatures.py, the denial
matrix in test_auth_matrix.py, the real clients in test_auth_clients.py.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ServerProcess
from tests.e2e.auth_helpers import (  # noqa: F401 (world: a fixture)
    AuthCli,
    Creds,
    boto3_client,
    denied,
    error_code,
    http_request,
    server_problems,
    sign_v4,
    world,
)

MiB = 1 << 20


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


def test_loosened_secret_store_is_tightened_again(tmp_path):
    """Documented: the auth store's mode is set on creation and tightened if found looser."""
    data = tmp_path / "data"
    data.mkdir()               # only `s3gw serve` creates a data folder; auth needs one
    cli = AuthCli(str(data))
    admin = cli.enable()
    for p in data.rglob("*"):  # an operator's careless chmod -R go+r
        p.chmod(0o755 if p.is_dir() else 0o644)
    cli.key_create("later")
    cli.status()
    for p in data.rglob("*"):
        if p.is_file() and admin.secret_key.encode() in p.read_bytes():
            assert not _readable_by_others(p, data), f"{p} mode {oct(p.stat().st_mode & 0o777)}"


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


def test_bucket_acl_canned_and_policy_bodies_are_applied_or_refused(world):
    repo = world.repo(rita="reader", olga="owner")
    b = f"master.{repo}"
    olga = world.client(world.users["olga"])
    rita, nick = world.client(world.users["rita"]), world.client(world.users["nick"])
    roles = lambda: {(g["user"], g["role"]) for g in world.cli.grants(repo=repo)}  # noqa: E731
    # a policy read and sent back unchanged (s3cmd's round trip) changes nothing
    before = roles()
    assert ("rita", "reader") in before and ("olga", "owner") in before
    acl = olga.get_bucket_acl(Bucket=b)
    olga.put_bucket_acl(Bucket=b, AccessControlPolicy={"Owner": acl["Owner"],
                                                       "Grants": acl["Grants"]})
    assert roles() == before
    # a policy replaces the roles (the caller stays owner)
    olga.put_bucket_acl(Bucket=b, AccessControlPolicy={"Owner": acl["Owner"], "Grants": [
        {"Grantee": {"Type": "CanonicalUser", "ID": "nick"}, "Permission": "READ"}]})
    assert roles() == {("nick", "reader"), ("olga", "owner")}
    assert nick.get_object(Bucket=b, Key="a.txt")["Body"].read() == b"alpha"
    denied(lambda: rita.get_object(Bucket=b, Key="a.txt"))
    # canned private: the owners only
    olga.put_bucket_acl(Bucket=b, ACL="private")
    assert roles() == {("olga", "owner")}
    denied(lambda: nick.get_object(Bucket=b, Key="a.txt"))
    # what s3gw cannot do is refused, and changes nothing
    for bad, code in [
        (dict(ACL="public-read"), "InvalidArgument"),
        (dict(ACL="private", GrantRead='id="nick"'), "InvalidRequest"),
        (dict(AccessControlPolicy={"Owner": acl["Owner"], "Grants": [
            {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
             "Permission": "READ"}]}), "InvalidArgument"),
        (dict(AccessControlPolicy={"Owner": acl["Owner"], "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": "nick"}, "Permission": "READ_ACP"}]}),
         "InvalidArgument"),
    ]:
        with pytest.raises(ClientError) as e:
            olga.put_bucket_acl(Bucket=b, **bad)
        assert e.value.response["Error"]["Code"] == code, bad
    url = f"{world.endpoint}/{b}?acl"
    headers = sign_v4(world.users["olga"], "PUT", url, {"Content-Length": "8"}, b"<not xml")
    status, body = http_request(url, "PUT", b"<not xml", headers)
    assert status == 400 and error_code(body) == "MalformedACLError"
    assert roles() == {("olga", "owner")}


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


def test_roles_granted_before_a_repo_exists_stand_when_it_is_created(world):
    repo = f"r{uuid.uuid4().hex[:10]}"
    b = f"master.{repo}"
    world.cli.grant("rita", repo, "reader")
    world.cli.grant("will", repo, "writer")
    rita, will = world.client(world.users["rita"]), world.client(world.users["will"])
    # a reader may not create it (it would have made her its owner before)
    denied(lambda: rita.create_bucket(Bucket=b))
    # a user without a role may not either: the repo is spoken for
    denied(lambda: world.client(world.users["nick"]).create_bucket(Bucket=b))
    will.create_bucket(Bucket=b)
    will.put_object(Bucket=b, Key="k", Body=b"v")
    assert rita.get_object(Bucket=b, Key="k")["Body"].read() == b"v"
    denied(lambda: rita.put_object(Bucket=b, Key="k", Body=b"no"))
    denied(lambda: will.delete_bucket(Bucket=b))          # a writer, not made owner
    assert {(g["user"], g["role"]) for g in world.cli.grants(repo=repo)} == {
        ("rita", "reader"), ("will", "writer")}
    world.s3.delete_bucket(Bucket=b)


def test_unknown_repo_is_no_such_bucket_for_a_signed_caller(world):
    nick = world.client(world.users["nick"])
    repo = f"r{uuid.uuid4().hex[:10]}"
    # the usual "if not bucket_exists: make_bucket" of clients (minio-py, scripts)
    with pytest.raises(ClientError) as e:
        nick.head_bucket(Bucket=f"master.{repo}")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as e:
        nick.list_objects_v2(Bucket=f"master.{repo}")
    assert e.value.response["Error"]["Code"] == "NoSuchBucket"
    nick.create_bucket(Bucket=f"master.{repo}")
    nick.head_bucket(Bucket=f"master.{repo}")
    # somebody else's repo, and a missing branch of it, stay AccessDenied: nothing is told
    other = world.repo()
    for b in (f"master.{other}", f"nosuch.{other}"):
        with pytest.raises(ClientError) as e:
            nick.head_bucket(Bucket=b)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        denied(lambda: nick.list_objects_v2(Bucket=b))
    # a repo with roles granted before it exists is spoken for: AccessDenied too
    spoken = f"r{uuid.uuid4().hex[:10]}"
    world.cli.grant("rita", spoken, "reader")
    denied(lambda: nick.list_objects_v2(Bucket=f"master.{spoken}"))
    # anonymous requests learn nothing either
    status, body = http_request(f"{world.endpoint}/master.{repo}x")
    assert status == 403


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


def test_server_log_reveals_no_secrets(world):
    """Neither secrets nor tokens (which are also their own access key) reach the log, even
    for refused requests and presigned URLs (whose query carries the access key)."""
    repo = world.repo(objects={"a.txt": b"alpha"})
    tok = world.cli.key_create("logtok", token=True)
    world.cli.grant("logtok", repo, "reader")
    c = world.client(tok)
    c.get_object(Bucket=f"master.{repo}", Key="a.txt")
    denied(lambda: c.put_object(Bucket=f"master.{repo}", Key="x", Body=b"x"))
    url = c.generate_presigned_url("get_object", Params={"Bucket": f"master.{repo}", "Key": "a.txt"})
    assert http_request(url)[0] == 200
    v2 = world.client(tok, "s3").generate_presigned_url("get_object",
                                                        Params={"Bucket": f"master.{repo}", "Key": "a.txt"})
    http_request(v2)
    denied(lambda: world.client(tok.with_secret("wrong")).list_buckets(), code="SignatureDoesNotMatch")
    world.s3.list_buckets()
    log = world.server.log()
    for secret in (tok.secret_key, world.admin.secret_key):
        assert secret not in log, "a secret is in the server log"


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
    assert not server_problems(srv.log())
