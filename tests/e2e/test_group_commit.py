"""Group commit, end to end: concurrent small PUTs share transactions and fsyncs, yet each
is its own commit on one chain, and every one answered 200 survives a SIGKILL sent right
after the last answer.

Sixteen keep-alive connections PUT small objects (inline in their commits and packed:
1 byte to 20 KiB), some with ``Content-MD5``, half of them sent whole with their head and
half with ``Expect: 100-continue`` (the body after the 100); the server is killed the
moment the last 200 arrives.  After a restart every acknowledged version
reads back, and the branch's log is exactly those commits, one chain (each commit's
parent is the one before it), each PUT's version id its own commit.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import signal
import socket
import threading

from tests.conftest import ServerProcess, make_client

CLIENTS = 16
PUTS = 20


def _put(sock: socket.socket, buf: bytearray, key: str, body: bytes, expect: bool,
         md5: bool) -> tuple[int, dict]:
    head = [f"PUT /master.gc/{key} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    if md5:
        head.append("Content-MD5: " + base64.b64encode(hashlib.md5(body).digest()).decode())
    if expect:
        head.append("Expect: 100-continue")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        status, _ = _read(sock, buf)
        assert status == 100
        sock.sendall(body)
    else:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    return _read(sock, buf)


def _read(sock: socket.socket, buf: bytearray) -> tuple[int, dict]:
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        buf += data
    end = buf.index(b"\r\n\r\n")
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    del buf[:end + 4]
    headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(buf) < length:
        buf += sock.recv(65536)
    del buf[:length]
    return int(lines[0].split()[1]), headers


def _metadata(srv: ServerProcess):
    if srv.meta_url is not None:
        from s3gw.pfs.postgres import PostgresMetadata
        return PostgresMetadata(srv.meta_url)
    from s3gw.pfs.metadata import SqliteMetadata
    return SqliteMetadata(os.path.join(srv.data_dir, "meta.sqlite"))


def test_concurrent_puts_each_commit_once_on_one_chain_and_survive_sigkill(tmp_path):
    data = str(tmp_path / "data")
    srv = ServerProcess(data).start()
    make_client(srv.endpoint).create_bucket(Bucket="master.gc")
    acked: dict[str, tuple[str, bytes]] = {}          # key -> (version id, body)
    errors: list[str] = []
    start = threading.Barrier(CLIENTS)
    lock = threading.Lock()

    def client(c: int) -> None:
        rnd = random.Random(c)
        try:
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buf = bytearray()
            start.wait()
            for i in range(PUTS):
                key = f"c{c}/k{i}"
                body = rnd.randbytes(rnd.choice([1, 100, 4096, 8000, 9000, 20_000]))
                status, headers = _put(sock, buf, key, body, expect=c % 2 == 1, md5=i % 3 == 0)
                if status != 200:
                    errors.append(f"{key}: {status}")
                    return
                with lock:
                    acked[key] = (headers["x-amz-version-id"], body)
            sock.close()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(f"client {c}: {exc!r}")

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    srv.proc.send_signal(signal.SIGKILL)              # right after the last 200
    srv.proc.wait()
    srv._log.close()
    srv.proc = None
    assert not errors, errors[:5]
    assert len(acked) == CLIENTS * PUTS

    srv2 = ServerProcess(data)
    srv2.meta_url = srv.meta_url
    srv2.start()
    try:
        s3 = make_client(srv2.endpoint)
        for key, (version, body) in acked.items():
            got = s3.get_object(Bucket="master.gc", Key=key, VersionId=version)
            assert got["Body"].read() == body, key
            assert s3.get_object(Bucket="master.gc", Key=key)["VersionId"] == version
    finally:
        srv2.stop()
    meta = _metadata(srv2)
    try:
        log = meta.log("gc", "master", limit=10_000)
    finally:
        meta.close()
    versions = [v for v, _ in acked.values()]
    assert len(set(versions)) == len(versions)                  # each PUT its own commit
    assert {c.id for c in log} == set(versions)                 # and nothing else
    assert [c.depth for c in log] == list(range(len(log) - 1, -1, -1))
    assert all(newer.parent == older.id for newer, older in zip(log, log[1:]))   # one chain
    assert log[-1].parent is None
