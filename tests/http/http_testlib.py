"""Helpers for the http layer tests: a raw-bytes client and a connection starter.

The client parses responses by hand (status line, headers, Content-Length /
chunked / close-delimited bodies) so tests can also look at the exact bytes on
the wire (``client.raw``).
"""

from __future__ import annotations

import trio
import trio.testing

from s3gw.http import ServerConfig, serve_connection


class RawClient:
    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.raw = bytearray()

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _more(self) -> None:
        data = await self.stream.receive_some(1 << 20)
        if not data:
            raise EOFError("server closed the connection")
        self.buf += data
        self.raw += data

    async def read_head(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            await self._more()
        end = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:end])
        del self.buf[: end + 4]
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            key = name.decode().lower()
            assert key not in headers, f"duplicate header {key}"
            headers[key] = value.strip().decode("latin-1")
        return status, headers, head

    async def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            await self._more()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def read_line(self) -> bytes:
        while b"\r\n" not in self.buf:
            await self._more()
        end = self.buf.index(b"\r\n")
        line = bytes(self.buf[:end])
        del self.buf[: end + 2]
        return line

    async def read_chunked(self) -> bytes:
        out = bytearray()
        while True:
            size = int((await self.read_line()).split(b";")[0], 16)
            if size == 0:
                while await self.read_line():
                    pass
                return bytes(out)
            out += await self.read_exact(size)
            assert await self.read_exact(2) == b"\r\n"

    async def read_to_eof(self) -> bytes:
        try:
            while True:
                await self._more()
        except EOFError:
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    async def response(self, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        """Read one final response (1xx are skipped); returns status, headers, body."""
        while True:
            status, headers, _ = await self.read_head()
            if status >= 200:
                break
        if method == "HEAD" or status in (204, 304):
            return status, headers, b""
        if "content-length" in headers:
            return status, headers, await self.read_exact(int(headers["content-length"]))
        if headers.get("transfer-encoding") == "chunked":
            return status, headers, await self.read_chunked()
        return status, headers, await self.read_to_eof()

    async def at_eof(self) -> bool:
        """True if the server closed (no further bytes)."""
        if self.buf:
            return False
        try:
            await self._more()
        except EOFError:
            return True
        return False


def start(
    nursery: trio.Nursery,
    handler,
    config: ServerConfig = ServerConfig(),
    *,
    error_response=None,
    lockstep: bool = False,
) -> RawClient:
    """Serve one in-memory connection in ``nursery``; return its client end."""
    pair = trio.testing.lockstep_stream_pair if lockstep else trio.testing.memory_stream_pair
    client, server = pair()
    nursery.start_soon(
        lambda: serve_connection(server, handler, config, error_response=error_response, remote=("test", 1))
    )
    return RawClient(client)


def request(method: str, target: str, headers: list[tuple[str, str]] = (), body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: test"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def read_all(body) -> bytes:
    out = bytearray()
    while True:
        piece = await body.receive_some()
        if not piece:
            return bytes(out)
        out += piece
