"""Several gateways over one PostgreSQL database and one shared chunk folder.

Three real ``s3gw serve`` processes (``--meta`` on the test PostgreSQL, one ``--data``
folder), real boto3 clients spread across them: concurrent writers on one branch
lose no commit, an ``If-None-Match: *`` race has exactly one winner, a gateway
killed mid-PUT leaves nothing partial while the others serve on, and ``s3gw fsck``
finds the shared folder clean.  Also: a gateway refuses a database it cannot use.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ServerProcess, make_client


def _s3gw(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "s3gw", *args], capture_output=True,
                          text=True, timeout=60)


@pytest.fixture(scope="module")
def cluster(pg_server, tmp_path_factory):
    url = pg_server.database()
    data = str(tmp_path_factory.mktemp("shared") / "data")
    gateways = [ServerProcess(data, extra_args=["--meta", url]).start() for _ in range(3)]
    try:
        yield url, data, gateways
    finally:
        for g in gateways:
            g.stop()
        for g in gateways:
            assert "Traceback" not in g.log(), g.log()[-3000:]
        pg_server.drop(url)


def _clients(gateways):
    return [make_client(g.endpoint) for g in gateways if g.proc is not None]


def test_a_gateway_refuses_an_unmigrated_or_newer_database(pg_server, tmp_path):
    url = pg_server.database(migrate=False)
    proc = _s3gw("serve", "--data", str(tmp_path / "d"), "--meta", url, "--port", "0")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"s3gw: {url} has no s3gw schema: run `s3gw migrate --meta {url}`")
    assert _s3gw("migrate", "--meta", url).stdout.startswith("applied schema migration(s) 1")
    assert _s3gw("migrate", "--meta", url).stdout.startswith("already at schema version")
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO s3gw_schema VALUES(99, 'from the future', 0)")
    proc = _s3gw("stats", "--data", str(tmp_path), "--meta", url)
    assert proc.returncode == 1
    from s3gw.pfs.postgres import SCHEMA_VERSION
    assert proc.stderr.strip() == (f"s3gw: {url} is at schema version 99, newer than this "
                                   f"s3gw knows ({SCHEMA_VERSION}): upgrade s3gw")
    pg_server.drop(url)


def test_64_concurrent_writers_on_one_branch_across_gateways_lose_no_commit(cluster):
    url, data, gateways = cluster
    clients = _clients(gateways)
    clients[0].create_bucket(Bucket="master.many")
    errors: list[BaseException] = []
    versions: list[str] = []

    def writer(i: int) -> None:
        try:
            r = clients[i % 3].put_object(Bucket="master.many", Key=f"w/{i:02d}",
                                          Body=f"writer {i}".encode() * (i + 1))
            versions.append(r["VersionId"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(set(versions)) == 64
    for c in clients:                      # every gateway sees every file
        keys = [o["Key"] for o in c.list_objects_v2(Bucket="master.many")["Contents"]]
        assert keys == [f"w/{i:02d}" for i in range(64)]
    log = _s3gw("log", "master.many", "-n", "1000", "--data", data)
    assert log.returncode == 0, log.stderr
    assert len(log.stdout.splitlines()) == 64             # one chain of 64 commits
    assert {line.split()[0] for line in log.stdout.splitlines()} == set(versions)
    got = clients[2].get_object(Bucket="master.many", Key="w/63")["Body"].read()
    assert got == b"writer 63" * 64


def test_a_conditional_put_race_across_gateways_has_exactly_one_winner(cluster):
    _url, _data, gateways = cluster
    clients = _clients(gateways)
    clients[1].create_bucket(Bucket="master.race")
    for round_ in range(3):
        key = f"once-{round_}"
        outcomes: list[object] = []

        def racer(i: int) -> None:
            try:
                clients[i % 3].put_object(Bucket="master.race", Key=key, IfNoneMatch="*",
                                          Body=f"racer {i}".encode())
                outcomes.append(i)
            except ClientError as exc:
                outcomes.append(exc.response["ResponseMetadata"]["HTTPStatusCode"])

        threads = [threading.Thread(target=racer, args=(i,)) for i in range(18)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        winners = [o for o in outcomes if isinstance(o, int) and o < 100]
        assert len(winners) == 1, outcomes
        assert sorted(o for o in outcomes if o not in winners) == [412] * 17, outcomes
        body = clients[2].get_object(Bucket="master.race", Key=key)["Body"].read()
        assert body == f"racer {winners[0]}".encode()


def test_a_gateway_killed_mid_put_leaves_nothing_partial(cluster):
    _url, data, gateways = cluster
    clients = _clients(gateways)
    clients[0].create_bucket(Bucket="master.crash")
    clients[0].put_object(Bucket="master.crash", Key="before", Body=b"kept")
    victim = gateways[2]
    size = 64 << 20
    sock = socket.create_connection(("127.0.0.1", victim.port), timeout=30)
    sock.sendall((f"PUT /master.crash/big HTTP/1.1\r\nHost: 127.0.0.1:{victim.port}\r\n"
                  f"Content-Length: {size}\r\n\r\n").encode())
    chunk = b"z" * (1 << 20)
    for _ in range(24):                    # 24 MiB of 64 MiB sent
        sock.sendall(chunk)
    time.sleep(0.5)
    victim.kill()                          # SIGKILL
    sock.close()
    for c in clients[:2]:                  # the others serve on; nothing of "big" exists
        with pytest.raises(ClientError) as e:
            c.head_object(Bucket="master.crash", Key="big")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert c.get_object(Bucket="master.crash", Key="before")["Body"].read() == b"kept"
        c.put_object(Bucket="master.crash", Key="after", Body=b"x" * 300_000)
        assert c.get_object(Bucket="master.crash", Key="after")["Body"].read() == b"x" * 300_000
    versions = clients[1].list_object_versions(Bucket="master.crash")
    assert sorted(v["Key"] for v in versions.get("Versions", [])) == ["after", "after", "before"]
    fsck = _s3gw("fsck", "--data", data)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert fsck.stdout.strip().endswith(": 0 corrupt")
    victim.start()                         # it comes back and joins again
    assert make_client(victim.endpoint).get_object(
        Bucket="master.crash", Key="after")["Body"].read() == b"x" * 300_000


def test_a_sqlite_server_and_postgres_gateways_exclude_each_other(pg_server, tmp_path):
    data = str(tmp_path / "data")
    alone = ServerProcess(data).start()                   # SQLite: the folder is its own
    try:
        url = pg_server.database()
        proc = _s3gw("serve", "--data", data, "--meta", url, "--port", "0")
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines()[-1].startswith(
            "s3gw: an s3gw serve with SQLite metadata (pid ")
    finally:
        alone.stop()
    pg_server.drop(url)
