"""``s3gw serve --workers 3``: one supervisor, three worker processes, one port.

Real ``s3gw serve`` processes on one data folder (SQLite) and on one PostgreSQL
database (the ``pg_server`` fixture; skipped without it), real boto3 clients:
requests are answered by different workers (each worker's request ids carry its
own prefix, which it logs with its pid), 64 concurrent writers on one branch lose
no commit, an ``If-None-Match: *`` race has one winner, a worker killed with
SIGKILL is started again while the others serve on, SIGTERM stops every process,
a killed supervisor takes its workers with it, and a second ``s3gw serve`` on the
folder still refuses.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ServerProcess, make_client

WORKERS = 3


def _s3gw(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "s3gw", *args], capture_output=True,
                          text=True, timeout=60)


def _children(pid: int) -> set[int]:
    """Live child processes of ``pid`` (from /proc)."""
    kids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            kids.add(int(entry))
    return kids


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _workers(server: ServerProcess, timeout: float = 20.0) -> dict[str, int]:
    """request-id prefix -> pid of every live worker, once all WORKERS are serving."""
    deadline = time.monotonic() + timeout
    while True:
        pids = _children(server.proc.pid)
        found = {prefix: int(pid) for _i, pid, prefix in re.findall(
            r"worker (\d+) \(pid (\d+), request ids ([0-9A-F]{8})\.\.\.\) serving", server.log())}
        live = {prefix: pid for prefix, pid in found.items() if pid in pids}
        if len(live) == WORKERS and len(pids) == WORKERS:
            return live
        assert time.monotonic() < deadline, (pids, found, server.log()[-3000:])
        time.sleep(0.1)


def _start(data: str, meta: str | None) -> ServerProcess:
    args = ["--workers", str(WORKERS)] + (["--meta", meta] if meta else [])
    server = ServerProcess(data, extra_args=args).start()
    _workers(server)
    return server


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def group(request, tmp_path_factory):
    meta = None
    if request.param == "postgres":
        pg = request.getfixturevalue("pg_server")
        meta = pg.database()
    data = str(tmp_path_factory.mktemp(f"workers-{request.param}") / "data")
    server = _start(data, meta)
    try:
        yield server, data
    finally:
        sig = signal.SIGINT if meta else signal.SIGTERM    # Ctrl-C stops the group too
        rc = server.stop(sig)
        assert rc == 0, server.log()[-3000:]
        assert f"received {sig.name}, stopping {WORKERS} workers" in server.log()
        assert "Traceback" not in server.log(), server.log()[-3000:]
        if meta:
            pg.drop(meta)


def _request_ids(port: int, n: int) -> list[str]:
    """``n`` ListBuckets on ``n`` connections opened at once; their request ids."""
    ids: list[str] = []
    barrier = threading.Barrier(n)

    def one() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.connect()
            barrier.wait(30)
            conn.request("GET", "/")
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200
            ids.append(resp.getheader("x-amz-request-id"))
        finally:
            conn.close()

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(ids) == n
    return ids


def test_requests_are_answered_by_several_workers(group):
    server, _data = group
    workers = _workers(server)
    seen: set[str] = set()
    for _round in range(10):               # bounded: the kernel picks the accepting worker
        seen |= {rid[:8] for rid in _request_ids(server.port, 24)}
        if len(seen) == WORKERS:
            break
    assert seen <= set(workers), (seen, workers)      # every answer came from a worker
    assert len(seen) >= 2, seen


def test_64_concurrent_writers_on_one_branch_lose_no_commit(group):
    server, data = group
    clients = [make_client(server.endpoint) for _ in range(8)]
    clients[0].create_bucket(Bucket="master.many")
    errors: list[BaseException] = []
    versions: list[str] = []

    def writer(i: int) -> None:
        try:
            r = clients[i % 8].put_object(Bucket="master.many", Key=f"w/{i:02d}",
                                          Body=f"writer {i}".encode() * (i + 1))
            versions.append(r["VersionId"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert len(set(versions)) == 64
    keys = [o["Key"] for o in clients[1].list_objects_v2(Bucket="master.many")["Contents"]]
    assert keys == [f"w/{i:02d}" for i in range(64)]
    for i in range(64):
        got = clients[i % 8].get_object(Bucket="master.many", Key=f"w/{i:02d}")["Body"].read()
        assert got == f"writer {i}".encode() * (i + 1)
    log = _s3gw("log", "master.many", "-n", "1000", "--data", data)
    assert log.returncode == 0, log.stderr
    assert {line.split()[0] for line in log.stdout.splitlines()} == set(versions)
    assert len(log.stdout.splitlines()) == 64               # one chain of 64 commits


def test_a_conditional_put_race_has_exactly_one_winner(group):
    server, _data = group
    clients = [make_client(server.endpoint) for _ in range(6)]
    clients[0].create_bucket(Bucket="master.race")
    for round_ in range(3):
        key = f"once-{round_}"
        outcomes: list[object] = []

        def racer(i: int) -> None:
            try:
                clients[i % 6].put_object(Bucket="master.race", Key=key, IfNoneMatch="*",
                                          Body=f"racer {i}".encode())
                outcomes.append(("won", i))
            except ClientError as exc:
                outcomes.append(exc.response["ResponseMetadata"]["HTTPStatusCode"])

        threads = [threading.Thread(target=racer, args=(i,)) for i in range(18)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        winners = [o[1] for o in outcomes if isinstance(o, tuple)]
        assert len(winners) == 1, outcomes
        assert sorted(o for o in outcomes if not isinstance(o, tuple)) == [412] * 17, outcomes
        body = clients[1].get_object(Bucket="master.race", Key=key)["Body"].read()
        assert body == f"racer {winners[0]}".encode()


def test_a_killed_worker_is_started_again_and_the_others_serve_on(group):
    server, _data = group
    before = _workers(server)
    victim = sorted(before.values())[0]
    client = make_client(server.endpoint)
    client.create_bucket(Bucket="master.kill")
    os.kill(victim, signal.SIGKILL)
    for i in range(20):                    # served meanwhile by the others
        client.put_object(Bucket="master.kill", Key=f"k{i}", Body=b"v%d" % i)
    after = _workers(server)               # three again, the victim replaced
    assert victim not in after.values()
    assert len(set(after.values()) & set(before.values())) == WORKERS - 1
    assert re.search(rf"worker \d \(pid {victim}\) exited -9; starting it again", server.log())
    for i in range(20):
        assert client.get_object(Bucket="master.kill", Key=f"k{i}")["Body"].read() == b"v%d" % i


def test_sigterm_finishes_the_exchanges_in_progress_then_stops_every_process(tmp_path):
    data = str(tmp_path / "data")
    server = _start(data, None)
    supervisor = server.proc.pid
    workers = set(_workers(server).values())
    deadline = time.monotonic() + 10          # one worker runs the pipeline jobs
    while "this gateway runs the pipeline jobs" not in server.log():
        assert time.monotonic() < deadline, server.log()[-3000:]
        time.sleep(0.05)
    second = _s3gw("serve", "--data", data, "--port", "0", "--console", "off")
    assert second.returncode == 1                          # the folder is the group's
    assert (f"s3gw: another s3gw serve (pid {supervisor}) is serving {os.path.abspath(data)}"
            in second.stderr.splitlines()), second.stderr
    make_client(server.endpoint).create_bucket(Bucket="master.stop")
    body = os.urandom(3 << 20)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall((f"PUT /master.stop/inflight HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:1 << 20])
    time.sleep(0.5)                        # a worker is reading this PUT's body
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(1.0)                        # every worker has been told to stop
    sock.sendall(body[1 << 20:])
    answer = b""
    while b"\r\n\r\n" not in answer:
        got = sock.recv(65536)
        assert got, answer
        answer += got
    sock.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert server.stop(signal.SIGTERM) == 0
    assert not any(_alive(pid) for pid in workers)
    log = server.log()
    assert log.count("this gateway runs the pipeline jobs") == 1
    assert "received SIGTERM, stopping 3 workers" in log
    assert "Traceback" not in log and "still busy" not in log, log[-3000:]
    again = ServerProcess(data).start()    # the PUT answered during the stop is there
    try:
        got = make_client(again.endpoint).get_object(Bucket="master.stop", Key="inflight")
        assert got["Body"].read() == body
    finally:
        again.stop()


def test_a_killed_supervisor_takes_its_workers_with_it(tmp_path):
    data = str(tmp_path / "data")
    server = _start(data, None)
    workers = set(_workers(server).values())
    server.kill()                          # SIGKILL: no chance to stop them itself
    # at once: the new server waits the moment the dying workers take to let go of the
    # folder's lock and the port (app.wait_for_orphans)
    again = ServerProcess(data)
    again.port, again.endpoint = server.port, server.endpoint
    again.start()                          # (may have reached the old socket: wait for it)
    try:
        deadline = time.monotonic() + 15
        while "s3gw listening on" not in again.log():
            assert again.proc.poll() is None and time.monotonic() < deadline, again.log()
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in workers)
        client = make_client(again.endpoint)
        client.create_bucket(Bucket="master.after")
        client.put_object(Bucket="master.after", Key="k", Body=b"v")
    finally:
        assert again.stop() == 0
