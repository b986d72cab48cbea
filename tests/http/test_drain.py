"""``http.drain.Drain``: a graceful stop stops accepting, closes idle keep-alive
connections and lets the exchanges in progress finish (then closes them)."""

from __future__ import annotations

import trio

from http_testlib import RawClient, request
from s3gw.http import Response, ServerConfig, serve
from s3gw.http.drain import Drain


async def test_a_drain_finishes_the_exchange_in_progress_and_closes_the_idle_ones():
    release = trio.Event()
    entered = trio.Event()

    async def handler(req):
        if req.path == "/slow":
            entered.set()
            await release.wait()
            return Response(200, [], b"done")
        return Response(200, [], b"ok")

    drain = Drain()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            lambda task_status: serve(handler, "127.0.0.1", 0, config=ServerConfig(drain=drain),
                                      task_status=task_status))
        port = listeners[0].socket.getsockname()[1]
        idle = RawClient(await trio.open_tcp_stream("127.0.0.1", port))
        await idle.send(request("GET", "/fast"))
        assert (await idle.read_head())[0] == 200
        busy = RawClient(await trio.open_tcp_stream("127.0.0.1", port))
        await busy.send(request("GET", "/slow"))
        await entered.wait()
        assert drain.connections == 2

        drain.start()
        with trio.fail_after(5):
            while drain.connections != 1:         # the idle one is closed
                await trio.sleep(0.01)
        assert await idle.stream.receive_some(100) in (b"ok", b"")
        await idle.stream.aclose()
        assert not release.is_set()
        release.set()                              # the busy one finishes...
        status, _headers, _ = await busy.read_head()
        assert status == 200
        while len(busy.buf) < 4:
            await busy._more()
        assert bytes(busy.buf) == b"done"
        assert await drain.wait(5)                 # ... and closes
        assert await busy.stream.receive_some(100) == b""
        await busy.stream.aclose()
        try:                                       # no new connection is taken
            late = await trio.open_tcp_stream("127.0.0.1", port)
        except OSError:
            pass
        else:
            async with late:
                with trio.fail_after(2):
                    await late.send_all(request("GET", "/fast"))
                    assert await late.receive_some(100) == b""
        nursery.cancel_scope.cancel()


async def test_wait_says_false_while_a_connection_is_busy_past_the_grace():
    drain = Drain()
    drain.connections = 1
    assert not await drain.wait(0.05)
