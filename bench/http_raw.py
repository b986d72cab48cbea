"""Raw throughput of s3gw.http over loopback: one 2 GiB PUT and one 2 GiB GET.

Theory of operation
-------------------
The server runs in a child process (``python bench/http_raw.py --serve``) with
two handlers: PUT discards its body through ``Body.receive_some()`` (256 KiB
pieces), GET streams ``size`` bytes as 1 MiB pieces of one preallocated
buffer with a Content-Length.  This process is a plain blocking-socket client:
``sendall`` of one preallocated 1 MiB buffer for the PUT, ``recv_into`` a
preallocated 1 MiB buffer for the GET, so the client costs as little as it can.
Each transfer is repeated and the best and median rates are printed in GB/s
(10^9 bytes/s), with the server process's CPU time (user+sys, from /proc)
per GB: wall-clock rates swing 2x when other work shares the 2 cores, the
CPU cost much less.  DESIGN.md's reference figures on this machine kind: about
4 GB/s receive, 2.5 GB/s send.

Usage: ``python bench/http_raw.py [--size-mib 2048] [--repeat 3] [--no-tune-malloc]``
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from functools import partial

MiB = 1024 * 1024


def run_server(tune: bool) -> None:
    import trio

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from s3gw.http import Response, ServerConfig, serve

    block = b"\xa5" * MiB

    async def handler(req):
        if req.method == "PUT":
            receive = req.body.receive_some
            while await receive():
                pass
            return Response(200, [])
        size = int(req.query or "0")

        async def pieces():
            for _ in range(size // MiB):
                yield block

        return Response(200, [], pieces(), content_length=size // MiB * MiB)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                partial(serve, handler, "127.0.0.1", 0, config=ServerConfig(tune_malloc=tune))
            )
            print(listeners[0].socket.getsockname()[1], flush=True)

    trio.run(main)


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            raise EOFError
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def put(sock: socket.socket, size: int) -> float:
    block = b"\x5a" * MiB
    t0 = time.perf_counter()
    sock.sendall(b"PUT /bench HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n" % size)
    for _ in range(size // MiB):
        sock.sendall(block)
    head, _ = read_head(sock)
    elapsed = time.perf_counter() - t0
    assert head.startswith(b"HTTP/1.1 200"), head
    return elapsed


def get(sock: socket.socket, size: int, buf: memoryview) -> float:
    t0 = time.perf_counter()
    sock.sendall(b"GET /bench?%d HTTP/1.1\r\nHost: b\r\n\r\n" % size)
    head, rest = read_head(sock)
    assert head.startswith(b"HTTP/1.1 200"), head
    got = len(rest)
    recv_into = sock.recv_into
    while got < size:
        n = recv_into(buf)
        if not n:
            raise EOFError(f"short body: {got} of {size}")
        got += n
    elapsed = time.perf_counter() - t0
    assert got == size
    return elapsed


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-tune-malloc", action="store_true", help="ServerConfig(tune_malloc=False)")
    args = parser.parse_args()
    if args.serve:
        run_server(not args.no_tune_malloc)
        return
    command = [sys.executable, os.path.abspath(__file__), "--serve"]
    if args.no_tune_malloc:
        command.append("--no-tune-malloc")
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        size = args.size_mib * MiB
        buf = memoryview(bytearray(MiB))
        with socket.create_connection(("127.0.0.1", port)) as sock:
            results = {"PUT (server receives)": [], "GET (server sends)": []}
            cpu = {name: [] for name in results}
            for _ in range(args.repeat):
                for name, run in (
                    ("PUT (server receives)", lambda: put(sock, size)),
                    ("GET (server sends)", lambda: get(sock, size, buf)),
                ):
                    c0 = cpu_seconds(server.pid)
                    elapsed = run()
                    cpu[name].append((cpu_seconds(server.pid) - c0) / (size / 1e9))
                    results[name].append(size / elapsed / 1e9)
        for name, rates in results.items():
            print(
                f"{name:24s} {args.size_mib} MiB: best {max(rates):.2f} GB/s, "
                f"median {statistics.median(rates):.2f} GB/s  ({', '.join(f'{r:.2f}' for r in rates)}); "
                f"server CPU {min(cpu[name]):.3f} s/GB (best)"
            )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
