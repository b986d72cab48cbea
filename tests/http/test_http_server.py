"""Server behaviour over in-memory streams, raw HTTP bytes in and out."""

from __future__ import annotations

import logging
import re

import pytest
import trio
import trio.testing

from http_testlib import read_all, request, start
from s3gw.http import (
    BodyTimeout,
    ClientDisconnected,
    Headers,
    MalformedBody,
    Request,
    Response,
    ServerConfig,
    current_request_id,
)


async def echo_info(req: Request) -> Response:
    data = await read_all(req.body)
    return Response(
        200,
        [
            ("x-method", req.method),
            ("x-path", req.path),
            ("x-query", req.query),
            ("x-len", str(len(data))),
            ("x-id", req.id),
        ],
        data,
    )


async def test_keepalive_several_requests(nursery):
    seen: list[Request] = []

    async def handler(req):
        seen.append(req)
        return await echo_info(req)

    client = start(nursery, handler)
    await client.send(request("GET", "/b/k%20ey?list-type=2&prefix=a+b", [("X-Custom", "v1"), ("x-custom", "v2")]))
    status, h, body = await client.response()
    assert status == 200 and body == b""
    assert h["x-path"] == "/b/k%20ey" and h["x-query"] == "list-type=2&prefix=a+b"
    assert h["server"] == "s3gw" and "date" in h

    await client.send(request("PUT", "/b/obj", body=b"hello world"))
    status, h, body = await client.response()
    assert (status, body, h["x-len"]) == (200, b"hello world", "11")

    # Two pipelined requests in one write.
    await client.send(request("GET", "/one") + request("DELETE", "/two?x"))
    assert (await client.response())[1]["x-path"] == "/one"
    status, h, _ = await client.response()
    assert (h["x-method"], h["x-path"], h["x-query"]) == ("DELETE", "/two", "x")

    assert len(seen) == 4
    first = seen[0]
    assert first.target == "/b/k%20ey?list-type=2&prefix=a+b"
    assert first.http_version == "1.1" and first.remote == ("test", 1)
    assert first.headers.get("X-CUSTOM") == "v1"
    assert first.headers.get_all("x-custom") == ["v1", "v2"]
    assert ("host", "test") in list(first.headers)
    assert first.body.length == 0 and first.body.complete
    ids = {r.id for r in seen}
    assert len(ids) == 4 and all(re.fullmatch(r"[0-9A-F]{16}", i) for i in ids)
    assert not await _closed_soon(client)


async def _closed_soon(client) -> bool:
    with trio.move_on_after(0.05):
        return await client.at_eof()
    return False


async def test_content_length_body_in_pieces(nursery):
    payload = bytes(range(256)) * 4000  # 1,024,000 bytes
    pieces: list[int] = []

    async def handler(req):
        assert req.body.length == len(payload)
        out = bytearray()
        while piece := await req.body.receive_some(10_000):
            pieces.append(len(piece))
            out += piece
        assert req.body.complete and req.body.consumed == len(payload)
        assert len(req.body.trailers) == 0
        assert await req.body.receive_some() == b""
        return Response(200, [], bytes(out[:10]), None)

    client = start(nursery, handler)
    head = request("PUT", "/o", [("Content-Length", str(len(payload)))])
    await client.send(head)
    for i in range(0, len(payload), 300_000):
        await trio.testing.wait_all_tasks_blocked()
        await client.send(payload[i : i + 300_000])
    status, h, body = await client.response()
    assert (status, body) == (200, payload[:10])
    assert sum(pieces) == len(payload) and max(pieces) <= 10_000


async def test_chunked_body_with_trailers(nursery):
    got = {}

    async def handler(req):
        got["length"] = req.body.length
        got["data"] = await read_all(req.body)
        got["trailers"] = req.body.trailers
        return Response(204, [])

    client = start(nursery, handler)
    chunks = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-amz-checksum-crc32: AAAAAA==\r\nX-Other: 1\r\n\r\n"
    await client.send(request("PUT", "/o", [("Transfer-Encoding", "chunked")]) + chunks)
    status, h, body = await client.response()
    assert status == 204 and "content-length" not in h
    assert got["length"] is None and got["data"] == b"hello world"
    assert got["trailers"].get("X-Amz-Checksum-Crc32") == "AAAAAA=="
    assert list(got["trailers"]) == [("x-amz-checksum-crc32", "AAAAAA=="), ("x-other", "1")]


