"""What a chunk PUT says about its body on the wire (``payload`` in store/s3url.py):
``UNSIGNED-PAYLOAD`` by default on loopback (and over HTTPS), the body's SHA-256 when
the URL asks for ``payload=signed``.  The store is a real SeaweedFS; a byte relay on
127.0.0.1 in front of it records the request heads the chunk store sends."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
import uuid

import pytest

from s3gw.store import hashing
from s3gw.store.manifest import ChunkRef
from s3gw.store.s3chunks import S3ChunkStore

from tests.seaweed import ACCESS_KEY, SECRET_KEY


class Relay:
    """Accepts on a loopback port, pipes every connection to ``target`` unchanged and
    keeps what the clients sent."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.sent = bytearray()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=30)
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while data := src.recv(1 << 16):
                if record:
                    with self._lock:
                        self.sent += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            src.close()                 # each socket is the source of one pipe

    def chunk_put_heads(self) -> list[bytes]:
        with self._lock:
            sent = bytes(self.sent)
        return [m.group(0) for m in re.finditer(rb"PUT [^ ]*/chunks/[^ ]* HTTP/1\.1\r\n.*?\r\n\r\n",
                                                 sent, re.S)]

    def close(self) -> None:
        self._closed = True
        self._listener.close()


@pytest.fixture
def relay(seaweedfs):
    r = Relay(("127.0.0.1", seaweedfs.s3_port))
    yield r
    r.close()


def _sha_header(head: bytes) -> bytes:
    m = re.search(rb"(?im)^x-amz-content-sha256: *([^\r]*)\r$", head)
    assert m, head
    return m.group(1)


@pytest.mark.parametrize("option, expect", [
    ({}, "unsigned"),                          # loopback endpoint: the default
    ({"payload": "signed"}, "signed"),
])
def test_chunk_puts_sign_their_payload_as_the_url_says(seaweedfs, relay, monkeypatch, option, expect):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    bucket = seaweedfs.make_bucket("payload")
    query = "&".join([f"endpoint=http://127.0.0.1:{relay.port}",
                      *(f"{k}={v}" for k, v in option.items())])
    store = S3ChunkStore(f"s3://{bucket}/p{uuid.uuid4().hex[:10]}/?{query}")
    try:
        bodies = [os.urandom(5000), os.urandom(300_000)]     # a small and a large chunk
        refs = []
        batch = store.batch()
        for data in bodies:
            ref = ChunkRef(hashing.chunk_id(data), hashing.chunk_checksum(data), len(data))
            batch.put(ref.id, data)
            refs.append(ref)
        batch.sync()
        for ref, data in zip(refs, bodies):
            assert store.read(ref) == data
    finally:
        store.close()
    heads = relay.chunk_put_heads()
    assert len(heads) == 2, heads
    for head in heads:
        value = _sha_header(head)
        if expect == "unsigned":
            assert value == b"UNSIGNED-PAYLOAD"
        else:
            assert re.fullmatch(rb"[0-9a-f]{64}", value)
    if expect == "signed":
        assert {_sha_header(h) for h in heads} == {hashlib.sha256(d).hexdigest().encode() for d in bodies}
