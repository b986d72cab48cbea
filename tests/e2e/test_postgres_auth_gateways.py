"""Auth shared by the gateways of one PostgreSQL database, end to end.

Three real ``s3gw serve`` processes on one database, each with its own empty data
folder (objects here are small enough to live in the metadata, so no chunk folder is
shared either), real boto3 clients, and ``s3gw auth`` run as an operator runs it --
once, against any one folder of the database or ``--meta URL`` alone:

* ``s3gw auth enable`` once: the admin key works on all three, anonymous requests stop;
* a key made for a user with a role works on all three; revoked, it is refused with
  403 InvalidAccessKeyId on all three within the watcher's bound (polled, not timed);
* a bucket a user creates through one gateway is that user's on another;
* two ``s3gw auth enable`` at once: exactly one wins;
* a folder that still has an enabled ``auth.sqlite`` of its own (the old way of
  sharing auth) is refused in one line until ``s3gw auth import`` copies it in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ServerProcess, free_port
from tests.e2e.auth_helpers import Creds, boto3_client, denied, server_problems

BOUND = 10.0     # seconds the polls below give a change (documented bound: 0.1 s)


def s3gw(*args: str, check: bool = True, cwd: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "s3gw", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"s3gw {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def creds_of(proc: subprocess.CompletedProcess) -> Creds:
    doc = json.loads(proc.stdout)
    return Creds(doc["user"], doc["access_key"], doc["secret_key"])


def until(check, what: str) -> float:
    """Seconds until ``check()`` is true (polled; fails after BOUND seconds)."""
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > BOUND:
            raise AssertionError(f"{what}: not within {BOUND} s")
        time.sleep(0.002)


def error_of(call) -> str | None:
    """The S3 error code of a boto3 call (None: it succeeded)."""
    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    return None


def on(url: str) -> None:
    """Auth on in the database (the first test turns it on; run alone, a test does)."""
    if s3gw("auth", "status", "--meta", url).stdout.strip() != "enabled":
        s3gw("auth", "enable", "--meta", url)


@pytest.fixture(scope="module")
def cluster(pg_server, tmp_path_factory):
    url = pg_server.database()
    gateways = [ServerProcess(str(tmp_path_factory.mktemp(f"gw{i}") / "data"),
                              extra_args=["--meta", url]).start() for i in range(3)]
    try:
        yield url, gateways
    finally:
        for g in gateways:
            g.stop()
        for g in gateways:
            problems = server_problems(g.log())
            assert not problems, "\n".join(problems)
        pg_server.drop(url)


def test_auth_enabled_once_applies_on_every_gateway(cluster, tmp_path):
    url, gateways = cluster
    anonymous = [boto3_client(g.endpoint, None) for g in gateways]
    anonymous[0].create_bucket(Bucket="master.before")          # auth is off at first
    for g in gateways:                                          # nothing of auth in a folder
        assert not os.path.exists(os.path.join(g.data_dir, "auth.sqlite"))

    admin = creds_of(s3gw("auth", "enable", "--json", "--data", gateways[1].data_dir))
    admins = [boto3_client(g.endpoint, admin) for g in gateways]
    for i, (anon, adm) in enumerate(zip(anonymous, admins)):
        until(lambda: error_of(anon.list_buckets) == "AccessDenied",
              f"gateway {i} refusing anonymous requests")
        names = {b["Name"] for b in adm.list_buckets()["Buckets"]}
        assert "master.before" in names
    assert s3gw("auth", "status", "--data", gateways[2].data_dir).stdout.strip() == "enabled"
    # `--meta URL` alone, from a folder that is no data folder: the same database
    assert s3gw("auth", "status", "--meta", url, cwd=str(tmp_path)).stdout.strip() == "enabled"


def test_a_key_works_on_every_gateway_until_revoked(cluster, tmp_path):
    url, gateways = cluster
    on(url)
    admin = creds_of(s3gw("auth", "key", "create", "--user", "ops", "--admin", "--json",
                          "--meta", url))
    boto3_client(gateways[0].endpoint, admin).create_bucket(Bucket="master.shared")
    alice = creds_of(s3gw("auth", "key", "create", "--user", "alice", "--json",
                          "--meta", url, cwd=str(tmp_path)))
    s3gw("auth", "grant", "--user", "alice", "--repo", "shared", "--role", "writer",
         "--data", gateways[2].data_dir)
    clients = [boto3_client(g.endpoint, alice) for g in gateways]
    for i, c in enumerate(clients):
        until(lambda: error_of(lambda: c.put_object(Bucket="master.shared", Key=f"by-{i}",
                                                    Body=f"alice via {i}".encode())) is None,
              f"alice's key and role on gateway {i}")
    for c in clients:                                    # every write readable everywhere
        for i in range(3):
            body = c.get_object(Bucket="master.shared", Key=f"by-{i}")["Body"].read()
            assert body == f"alice via {i}".encode()
        denied(lambda: c.delete_bucket(Bucket="master.shared"))   # a writer, not the owner

    s3gw("auth", "key", "revoke", alice.access_key, "--data", gateways[0].data_dir)
    lags = []
    for i, c in enumerate(clients):
        lags.append(until(lambda: error_of(lambda: c.get_object(
            Bucket="master.shared", Key="by-0")) == "InvalidAccessKeyId",
            f"gateway {i} refusing the revoked key"))
        denied(lambda: c.put_object(Bucket="master.shared", Key="after", Body=b"x"),
               code="InvalidAccessKeyId")
        denied(lambda: c.list_buckets(), code="InvalidAccessKeyId")
    print(f"revocation refused on the three gateways {[round(x * 1000, 1) for x in lags]} ms "
          f"after `s3gw auth key revoke` returned")
    keys = json.loads(s3gw("auth", "key", "list", "--user", "alice", "--json",
                           "--meta", url).stdout)
    assert [k["revoked"] is not None for k in keys] == [True]          # the row stays


def test_a_bucket_created_through_one_gateway_is_its_creators_on_another(cluster):
    url, gateways = cluster
    on(url)
    bob = creds_of(s3gw("auth", "key", "create", "--user", "bob", "--json", "--meta", url))
    carol = creds_of(s3gw("auth", "key", "create", "--user", "carol", "--json", "--meta", url))
    bob1, bob2 = (boto3_client(g.endpoint, bob) for g in gateways[:2])
    carol2 = boto3_client(gateways[1].endpoint, carol)
    until(lambda: error_of(lambda: bob1.create_bucket(Bucket="master.bobs")) is None,
          "bob's key on gateway 0")
    # on gateway 1, at once: bob owns the repo (its owner's rights), carol has no role
    bob2.put_object(Bucket="master.bobs", Key="mine", Body=b"bob's")
    bob2.put_bucket_acl(Bucket="master.bobs", GrantRead='id="carol"')   # owners grant roles
    assert carol2.get_object(Bucket="master.bobs", Key="mine")["Body"].read() == b"bob's"
    denied(lambda: carol2.put_object(Bucket="master.bobs", Key="x", Body=b"x"))
    grants = json.loads(s3gw("auth", "grants", "--repo", "bobs", "--json",
                             "--data", gateways[2].data_dir).stdout)
    assert {(g["user"], g["role"]) for g in grants} == {("bob", "owner"), ("carol", "reader")}
    bob2.delete_object(Bucket="master.bobs", Key="mine")
    bob2.delete_bucket(Bucket="master.bobs")       # only an owner may: the last branch goes
    until(lambda: error_of(lambda: carol2.head_bucket(Bucket="master.bobs")) in ("404",
                                                                                 "NoSuchBucket"),
          "the deleted bucket")
    assert json.loads(s3gw("auth", "grants", "--repo", "bobs", "--json",
                           "--meta", url).stdout) == []


def test_two_enables_at_once_have_exactly_one_winner(pg_server, tmp_path):
    url = pg_server.database()
    try:
        procs = [subprocess.Popen([sys.executable, "-m", "s3gw", "auth", "enable", "--json",
                                   "--meta", url], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=str(tmp_path))
                 for _ in range(2)]
        results = [(p.wait(60), *p.communicate()) for p in procs]
        assert sorted(rc for rc, _, _ in results) == [0, 1], results
        loser = next(r for r in results if r[0] == 1)
        assert loser[2].strip() == "s3gw auth: auth is already enabled for this database"
        winner = creds_of(subprocess.CompletedProcess([], 0, next(
            r for r in results if r[0] == 0)[1]))
        keys = json.loads(s3gw("auth", "key", "list", "--json", "--meta", url).stdout)
        assert [k["access_key"] for k in keys] == [winner.access_key]
    finally:
        pg_server.drop(url)


def test_a_folder_with_its_own_enabled_auth_is_refused_until_imported(pg_server, tmp_path):
    """Users who shared auth the old way (auth.sqlite copied into every gateway folder)."""
    url = pg_server.database()
    data = str(tmp_path / "data")
    os.makedirs(data)
    try:
        old_admin = creds_of(s3gw("auth", "enable", "--json", "--data", data))   # SQLite
        alice = creds_of(s3gw("auth", "key", "create", "--user", "alice", "--json",
                              "--data", data))
        s3gw("auth", "grant", "--user", "alice", "--repo", "photos", "--role", "reader",
             "--data", data)
        refused = s3gw("serve", "--data", data, "--meta", url, "--port", str(free_port()),
                       "--console", "off", check=False)
        assert refused.returncode == 1
        assert refused.stderr.strip().splitlines()[-1] == (
            f"s3gw: {data}/auth.sqlite has auth enabled, but this folder's users and keys "
            f"live in {url} now: run `s3gw auth import --data {data}` to copy them there "
            f"(or remove the file to drop them)")
        note = s3gw("auth", "status", "--data", data)       # the folder remembers the url
        assert note.stdout.strip() == "disabled" and "auth import" in note.stderr

        out = s3gw("auth", "import", "--data", data).stdout
        assert "3 key(s)" not in out and "2 user(s), 2 key(s), 1 role(s) added" in out, out
        assert not os.path.exists(os.path.join(data, "auth.sqlite"))
        assert any(n.startswith("auth.sqlite.imported-") for n in os.listdir(data))

        srv = ServerProcess(data, extra_args=["--meta", url]).start()
        try:
            admin = boto3_client(srv.endpoint, old_admin)
            admin.create_bucket(Bucket="master.photos")
            admin.put_object(Bucket="master.photos", Key="p", Body=b"pic")
            reader = boto3_client(srv.endpoint, alice)
            assert reader.get_object(Bucket="master.photos", Key="p")["Body"].read() == b"pic"
            denied(lambda: reader.put_object(Bucket="master.photos", Key="q", Body=b"x"))
            denied(lambda: boto3_client(srv.endpoint, None).list_buckets())
        finally:
            srv.stop()
        assert not server_problems(srv.log())
        again = s3gw("auth", "import", "--data", data, check=False)
        assert again.returncode == 1 and "nothing to import" in again.stderr
    finally:
        pg_server.drop(url)
