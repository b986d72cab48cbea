"""Owners grant roles over S3 (PutBucketAcl grant headers), as a user with only S3 access would."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.conftest import ServerProcess


def _cli(data, *args, env=None) -> dict:
    out = subprocess.run([sys.executable, "-m", "s3gw", "auth", *args, "--data", data, "--json"],
                         check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out)


@pytest.fixture
def gateway(tmp_path):
    data = str(tmp_path / "data")
    os.makedirs(data)          # only `s3gw serve` creates a data folder; auth needs one
    server = ServerProcess(data)
    env = server.meta_env()    # S3GW_TEST_META=postgres: the database it will serve
    _cli(data, "enable", env=env)
    users = {name: _cli(data, "key", "create", "--user", name, env=env)
             for name in ("alice", "bob")}
    server.start()

    def client(name):
        c = users[name]
        return boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                            aws_access_key_id=c["access_key"], aws_secret_access_key=c["secret_key"])
    yield client
    server.stop()


def _code(call) -> str:
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"]


def test_owner_grants_and_revokes_over_s3(gateway):
    alice, bob = gateway("alice"), gateway("bob")
    alice.create_bucket(Bucket="master.photos")          # a new repo: alice owns it
    alice.put_object(Bucket="master.photos", Key="a.jpg", Body=b"pixels")
    assert _code(lambda: bob.get_object(Bucket="master.photos", Key="a.jpg")) == "AccessDenied"

    alice.put_bucket_acl(Bucket="master.photos", GrantRead='id="bob"')
    assert bob.get_object(Bucket="master.photos", Key="a.jpg")["Body"].read() == b"pixels"
    assert _code(lambda: bob.put_object(Bucket="master.photos", Key="b", Body=b"x")) == "AccessDenied"
    # a reader cannot grant itself more
    assert _code(lambda: bob.put_bucket_acl(Bucket="master.photos",
                                            GrantFullControl='id="bob"')) == "AccessDenied"
    grants = {(g["Grantee"]["ID"], g["Permission"])
              for g in alice.get_bucket_acl(Bucket="master.photos")["Grants"]}
    assert {("alice", "FULL_CONTROL"), ("bob", "READ")} <= grants

    alice.put_bucket_acl(Bucket="master.photos", GrantWrite='id="bob"')
    bob.put_object(Bucket="master.photos", Key="b", Body=b"x")
    assert _code(lambda: bob.delete_bucket(Bucket="master.photos")) == "AccessDenied"

    # grant headers replace the repo's roles: bob is no longer listed, so he is out
    alice.put_bucket_acl(Bucket="master.photos", GrantRead='id="alice"')
    assert _code(lambda: bob.get_object(Bucket="master.photos", Key="a.jpg")) == "AccessDenied"
    assert [b["Name"] for b in bob.list_buckets()["Buckets"]] == []
    # the owner kept FULL_CONTROL and can still delete
    assert _code(lambda: alice.put_bucket_acl(Bucket="master.photos",
                                              GrantRead='id="nobody"')) == "InvalidArgument"
    alice.delete_bucket(Bucket="master.photos")


def test_canned_private_acl_keeps_the_owners_only(gateway):
    alice, bob = gateway("alice"), gateway("bob")
    alice.create_bucket(Bucket="master.docs")
    alice.put_bucket_acl(Bucket="master.docs", GrantRead='id="bob"')
    bob.list_objects_v2(Bucket="master.docs")
    alice.put_bucket_acl(Bucket="master.docs", ACL="private")   # revokes bob's role
    with pytest.raises(ClientError) as e:
        bob.list_objects_v2(Bucket="master.docs")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    alice.list_objects_v2(Bucket="master.docs")


def test_two_users_creating_one_new_repo_at_once_make_one_owner(gateway):
    """Alice and Bob create a branch of the same new repo at the same instant: one
    gets the repo (and owns it alone), the other is refused, never two owners."""
    import threading

    clients = {"alice": gateway("alice"), "bob": gateway("bob")}
    for c in clients.values():    # connections up before the race
        c.list_buckets()
    for k in range(12):
        repo = f"race{k}"
        start = threading.Barrier(2)
        outcome: dict[str, str] = {}

        def create(name: str) -> None:
            start.wait()
            try:
                clients[name].create_bucket(Bucket=f"{name}.{repo}")
                outcome[name] = "created"
            except ClientError as exc:
                outcome[name] = exc.response["Error"]["Code"]

        threads = [threading.Thread(target=create, args=(n,)) for n in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcome.values()) == ["AccessDenied", "created"], outcome
        winner = next(n for n, o in outcome.items() if o == "created")
        grants = {(g["Grantee"]["ID"], g["Permission"])
                  for g in clients[winner].get_bucket_acl(Bucket=f"{winner}.{repo}")["Grants"]}
        owners = {user for user, perm in grants if perm == "FULL_CONTROL" and user in clients}
        assert owners == {winner}, grants
