"""The six real clients' scenario again, against a gateway with auth ON.

Same user story as tests/compat/test_clients.py (mb, puts with awkward keys, multipart,
recursive and paginated ls, get back byte-identical, copy, move, sync twice, rm, rb), but
every request is now signed with a real key pair the gateway checks: the admin's, made
by ``s3gw auth enable``. It shows that each client's signing (SigV4 with its own
canonicalisation of paths, queries and payload hashes; UNSIGNED-PAYLOAD from rclone;
multipart; presign-free copy headers) is accepted by the verifier, on every operation.
Role enforcement is tested in tests/e2e/test_auth*.py. These rows are not merged into
docs/compatibility.md (that matrix is for the default, auth-off gateway). The gateway and
its witness client (``auth_server``, ``auth_s3``) are fixtures in tests/compat/conftest.py.
"""

from __future__ import annotations

import pytest

from tests.compat.clients import CLIENTS
from tests.compat.test_clients import cleanup, fill_many_keys_bucket, run_scenario

pytestmark = pytest.mark.compat


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
