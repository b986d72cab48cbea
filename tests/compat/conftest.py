"""Fixtures of the real-client compatibility suite (see tests/compat/test_clients.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.compat.clients import CLIENTS
from tests.compat.recorder import merge_results, tested_versions, write_last_run
from tests.conftest import ServerProcess


_SESSION_ROWS: list[dict] = []


@pytest.fixture(scope="session")
def compat_rows():
    """Result rows of this session; merged into tests/compat/results/results.json at the end,
    and written alone to tests/compat/results/last-run.json (what this run tested)."""
    rows = _SESSION_ROWS
    yield rows
    merge_results(rows)
    write_last_run(rows)


def pytest_terminal_summary(terminalreporter):
    """Name the client versions this run tested (docs/compatibility.md may name others:
    ``python -m tests.compat.make_matrix --versions`` compares them)."""
    if _SESSION_ROWS:
        terminalreporter.write_sep("-", "compat: client versions tested in this run")
        for line in tested_versions(_SESSION_ROWS):
            terminalreporter.write_line(line)


def _slug(name: str) -> str:
    return name.replace(" ", "").replace("-", "")


@pytest.fixture(params=list(CLIENTS), ids=[_slug(n) for n in CLIENTS])
def client(request, server, tmp_path):
    c = CLIENTS[request.param](server, tmp_path / "client")
    c.slug = _slug(c.name)
    yield c
    c.close()


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """A gateway with auth on (one per module); ``.credentials`` is the admin's key pair."""
    data = str(tmp_path_factory.mktemp("s3gw-auth-compat") / "data")
    os.makedirs(data)          # only `s3gw serve` creates a data folder; auth needs one
    out = subprocess.run([sys.executable, "-m", "s3gw", "auth", "enable", "--json", "--data", data],
                         check=True, capture_output=True, text=True).stdout
    creds = json.loads(out)
    srv = ServerProcess(data).start()
    srv.credentials = (creds["access_key"], creds["secret_key"])
    yield srv
    srv.stop()
    log = srv.log()
    internal = [line for line in log.splitlines()
                if re.search(r"s3gw\.access \S+ \S+ 5\d\d ", line) or "Traceback" in line]
    assert not internal, "the server answered 5xx:\n" + "\n".join(internal)
    refused = [line for line in log.splitlines() if re.search(r"s3gw\.access \S+ \S+ 403 ", line)]
    assert not refused, "a correctly signed request was refused:\n" + "\n".join(refused[:20])


@pytest.fixture(scope="module")
def auth_s3(auth_server):
    import boto3
    from botocore.config import Config
    ak, sk = auth_server.credentials
    return boto3.client("s3", endpoint_url=auth_server.endpoint, region_name="us-east-1",
                        aws_access_key_id=ak, aws_secret_access_key=sk,
                        config=Config(retries={"max_attempts": 1}))
