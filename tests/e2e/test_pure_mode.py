"""The pure-Python twin serves the same data: a smoke run with S3GW_PUREPYTHON=1."""

import hashlib
import os
import subprocess
import sys

from s3gw.store.chunkstore import LocalChunkStore
from tests.conftest import ServerProcess, make_client


def test_version_reports_implementation():
    out = subprocess.run([sys.executable, "-m", "s3gw", "version"], capture_output=True, text=True,
                         check=True).stdout
    assert "chunker: cython" in out or "chunker: python" in out
    pure = subprocess.run([sys.executable, "-m", "s3gw", "version"], capture_output=True, text=True,
                          check=True, env=dict(os.environ, S3GW_PUREPYTHON="1")).stdout
    assert "chunker: python" in pure and "hashing: python" in pure
    assert "sqlite batches: python" in pure


def test_pure_mode_server_roundtrip_and_same_chunks(tmp_path):
    body = os.urandom(3 << 20)
    manifests = {}
    for mode in ("pure", "native"):
        env = {"S3GW_PUREPYTHON": "1"} if mode == "pure" else {}
        data = str(tmp_path / mode)
        srv = ServerProcess(data, env=env).start()
        try:
            s3 = make_client(srv.endpoint)
            s3.create_bucket(Bucket="master.twin")
            r = s3.put_object(Bucket="master.twin", Key="k", Body=body)
            assert r["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
            assert s3.get_object(Bucket="master.twin", Key="k")["Body"].read() == body
            assert s3.get_object(Bucket="master.twin", Key="k", Range="bytes=100-199")["Body"].read() \
                == body[100:200]
        finally:
            srv.stop()
        manifests[mode] = sorted(LocalChunkStore(data, owner=False).iter_ids())
    # the twin cuts and names chunks exactly like the native code (the storage format)
    assert manifests["pure"] == manifests["native"]
