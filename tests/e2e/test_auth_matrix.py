"""Authentication end to end (issue 6): the denial matrix.

Every operation x every way of getting it wrong (unsigned, wrong secret with SigV4 and
SigV2, a revoked admin key, an expired presigned URL, a reader attempting writes) must
answer 403 with the right S3 error code (HEAD: status only) and leave the repo exactly as
it was: bucket list, every object's content and the multipart uploads in progress.
Each mode is set up so that only its one defect stands in the way (the wrong secret is
the admin's key, the revoked key belonged to an admin, the expired URL was signed by the
admin).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import pytest

from tests.e2e.auth_helpers import (  # noqa: F401 (world: a fixture)
    denied,
    error_code,
    frozen_botocore_clock,
    http_request,
    utcnow,
    world,
)


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
