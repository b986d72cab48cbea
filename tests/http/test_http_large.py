"""Big bodies stream through with bounded memory; one test on a real socket."""

from __future__ import annotations

import resource

import trio
import trio.testing

from http_testlib import RawClient, read_all, request, start
from s3gw.http import Response, ServerConfig, serve

MiB = 1024 * 1024


def _max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def test_256_mib_put_streams_with_bounded_memory(nursery):
    size = 256 * MiB
    block = bytes(range(256)) * (MiB // 256)  # reused: the client holds 1 MiB
    seen = {"total": 0, "max_piece": 0, "pieces": 0, "checksum": 0}

    async def handler(req):
        while piece := await req.body.receive_some():
            seen["total"] += len(piece)
            seen["pieces"] += 1
            seen["max_piece"] = max(seen["max_piece"], len(piece))
            seen["checksum"] = (seen["checksum"] + piece[0] + piece[-1]) % 65521
        return Response(200, [("x-total", str(seen["total"]))])

    rss_before = _max_rss()
    # lockstep: the client's send_all returns only when the server has taken
    # the bytes, so anything buffered would show up in the server, not here.
    client = start(nursery, handler, lockstep=True)
    await client.send(request("PUT", "/big", [("Content-Length", str(size))]))
    for _ in range(size // MiB):
        await client.send(block)
    status, h, _ = await client.response()
    assert status == 200 and h["x-total"] == str(size)
    assert seen["total"] == size
    assert seen["max_piece"] <= 256 * 1024 + 64 * 1024
    assert seen["pieces"] >= size // (320 * 1024)
    assert _max_rss() - rss_before < 64 * MiB


async def test_256_mib_get_streams(nursery):
    size = 256 * MiB
    block = b"g" * MiB

    async def handler(req):
        async def gen():
            for _ in range(size // MiB):
                yield block

        return Response(200, [], gen(), content_length=size)

    rss_before = _max_rss()
    client = start(nursery, handler, lockstep=True)
    await client.send(request("GET", "/big"))
    status, h, _ = await client.read_head()
    assert h["content-length"] == str(size)
    got = len(client.buf)
    client.buf.clear()
    while got < size:
        data = await client.stream.receive_some(MiB)
        assert data
        got += len(data)
    assert got == size
    assert _max_rss() - rss_before < 64 * MiB


async def test_loopback_socket():
    """Real TCP on 127.0.0.1, port 0: keep-alive, a 16 MiB PUT and GET, 100-continue."""
    stored: dict[str, bytes] = {}

    async def handler(req):
        if req.method == "PUT":
            stored[req.path] = await read_all(req.body)
            return Response(200, [("etag", '"x"')])
        data = stored.get(req.path)
        if data is None:
            return Response(404, [], b"missing")

        async def gen():
            view = memoryview(data)
            for i in range(0, len(view), MiB):
                yield view[i : i + MiB]

        return Response(200, [], gen(), content_length=len(data))

    payload = bytes(range(251)) * (16 * MiB // 251)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(serve, handler, "127.0.0.1", 0)
        port = listeners[0].socket.getsockname()[1]
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = RawClient(stream)
        await client.send(
            request("PUT", "/b/k", [("Content-Length", str(len(payload))), ("Expect", "100-continue")])
        )
        status, _, _ = await client.read_head()
        assert status == 100
        await client.send(payload)
        assert (await client.response())[0] == 200
        await client.send(request("GET", "/b/k"))
        status, h, body = await client.response()
        assert status == 200 and body == payload
        await client.send(request("GET", "/nope", [("Connection", "close")]))
        assert (await client.response())[2] == b"missing"
        assert await client.at_eof()
        await stream.aclose()

        # A plain blocking socket client in a thread.
        def blocking_client() -> bytes:
            import socket

            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(request("GET", "/b/k", [("Connection", "close")]))
                chunks = []
                while data := sock.recv(MiB):
                    chunks.append(data)
            return b"".join(chunks)

        raw = await trio.to_thread.run_sync(blocking_client)
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and body == payload
        nursery.cancel_scope.cancel()


async def test_unread_body_then_close_is_not_reset():
    """A PUT answered without reading a body far over drain_limit: the client
    still reads the answer (linger) instead of getting a reset."""

    async def handler(req):
        return Response(403, [], b"denied")

    config = ServerConfig(drain_limit=64 * 1024, close_linger=2)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            lambda task_status: serve(handler, "127.0.0.1", 0, config=config, task_status=task_status))
        port = listeners[0].socket.getsockname()[1]

        def blocking_client() -> bytes:
            import socket

            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(request("PUT", "/k", [("Content-Length", str(64 * MiB))]))
                sent = 0
                try:
                    while sent < 8 * MiB:
                        sock.sendall(b"z" * MiB)
                        sent += MiB
                except OSError:
                    pass
                chunks = []
                try:
                    while data := sock.recv(65536):
                        chunks.append(data)
                except ConnectionResetError:
                    chunks.append(b"<RESET>")
                return b"".join(chunks)

        raw = await trio.to_thread.run_sync(blocking_client)
        assert raw.startswith(b"HTTP/1.1 403 ") and raw.endswith(b"denied")
        nursery.cancel_scope.cancel()


async def test_loopback_body_timeout_and_disconnect():
    """The socket fast path (readv + wait_readable) honours body_timeout and EOF."""
    from s3gw.http import BodyTimeout, ClientDisconnected

    outcomes: list[str] = []

    async def handler(req):
        try:
            await read_all(req.body)
        except BodyTimeout:
            outcomes.append("timeout")
            raise
        except ClientDisconnected:
            outcomes.append("disconnected")
            raise
        return Response(200, [])

    config = ServerConfig(body_timeout=0.3, close_linger=0.1)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            lambda task_status: serve(handler, "127.0.0.1", 0, config=config, task_status=task_status)
        )
        port = listeners[0].socket.getsockname()[1]
        # Stall mid-body: 408 after ~0.3 s.
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = RawClient(stream)
        t0 = trio.current_time()
        await client.send(request("PUT", "/", [("Content-Length", "100")]) + b"x" * 10)
        status, h, _ = await client.response()
        # the timeout fired, and not early (the upper bound only catches a hang, not speed)
        assert status == 408 and 0.25 < trio.current_time() - t0 < 30
        assert await client.at_eof()
        await stream.aclose()
        # Close mid-body: ClientDisconnected, nothing sent back.
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = RawClient(stream)
        await client.send(request("PUT", "/", [("Content-Length", "100")]) + b"x" * 10)
        await stream.send_eof()
        assert await client.at_eof() and client.raw == b""
        await stream.aclose()
        assert outcomes == ["timeout", "disconnected"]
        nursery.cancel_scope.cancel()


async def _loopback(nursery, handler, config):
    listeners = await nursery.start(
        lambda task_status: serve(handler, "127.0.0.1", 0, config=config, task_status=task_status))
    return listeners[0].socket.getsockname()[1]


async def test_loopback_head_timeouts():
    """On a real socket (the reads pay a cancel scope only when they wait): a head
    that arrives in pieces within header_timeout is served; one that stalls gets
    408 after it; an idle keep-alive connection is closed after keepalive_timeout."""
    async def handler(req):
        return Response(200, [], b"ok")

    config = ServerConfig(header_timeout=0.5, keepalive_timeout=0.3, close_linger=0.1)
    async with trio.open_nursery() as nursery:
        port = await _loopback(nursery, handler, config)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = RawClient(stream)
        head = request("GET", "/")
        for i in range(0, len(head), 7):  # slow, but within the head's deadline
            await client.send(head[i:i + 7])
            await trio.sleep(0.01)
        status, _, body = await client.response()
        assert status == 200 and body == b"ok"
        t0 = trio.current_time()
        await client.send(head[:10])   # the next head starts, then stalls
        status, h, _ = await client.response()
        assert status == 408 and h["connection"] == "close"
        assert 0.45 < trio.current_time() - t0 < 30
        assert await client.at_eof()
        await stream.aclose()

        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = RawClient(stream)
        await client.send(request("GET", "/"))
        assert (await client.response())[0] == 200
        t0 = trio.current_time()
        assert await client.at_eof()   # idle past keepalive_timeout: closed quietly
        assert 0.25 < trio.current_time() - t0 < 30
        await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_loopback_send_to_slow_and_to_stuck_readers():
    """A response bigger than the socket buffers: the first write takes what fits and
    the rest waits for the socket; a reader that is merely slow gets every byte, one
    that never reads is dropped after send_timeout."""
    size = 16 * MiB
    body = bytes(range(256)) * (size // 256)

    async def handler(req):
        return Response(200, [], body)

    async def streamed(req):
        async def gen():
            for i in range(0, size, MiB):
                yield body[i:i + MiB]
        return Response(200, [], gen(), content_length=size)

    async def route(req):
        return await (streamed if req.path == "/streamed" else handler)(req)

    config = ServerConfig(send_timeout=0.5, close_linger=0.1)
    async with trio.open_nursery() as nursery:
        port = await _loopback(nursery, route, config)
        for path in ("/", "/streamed"):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            client = RawClient(stream)
            await client.send(request("GET", path))
            await trio.sleep(0.2)            # the server's first write fills the buffers
            got = bytearray()
            status, h, _ = await client.read_head()
            assert h["content-length"] == str(size)
            while len(got) < size:
                got += await client.read_exact(min(256 * 1024, size - len(got)))
                await trio.sleep(0.001)
            assert status == 200 and bytes(got) == body, path
            await stream.aclose()

        for path in ("/", "/streamed"):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(request("GET", path))
            await trio.sleep(1.5)   # never read: the server gives up after send_timeout
            received = 0
            with trio.fail_after(30):
                try:
                    while data := await stream.receive_some(1 << 20):
                        received += len(data)
                except trio.BrokenResourceError:  # reset: also a drop
                    pass
            assert received < size, path  # what the buffers held, then the end
            await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_a_streaming_response_lets_other_connections_in():
    """A big streamed GET to a reader that keeps up: the server writes each piece
    until the socket is full, then waits for it (at least once per piece that did
    not fit), so small requests on another connection are answered while the big
    one streams, not after it."""
    piece = memoryview(bytes(range(256)) * (4 * MiB // 256))
    pieces = 256   # 1 GiB
    size = pieces * len(piece)

    async def handler(req):
        if req.path == "/big":
            async def gen():
                for _ in range(pieces):
                    yield piece
            return Response(200, [], gen(), content_length=size)
        return Response(200, [], b"ok")

    received = [0]

    def big_reader(port: int) -> None:
        import socket

        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request("GET", "/big", [("Connection", "close")]))
            buf = bytearray(MiB)
            while n := sock.recv_into(buf):
                received[0] += n

    async with trio.open_nursery() as nursery:
        port = await _loopback(nursery, handler, ServerConfig())
        done = trio.Event()

        async def read_big():
            await trio.to_thread.run_sync(big_reader, port)
            done.set()

        nursery.start_soon(read_big)
        with trio.fail_after(60):
            while received[0] < 8 * MiB:
                await trio.sleep(0.001)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = RawClient(stream)
        for _ in range(20):
            await client.send(request("GET", "/small"))
            assert (await client.response())[2] == b"ok"
        assert not done.is_set() and received[0] < size
        with trio.fail_after(120):
            await done.wait()
        assert received[0] > size   # the head and every byte of the body
        await stream.aclose()
        nursery.cancel_scope.cancel()
