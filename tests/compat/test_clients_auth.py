"""The six real clients' scenario again, against a gateway with auth ON.

Same user story as tests/compat/test_clients.py (mb, puts with awkward keys, multipart,
recursive and paginated ls, get back byte-identical, copy, move, sync twice, rm, rb), but
every request is now signed with a real key pair the gateway checks: the admin's, made
by ``s3gw auth enable``. It shows that each client's signing (SigV4 with its own
canonicalisation of paths, queries and payload hashes; UNSIGNED-PAYLOAD from rclone;
multipart; presign-free copy headers) is accepted by the verifier, on every operation.
Role enforcement is tested in tests/e2e/test_auth*.py. These rows are not merged into
docs/compatibility.md (that matrix is for the default, auth-off gateway).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.compat.clients import CLIENTS
from tests.compat.test_clients import cleanup, fill_many_keys_bucket, run_scenario
from tests.conftest import ServerProcess

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    data = str(tmp_path_factory.mktemp("s3gw-auth-compat") / "data")
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


@pytest.fixture(scope="module")
def auth_many_keys_bucket(auth_s3):
    bucket, keys = fill_many_keys_bucket(auth_s3)
    yield bucket, keys
    cleanup(auth_s3, bucket)


@pytest.fixture(params=list(CLIENTS), ids=[n.replace(" ", "").replace("-", "") for n in CLIENTS])
def auth_client(request, auth_server, tmp_path):
    c = CLIENTS[request.param](auth_server, tmp_path / "client")
    c.slug = c.name.replace(" ", "").replace("-", "")
    yield c
    c.close()


def test_client_scenario_with_auth(auth_client, auth_server, auth_s3, tmp_path,
                                   auth_many_keys_bucket, request):
    run_scenario(auth_client, auth_server, auth_s3, tmp_path, [], auth_many_keys_bucket,
                 request.node.nodeid)