async def test_content_length_and_chunked_together_close_the_connection(nursery):
    # RFC 9112 6.1: Transfer-Encoding wins over Content-Length, and the server closes
    # the connection after answering (the two framings are how requests are smuggled)
    got = {}

    async def handler(req):
        got["data"] = await read_all(req.body)
        return Response(200, [])

    client = start(nursery, handler)
    smuggle = (b"PUT /o HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    await client.send(smuggle + request("GET", "/next"))
    status, h, body = await client.response()
    assert status == 200 and h["connection"] == "close" and got["data"] == b"abc"
    assert await client.at_eof()


async def test_100_continue_sent_only_when_handler_reads(nursery):
    go = trio.Event()

    async def handler(req):
        await go.wait()
        return Response(200, [], await read_all(req.body))

    client = start(nursery, handler)
    await client.send(request("PUT", "/o", [("Content-Length", "5"), ("Expect", "100-continue")]))
    await trio.testing.wait_all_tasks_blocked()
    assert client.raw == b""  # nothing sent before the handler reads
    go.set()
    status, _, _ = await client.read_head()
    assert status == 100 and client.raw.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    await client.send(b"hello")
    status, _, body = await client.response()
    assert (status, body) == (200, b"hello")
    # The connection stays usable.
    await client.send(request("GET", "/again"))
    assert (await client.response())[0] == 200


async def test_100_continue_unread_closes_connection(nursery):
    async def handler(req):
        return Response(403, [("content-type", "application/xml")], b"<Error/>")

    client = start(nursery, handler)
    # rclone spells it 100-Continue
    await client.send(request("PUT", "/o", [("Content-Length", "1000000"), ("Expect", "100-Continue")]))
    status, h, body = await client.response()
    assert (status, body) == (403, b"<Error/>")
    assert h["connection"] == "close"
    assert b"100 Continue" not in client.raw
    assert await client.at_eof()


async def test_unread_small_body_is_drained_and_connection_kept(nursery):
    async def handler(req):
        return Response(400, [], b"no")

    client = start(nursery, handler)
    await client.send(request("PUT", "/o", body=b"x" * 100_000))
    status, h, _ = await client.response()
    assert status == 400 and "connection" not in h
    await client.send(request("GET", "/next"))
    assert (await client.response())[0] == 400


async def test_unread_large_body_closes(nursery):
    async def handler(req):
        return Response(400, [], b"no")

    client = start(nursery, handler, ServerConfig(drain_limit=1000, close_linger=0.1))
    await client.send(request("PUT", "/o", [("Content-Length", "5000000")]) + b"x" * 10_000)
    status, h, _ = await client.response()
    assert status == 400 and h["connection"] == "close"
    assert await client.at_eof()


async def test_unread_large_chunked_body_closes(nursery):
    async def handler(req):
        return Response(200, [], b"ok")

    client = start(nursery, handler, ServerConfig(drain_limit=1000, close_linger=0.1))
    await client.send(request("PUT", "/o", [("Transfer-Encoding", "chunked")]) + b"2710\r\n" + b"x" * 10_000 + b"\r\n")
    status, h, _ = await client.response()
    assert status == 200
    assert await client.at_eof()


async def test_head_has_no_body(nursery):
    iterated = []

    async def stream():
        iterated.append(True)
        yield b"x" * 10

    async def handler(req):
        if req.path == "/streamed":
            return Response(200, [("etag", '"abc"')], stream(), content_length=10)
        if req.path == "/bytes":
            return Response(200, [], b"0123456789")
        return Response(200, [("content-type", "text/plain")], None, content_length=12345)

    client = start(nursery, handler)
    for path, length in (("/given", "12345"), ("/streamed", "10"), ("/bytes", "10")):
        await client.send(request("HEAD", path))
        status, h, _ = await client.response("HEAD")
        assert status == 200 and h["content-length"] == length
    # Had any body bytes been sent, this response would not parse.
    await client.send(request("GET", "/bytes"))
    status, h, body = await client.response()
    assert body == b"0123456789"
    assert not iterated


async def test_streamed_response_with_and_without_length(nursery):
    big = b"B" * (300 * 1024)

    async def pieces():
        yield b"small-"
        yield big
        yield memoryview(b"-tail")
        yield b""

    async def handler(req):
        if req.path == "/len":
            return Response(200, [], pieces(), content_length=len(big) + 11)
        return Response(200, [], pieces())

    client = start(nursery, handler)
    await client.send(request("GET", "/len"))
    status, h, body = await client.response()
    assert h["content-length"] == str(len(big) + 11) and "transfer-encoding" not in h
    assert body == b"small-" + big + b"-tail"
    await client.send(request("GET", "/chunked"))
    status, h, body = await client.response()
    assert h["transfer-encoding"] == "chunked" and "content-length" not in h
    assert body == b"small-" + big + b"-tail"


async def test_http10_streamed_is_close_delimited(nursery):
    async def handler(req):
        async def gen():
            yield b"abc"
            yield b"def"

        return Response(200, [], gen())

    client = start(nursery, handler)
    await client.send(b"GET / HTTP/1.0\r\n\r\n")
    status, h, body = await client.response()
    assert (status, body) == (200, b"abcdef")
    assert "content-length" not in h and "transfer-encoding" not in h


async def test_connection_close_honoured(nursery):
    client = start(nursery, echo_info)
    await client.send(request("GET", "/", [("Connection", "close")]))
    status, h, _ = await client.response()
    assert status == 200 and h["connection"] == "close"
    assert await client.at_eof()


def xml_error(status: int, reason: str) -> Response:
    body = f"<Error><Code>{status}</Code><RequestId>{current_request_id()}</RequestId></Error>".encode()
    return Response(status, [("content-type", "application/xml")], body)


async def test_handler_exception_becomes_500(nursery, caplog):
    async def handler(req):
        if req.path == "/late":
            async def gen():
                raise RuntimeError("secret-late")
                yield b""  # pragma: no cover

            return Response(200, [], gen(), content_length=10)
        raise RuntimeError("secret-detail")

    client = start(nursery, handler, error_response=xml_error)
    with caplog.at_level(logging.INFO):
        await client.send(request("GET", "/boom"))
        status, h, body = await client.response()
        assert status == 500 and h["content-type"] == "application/xml"
        rid = re.search(rb"<RequestId>([0-9A-F]{16})</RequestId>", body).group(1).decode()
        await client.send(request("GET", "/late"))
        status, h, body = await client.response()
        assert status == 500 and b"<Error>" in body
    assert b"secret" not in client.raw and b"Traceback" not in client.raw
    assert "secret-detail" in caplog.text and rid in caplog.text  # traceback logged with the id
    access = [r.getMessage() for r in caplog.records if r.name == "s3gw.access"]
    assert access[0].startswith("GET /boom 500 ") and rid in access[0]


async def test_plain_500_without_error_response(nursery):
    async def handler(req):
        raise ValueError("nope-secret")

    client = start(nursery, handler)
    await client.send(request("GET", "/"))
    status, h, body = await client.response()
    assert status == 500 and b"nope-secret" not in client.raw


async def test_mid_stream_failure_drops_connection(nursery):
    async def handler(req):
        async def gen():
            yield b"x" * 100
            raise RuntimeError("disk gone")

        return Response(200, [], gen(), content_length=1000)

    client = start(nursery, handler)
    await client.send(request("GET", "/"))
    status, h, _ = await client.read_head()
    assert status == 200
    rest = await client.read_to_eof()
    assert rest == b"x" * 100  # truncated: the client sees a short body, no error text


async def test_malformed_request_gets_400(nursery):
    client = start(nursery, echo_info, error_response=xml_error)
    await client.send(b"GARBAGE\r\n\r\n")
    status, h, body = await client.response()
    assert status == 400 and body.startswith(b"<Error><Code>400")
    assert await client.at_eof()


async def test_too_large_headers_get_431(nursery):
    client = start(nursery, echo_info, ServerConfig(max_header_bytes=4096, close_linger=0.1))
    await client.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n")
    status, h, _ = await client.response()
    assert status == 431
    assert await client.at_eof()


async def test_malformed_chunked_body(nursery):
    raised = []

    async def handler(req):
        try:
            await read_all(req.body)
        except MalformedBody as exc:
            raised.append(exc)
            raise
        return Response(200, [])

    client = start(nursery, handler, ServerConfig(close_linger=0.1))
    await client.send(request("PUT", "/", [("Transfer-Encoding", "chunked")]) + b"zz\r\nhello\r\n")
    status, h, _ = await client.response()
    assert status == 400 and h["connection"] == "close" and raised
    assert await client.at_eof()


async def test_client_disconnect_mid_body(nursery):
    raised: list[BaseException] = []
    done = trio.Event()

    async def handler(req):
        try:
            await read_all(req.body)
        except ClientDisconnected as exc:
            raised.append(exc)
            raise
        finally:
            done.set()
        return Response(200, [])  # pragma: no cover

    client = start(nursery, handler)
    await client.send(request("PUT", "/", [("Content-Length", "1000")]) + b"x" * 100)
    await trio.testing.wait_all_tasks_blocked()
    await client.stream.send_stream.aclose()
    await done.wait()
    assert raised and "100 bytes" in str(raised[0])
    assert await client.at_eof() and client.raw == b""


async def test_body_timeout(nursery, autojump_clock):
    raised = []

    async def handler(req):
        try:
            await read_all(req.body)
        except BodyTimeout:
            raised.append(trio.current_time())
            raise
        return Response(200, [])  # pragma: no cover

    client = start(nursery, handler, ServerConfig(body_timeout=7, close_linger=1))
    t0 = trio.current_time()
    await client.send(request("PUT", "/", [("Content-Length", "100")]) + b"x" * 10)
    status, h, _ = await client.response()
    assert status == 408 and h["connection"] == "close"
    assert raised and raised[0] - t0 == pytest.approx(7)
    assert await client.at_eof()


async def test_header_timeout(nursery, autojump_clock):
    config = ServerConfig(header_timeout=5, keepalive_timeout=100, close_linger=1)
    # A partial head: answered with 408, then closed.
    client = start(nursery, echo_info, config)
    t0 = trio.current_time()
    await client.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
    status, h, _ = await client.response()
    assert status == 408 and trio.current_time() - t0 == pytest.approx(5)
    assert await client.at_eof()
    # No bytes at all: closed silently.
    client = start(nursery, echo_info, config)
    t0 = trio.current_time()
    assert await client.at_eof() and client.raw == b""
    assert trio.current_time() - t0 == pytest.approx(5)


async def test_keepalive_idle_timeout(nursery, autojump_clock):
    client = start(nursery, echo_info, ServerConfig(header_timeout=5, keepalive_timeout=30))
    await client.send(request("GET", "/"))
    assert (await client.response())[0] == 200
    t0 = trio.current_time()
    await trio.sleep(20)  # idle, but within the keep-alive time (longer than header_timeout)
    await client.send(request("GET", "/"))
    assert (await client.response())[0] == 200
    t1 = trio.current_time()
    assert await client.at_eof()
    assert trio.current_time() - t1 == pytest.approx(30) and t1 - t0 == pytest.approx(20)


async def test_send_timeout(nursery, autojump_clock):
    async def handler(req):
        return Response(200, [], b"x" * 100_000)

    # lockstep: send_all blocks until the client reads.
    client = start(nursery, handler, ServerConfig(send_timeout=3), lockstep=True)
    await client.send(request("GET", "/"))
    await trio.sleep(10)  # don't read: the server gives up after 3 s and closes
    await client.read_to_eof()
    assert len(client.raw) < 1000  # at most the head it had offered


async def test_access_log_line(nursery, caplog):
    client = start(nursery, echo_info)
    with caplog.at_level(logging.INFO, logger="s3gw.access"):
        await client.send(request("PUT", "/b/k?q=1", body=b"abc"))
        status, h, _ = await client.response()
        await client.stream.aclose()
        await trio.testing.wait_all_tasks_blocked()
    (line,) = [r.getMessage() for r in caplog.records if r.name == "s3gw.access"]
    assert re.fullmatch(rf"PUT /b/k 200 3 \d+\.\dms {h['x-id']} test:1", line), line


async def test_body_slices_pending_data(nursery):
    async def handler(req):
        a = await req.body.receive_some(3)
        b = await req.body.receive_some(4)
        rest = await read_all(req.body)
        return Response(200, [], b"|".join([bytes(a), bytes(b), rest]))

    client = start(nursery, handler)
    await client.send(request("PUT", "/", body=b"0123456789"))
    assert (await client.response())[2] == b"012|3456|789"


def test_headers_object():
    h = Headers([("Content-Type", "a"), ("X-A", "1"), ("x-a", "2")])
    assert h.get("content-type") == "a" and h.get("CONTENT-TYPE") == "a"
    assert h.get("missing") is None and h.get("missing", "d") == "d"
    assert h.get_all("X-a") == ["1", "2"] and h.get_all("nope") == []
    assert list(h) == [("content-type", "a"), ("x-a", "1"), ("x-a", "2")]
    assert "X-A" in h and len(h) == 3
    raw = Headers.from_raw([(b"x-meta", "caf\u00e9".encode("latin-1"))])
    assert raw.get("x-meta").encode("latin-1") == b"caf\xe9"


async def test_100_continue_handler_raises_closes(nursery):
    async def handler(req):
        raise KeyError("secret")

    client = start(nursery, handler, ServerConfig(close_linger=0.1))
    await client.send(request("PUT", "/o", [("Content-Length", "10"), ("Expect", "100-continue")]))
    status, h, _ = await client.response()
    assert status == 500 and h["connection"] == "close"
    assert b"100 Continue" not in client.raw and b"secret" not in client.raw
    assert await client.at_eof()


async def test_body_read_in_a_child_task_and_busy_guard(nursery):
    async def handler(req):
        results = {}

        async def reader():
            results["data"] = await read_all(req.body)

        async with trio.open_nursery() as inner:
            inner.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await req.body.receive_some()
        return Response(200, [], results["data"])

    client = start(nursery, handler)
    await client.send(request("PUT", "/", [("Content-Length", "5")]))
    await trio.testing.wait_all_tasks_blocked()
    await client.send(b"hello")
    assert (await client.response())[2] == b"hello"


async def test_content_length_header_stands_in(nursery):
    async def handler(req):
        return Response(200, [("Content-Length", "42"), ("Transfer-Encoding", "gzip")])

    client = start(nursery, handler)
    await client.send(request("HEAD", "/"))
    status, h, _ = await client.response("HEAD")
    assert h["content-length"] == "42" and "transfer-encoding" not in h
