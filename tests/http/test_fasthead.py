"""The plain-request path (``http.fasthead``) against h11: the same requests, the same bytes out.

* ``parse`` accepts only heads h11 accepts, and then gives what h11 gives
  (method, target, headers, body, where the next request starts, keep-alive,
  no 100-continue), on generated heads with the usual and the unusual in them;
* a connection answers the same byte streams with the same bytes (Date aside)
  whether plain requests skip h11 (``fast_heads``) or not: pipelined requests,
  HEAD, 204, streamed answers with and without a length, a handler that closes,
  a handler that leaves the body unread, a failing handler, an invalid header,
  a body longer or shorter than its Content-Length, malformed heads.
"""

from __future__ import annotations

import re

import h11
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3gw.http import Response, ServerConfig, serve_connection
from s3gw.http import fasthead

# the usual (first in each list: drawn most of the time) and the unusual
METHODS = [b"GET", b"PUT", b"HEAD", b"DELETE", b"POST", b"CONNECT", b"get", b"B@D", b""]
TARGETS = [b"/", b"/master.r/k", b"/b/k?versionId=x&a=%20", b"*", b"/a b", b"/\x7f", b"/\xe9"]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.10", b"http/1.1"]
FIELDS = [
    b"User-Agent: aws-cli/1.45", b"x-amz-date: 20260101T000000Z", b"Content-Length: 3",
    b"Content-Type: text/plain; charset=utf-8", b"X:\tv\t", b"X:", b"X: a  b", b"X: \x80\xff",
    b"x-amz-meta-\xe9: v", b"Content-Length: 0", b"Content-Length: 03",
    b"Host: h", b"host: 127.0.0.1:30600", b"Host:h", b"Host:",
    b"Content-Length: 3, 3", b"Content-Length: -1", b"Content-Length:  5 ",
    b"Content-Length: 99999999999999999999999", b"Transfer-Encoding: chunked",
    b"Expect: 100-continue", b"Connection: close", b"Connection: keep-alive",
    b"Upgrade: websocket", b" folded", b"\tfolded", b"Bad Name: x", b"X: a\x00b", b"X: a\rb",
    b"X : y", b":x", b"expect: 100-Continue", b"Expect: 100-continue, x", b"Expect: other",
]


def _usual_or_not(items, usual: int):
    """Mostly one of the first ``usual`` items, sometimes any."""
    return st.one_of(st.sampled_from(items[:usual]), st.sampled_from(items[:usual]),
                     st.sampled_from(items[:usual]), st.sampled_from(items))


@st.composite
def heads(draw):
    line = b" ".join([draw(_usual_or_not(METHODS, 5)), draw(_usual_or_not(TARGETS, 3)),
                      draw(_usual_or_not(VERSIONS, 1))])
    fields = draw(st.lists(_usual_or_not(FIELDS, 11), max_size=6))
    if draw(st.integers(0, 9)):
        fields.insert(draw(st.integers(0, len(fields))), b"Host: h")
    ends = [draw(_usual_or_not([b"\r\n", b"\n"], 1)) for _ in range(len(fields) + 2)]
    head = line + ends[0] + b"".join(f + e for f, e in zip(fields, ends[1:])) + ends[-1]
    return head + draw(st.binary(max_size=12))


