"""``Body.receive_into``: bodies read into the caller's buffer.

On a real socket a Content-Length body bypasses h11 (readv straight into the
buffer, h11's remaining count lowered); these tests check that the bytes, the
keep-alive cycle (a pipelined request right behind the body), 100-continue,
timeouts and disconnects all behave as with ``receive_some``, and that the
fallback (in-memory streams, chunked bodies) gives the same bytes.
"""

from __future__ import annotations

import hashlib
import socket

import trio

from http_testlib import RawClient, request, start
from s3gw.http import BodyTimeout, ClientDisconnected, Response, ServerConfig, serve

MiB = 1 << 20


async def _read_into_all(body, size: int, first_some: int = 0) -> bytes:
    """Read the whole body: optionally ``receive_some(first_some)`` first, then
    ``receive_into`` a ``size``-byte buffer until 0."""
    out = bytearray()
    if first_some:
        out += await body.receive_some(first_some)
    buf = bytearray(size)
    view = memoryview(buf)
    while True:
        n = await body.receive_into(view)
        if not n:
            return bytes(out)
        assert 0 < n <= size
        out += view[:n]


def _handler(size: int, first_some: int = 0, outcomes: list | None = None):
    async def handler(req):
        try:
            data = await _read_into_all(req.body, size, first_some)
        except (BodyTimeout, ClientDisconnected) as exc:
            if outcomes is not None:
                outcomes.append(type(exc).__name__)
            raise
        assert req.body.consumed == len(data)
        return Response(200, [("x-md5", hashlib.md5(data).hexdigest()),
                              ("x-len", str(len(data)))], b"")
    return handler


async def _serve(nursery, handler, config=ServerConfig()):
    listeners = await nursery.start(
        lambda task_status: serve(handler, "127.0.0.1", 0, config=config, task_status=task_status))
    return listeners[0].socket.getsockname()[1]


def _payload(n: int) -> bytes:
    return bytes((i * 7 + (i >> 9)) & 0xFF for i in range(n))


async def test_socket_body_into_odd_buffer_then_pipelined_request(monkeypatch):
    from s3gw.http import body as body_mod

    direct = []
    original = body_mod.Feeder.read_into

    async def counting(self, view, timeout=float("inf")):
        n = await original(self, view, timeout)
        direct.append(n)
        return n

    monkeypatch.setattr(body_mod.Feeder, "read_into", counting)
    payload = _payload(3 * MiB + 12345)
    async with trio.open_nursery() as nursery:
        port = await _serve(nursery, _handler(100_003, first_some=777))

        def client() -> list[bytes]:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                # Body and the next request in one stream: nothing past the body may be eaten.
                sock.sendall(request("PUT", "/a", [("Content-Length", str(len(payload)))])
                             + payload + request("PUT", "/b", body=b"second body")
                             + request("GET", "/c", [("Connection", "close")]))
                chunks = []
                while data := sock.recv(65536):
                    chunks.append(data)
            return b"".join(chunks).split(b"HTTP/1.1 ")[1:]

        answers = await trio.to_thread.run_sync(client)
        assert len(answers) == 3
        assert answers[0].startswith(b"200 ")
        assert f"x-md5: {hashlib.md5(payload).hexdigest()}".encode() in answers[0]
        assert b"x-md5: " + hashlib.md5(b"second body").hexdigest().encode() in answers[1]
        assert b"x-len: 0" in answers[2]
        assert direct and sum(direct) < len(payload)  # the bypass was taken (after h11's bytes)
        nursery.cancel_scope.cancel()


async def test_socket_body_into_with_100_continue():
    payload = _payload(2 * MiB + 1)
    async with trio.open_nursery() as nursery:
        port = await _serve(nursery, _handler(MiB))
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = RawClient(stream)
        await client.send(request("PUT", "/k", [("Content-Length", str(len(payload))),
                                               ("Expect", "100-continue")]))
        status, _, _ = await client.read_head()
        assert status == 100
        await client.send(payload)
        status, headers, _ = await client.response()
        assert status == 200 and headers["x-md5"] == hashlib.md5(payload).hexdigest()
        await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_socket_chunked_body_into_falls_back_to_h11():
    parts = [b"a" * 70_000, b"bc" * 5, b"z" * 300_000]
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    async with trio.open_nursery() as nursery:
        port = await _serve(nursery, _handler(65_536))
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = RawClient(stream)
        await client.send(request("PUT", "/k", [("Transfer-Encoding", "chunked")]) + body)
        status, headers, _ = await client.response()
        assert status == 200 and headers["x-md5"] == hashlib.md5(b"".join(parts)).hexdigest()
        await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_socket_body_into_timeout_and_disconnect():
    outcomes: list[str] = []
    config = ServerConfig(body_timeout=0.3, close_linger=0.1)
    async with trio.open_nursery() as nursery:
        port = await _serve(nursery, _handler(4096, outcomes=outcomes), config)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = RawClient(stream)
        await client.send(request("PUT", "/", [("Content-Length", "100000")]) + b"x" * 10)
        status, _, _ = await client.response()
        assert status == 408
        await stream.aclose()
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = RawClient(stream)
        await client.send(request("PUT", "/", [("Content-Length", "100000")]) + b"x" * 5000)
        await stream.send_eof()
        assert await client.at_eof() and client.raw == b""
        await stream.aclose()
        assert outcomes == ["BodyTimeout", "ClientDisconnected"]
        nursery.cancel_scope.cancel()


async def test_memory_stream_body_into(nursery):
    """Not a socket: the bytes go through h11 and are copied into the buffer."""
    payload = _payload(300_000)
    client = start(nursery, _handler(50_000, first_some=10))
    await client.send(request("PUT", "/k", body=payload))
    status, headers, _ = await client.response()
    assert status == 200 and headers["x-md5"] == hashlib.md5(payload).hexdigest()
    await client.send(request("PUT", "/e", [("Content-Length", "0")]))
    status, headers, _ = await client.response()
    assert status == 200 and headers["x-len"] == "0"
