"""A full disk: a clear S3 error (507 InsufficientStorage), nothing partial, and the
server keeps serving and takes writes again once space is freed.

The data folder is a small tmpfs, mounted by the test (needs root, as CI runs; skipped
with the reason otherwise)."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ServerProcess, make_client

MiB = 1 << 20


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the data folder needs root (CI runs as root)")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield str(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_answers_507_and_keeps_nothing(small_disk):
    srv = ServerProcess(os.path.join(small_disk, "data")).start()
    try:
        s3 = make_client(srv.endpoint)
        s3.create_bucket(Bucket="master.full")
        s3.put_object(Bucket="master.full", Key="small", Body=b"kept")
        big = os.urandom(40 * MiB)
        with pytest.raises(ClientError) as err:
            s3.put_object(Bucket="master.full", Key="big", Body=big)
        r = err.value.response
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 507, r
        assert r["Error"]["Code"] == "InsufficientStorage"
        # nothing partial is visible, what was there still reads
        with pytest.raises(ClientError) as err:
            s3.head_object(Bucket="master.full", Key="big")
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert s3.get_object(Bucket="master.full", Key="small")["Body"].read() == b"kept"
        # the failed upload's chunks are not left behind: a smaller write fits again
        body = os.urandom(4 * MiB)
        s3.put_object(Bucket="master.full", Key=f"after-{uuid.uuid4().hex[:6]}", Body=body)
    finally:
        srv.stop()
    log = srv.log()
    assert "Traceback" not in log and " 500 " not in log, log[-3000:]