def h11_view(buf: bytes):
    """What h11 makes of ``buf``: (method, target, headers, body, rest, keep_alive,
    waiting_for_100) of the first request, or None if h11 refuses it or needs more
    (but for a client waiting for 100 Continue: its body is None until then)."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(buf)
    try:
        event = conn.next_event()
        if type(event) is not h11.Request:
            return None
        waiting = conn.they_are_waiting_for_100_continue
        body = b""
        while True:
            e = conn.next_event()
            if type(e) is h11.Data:
                body += e.data
            elif type(e) is h11.EndOfMessage:
                break
            elif e is h11.NEED_DATA and waiting and not body:
                body = None
                break
            else:
                return None
    except h11.RemoteProtocolError:
        return None
    return (event.method, event.target, list(event.headers), body, conn.trailing_data[0],
            conn._cstate.keep_alive, waiting, event.http_version)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(heads())
def test_parse_accepts_only_what_h11_accepts_and_agrees_with_it(buf):
    got = fasthead.parse(buf, 64 * 1024)
    if got is None:
        return
    want = h11_view(buf)
    assert want is not None, buf
    method, target, headers, body, rest, keep_alive, waiting, version = want
    assert (got.method, got.target, got.headers) == (method, target, headers)
    assert keep_alive and version == b"1.1" and waiting == got.expect
    if got.expect:                      # nothing of the body here yet: h11 waits for it
        assert body is None and got.body == b"" and got.end == len(buf) and got.length > 0
    else:
        assert got.body == body and buf[got.end:] == rest


def test_parse_takes_the_common_requests():
    get = b"GET /master.r/k HTTP/1.1\r\nHost: h\r\nUser-Agent: x\r\n\r\n"
    put = b"PUT /master.r/k HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
    g = fasthead.parse(get + put, 65536)
    assert (g.method, g.target, g.length, g.body, g.end) == (b"GET", b"/master.r/k", 0, b"",
                                                             len(get))
    assert g.headers == [(b"host", b"h"), (b"user-agent", b"x")]
    p = fasthead.parse(put, 65536)
    assert (p.method, p.length, p.body, p.end) == (b"PUT", 3, b"abc", len(put))
    assert fasthead.parse(put[:-1], 65536) is None                 # the body is not all there
    assert fasthead.parse(get[:-2], 65536) is None                 # nor the head
    assert fasthead.parse(get, len(get) - 1) is None               # longer than allowed: h11 says 431


# -- the same bytes out, with and without the plain path --------------------------------

async def _handler(request):
    kind = request.path.rsplit("/", 1)[-1]
    if kind == "read":
        data = bytearray()
        while True:
            piece = await request.body.receive_some(2)
            if not piece:
                break
            data += piece
        return Response(200, [("ETag", '"x"'), ("x-got", str(len(data)))], bytes(data))
    if kind == "into":
        buf = bytearray(4)
        n = await request.body.receive_into(buf)
        return Response(201, [], bytes(buf[:n]))
    if kind == "unread":
        return Response(200, [("content-type", "text/plain")], b"left it")
    if kind == "empty":
        return Response(204, [("x-a", "1")], None)
    if kind == "stream":
        async def gen():
            yield b"one,"
            yield b""
            yield b"two"
        length = request.headers.get("x-length")
        return Response(200, [("x-s", "1")], gen(),
                        content_length=int(length) if length else None)
    if kind == "close":
        return Response(200, [("Connection", "close, keep-alive")], b"bye")
    if kind == "boom":
        raise RuntimeError("a bug")
    if kind == "badheader":
        return Response(200, [("x-bad", "a\r\nb")], b"")
    if kind == "values":
        return Response(200, [("ETag", '"x"'), ("x-empty", ""), ("x-tab", "a\tb"),
                              ("x-latin", "caf\xe9"), ("Server", "mine"), ("Date", "today"),
                              ("Content-Length", "99")], b"v")
    if kind == "trailing-space":
        return Response(200, [("x-a", "b ")], b"")
    if kind == "not-latin1":
        return Response(200, [("x-a", "\u20ac")], b"")
    if kind == "bad-name":
        return Response(200, [("x a", "b")], b"")
    if kind == "host":
        return Response(200, [("x-before", "1"), ("Host", "h"), ("x-after", "2")], b"h")
    return Response(200, [("x-method", request.method), ("x-target", request.target),
                          ("x-headers", repr(list(request.headers)))], b"ok")


async def _exchange(data: bytes, fast: bool) -> bytes:
    client, server = trio.testing.memory_stream_pair()
    config = ServerConfig(fast_heads=fast, close_linger=0.05, keepalive_timeout=0.3,
                          header_timeout=0.3)
    out = bytearray()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_connection, server, _handler, config)
        await client.send_all(data)
        with trio.move_on_after(2):
            await _read_to_eof(client, out)
        await client.aclose()
    return re.sub(rb"date: [^\r]*", b"date: -", bytes(out))


async def _read_to_eof(client, out: bytearray) -> None:
    while piece := await client.receive_some(65536):
        out += piece


REQ = "{m} /b/{k} HTTP/1.1\r\nHost: h\r\n{extra}\r\n"
STREAMS = {
    "pipelined": (REQ.format(m="GET", k="a", extra="") + REQ.format(m="PUT", k="read",
                  extra="Content-Length: 5\r\n") + "hello" + REQ.format(m="DELETE", k="b", extra="")),
    "head": REQ.format(m="HEAD", k="stream", extra="") + REQ.format(m="HEAD", k="read", extra=""),
    "no content": REQ.format(m="GET", k="empty", extra=""),
    "streamed": (REQ.format(m="GET", k="stream", extra="") + REQ.format(m="GET", k="stream",
                 extra="x-length: 7\r\n")),
    "stream too long": REQ.format(m="GET", k="stream", extra="x-length: 5\r\n"),
    "stream too short": REQ.format(m="GET", k="stream", extra="x-length: 9\r\n"),
    "handler closes": REQ.format(m="GET", k="close", extra="") + REQ.format(m="GET", k="a", extra=""),
    "unread body": (REQ.format(m="PUT", k="unread", extra="Content-Length: 4\r\n") + "abcd"
                    + REQ.format(m="GET", k="a", extra="")),
    "receive_into": REQ.format(m="PUT", k="into", extra="Content-Length: 6\r\n") + "abcdef",
    "failing handler": REQ.format(m="GET", k="boom", extra="") + REQ.format(m="GET", k="a", extra=""),
    "invalid header": REQ.format(m="GET", k="badheader", extra=""),
    "host header first": REQ.format(m="GET", k="host", extra=""),
    "header values": REQ.format(m="GET", k="values", extra="") + REQ.format(m="HEAD", k="values",
                                                                             extra=""),
    "trailing space": REQ.format(m="GET", k="trailing-space", extra=""),
    "not latin-1": REQ.format(m="GET", k="not-latin1", extra=""),
    "bad name": REQ.format(m="GET", k="bad-name", extra=""),
    "odd headers": REQ.format(m="GET", k="a", extra="X:\tv\t\r\nx-amz-meta-\xe9: \x80\r\n"),
    "split head": "GET /b/a HTTP/1.1\r\nHo",
    "malformed": "GET /b/a HTTP/1.1\r\nBad Name: x\r\nHost: h\r\n\r\n",
    "http/1.0": "GET /b/a HTTP/1.0\r\n\r\n",
    "connection close": REQ.format(m="GET", k="a", extra="Connection: close\r\n"),
    "chunked body": (REQ.format(m="PUT", k="read", extra="Transfer-Encoding: chunked\r\n")
                     + "3\r\nabc\r\n0\r\n\r\n" + REQ.format(m="GET", k="a", extra="")),
    "expect": REQ.format(m="PUT", k="read", extra="Expect: 100-continue\r\nContent-Length: 2\r\n")
    + "ab",
    "no host": "GET /b/a HTTP/1.1\r\n\r\n",
    "lf only": "GET /b/a HTTP/1.1\nHost: h\n\n",
}


@pytest.mark.parametrize("name", sorted(STREAMS))
async def test_plain_and_h11_cycles_answer_the_same_bytes(name):
    data = STREAMS[name].encode("latin-1")
    fast = await _exchange(data, True)
    slow = await _exchange(data, False)
    assert fast == slow
    assert fast.startswith(b"HTTP/1.1 ")


# -- 100-continue: the client sends its body only once told to -----------------------------

async def _conversation(steps, fast: bool) -> bytes:
    """Play ``steps`` against a connection: ("send", bytes), ("until", bytes: read until
    the received bytes contain it n times, as (marker, n)), ("eof",): half-close.
    Returns everything received, Date fields blanked."""
    client, server = trio.testing.memory_stream_pair()
    config = ServerConfig(fast_heads=fast, close_linger=0.05, keepalive_timeout=0.3,
                          header_timeout=0.3, body_timeout=0.3)
    out = bytearray()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_connection, server, _handler, config)
        with trio.move_on_after(2):
            for step in steps:
                if step[0] == "send":
                    await client.send_all(step[1])
                elif step[0] == "eof":
                    await client.send_eof()
                else:
                    marker, n = step[1]
                    while out.count(marker) < n:
                        piece = await client.receive_some(65536)
                        if not piece:
                            break
                        out += piece
            await _read_to_eof(client, out)
        await client.aclose()
    return re.sub(rb"date: [^\r]*", b"date: -", bytes(out))


def _head(kind: str, length: int, method: str = "PUT") -> bytes:
    return (f"{method} /b/{kind} HTTP/1.1\r\nHost: h\r\nContent-Length: {length}\r\n"
            f"Expect: 100-continue\r\n\r\n").encode()


CONTINUE = b"HTTP/1.1 100 "
CONVERSATIONS = {
    "body after 100": [("send", _head("read", 5)), ("until", (CONTINUE, 1)), ("send", b"hello"),
                       ("until", (b"hello", 1)), ("send", REQ.format(m="GET", k="a", extra="").encode())],
    "body and next request together": [
        ("send", _head("read", 5)), ("until", (CONTINUE, 1)),
        ("send", b"hello" + REQ.format(m="GET", k="a", extra="").encode())],
    "body in pieces": [("send", _head("read", 6)), ("until", (CONTINUE, 1)), ("send", b"ab"),
                       ("send", b"cd"), ("send", b"ef")],
    "refused unread": [("send", _head("unread", 100))],
    "partly read, rest drained": [("send", _head("into", 6)), ("until", (CONTINUE, 1)),
                                  ("send", b"abcdef"), ("send", REQ.format(m="GET", k="a",
                                                                           extra="").encode())],
    "body cut short": [("send", _head("read", 10)), ("until", (CONTINUE, 1)), ("send", b"abc"),
                       ("eof",)],
    "body never comes": [("send", _head("read", 10)), ("until", (CONTINUE, 1))],
    "two in a row": [("send", _head("read", 2)), ("until", (CONTINUE, 1)), ("send", b"xy"),
                     ("until", (b"HTTP/1.1 200", 1)), ("send", _head("read", 3)),
                     ("until", (CONTINUE, 2)), ("send", b"xyz")],
}


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
async def test_100_continue_conversations_are_the_same_with_and_without_h11(name):
    fast = await _conversation(CONVERSATIONS[name], True)
    slow = await _conversation(CONVERSATIONS[name], False)
    assert fast == slow
    assert fast.startswith(b"HTTP/1.1 ")
