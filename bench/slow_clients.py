"""Slow and idle clients against a real server: are they dropped, and does RSS follow load?

    python bench/slow_clients.py                 # 20 clients at 1 byte/s + 500 idle connections

Starts ``s3gw serve`` (fresh data dir, defaults: --body-min-rate 1024 after a 20 s
grace), measures its RSS before, opens N PUTs whose bodies trickle in at 1 byte/s
and M idle keep-alive connections, measures RSS during, waits (bounded) for the
slow PUTs' answers (``RequestTimeout`` expected), closes everything, does a
burst of 64 MiB PUTs, waits for the idle trim, and measures RSS after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slow", type=int, default=20)
    ap.add_argument("--idle", type=int, default=500)
    ap.add_argument("--timeout", type=float, default=90)
    args = ap.parse_args(argv)
    wd = tempfile.mkdtemp(prefix="s3gw-slow-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(os.path.join(wd, "server.log"), "wb")
    proc = subprocess.Popen([sys.executable, "-m", "s3gw", "serve", "--data", os.path.join(wd, "d"),
                             "--port", str(port), "--log-level", "WARNING"], stdout=log,
                            stderr=subprocess.STDOUT, cwd=ROOT)
    socks: list[socket.socket] = []
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(b"PUT /master.slow HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            c.recv(65536)
        time.sleep(1)
        before = rss_mib(proc.pid)
        slow = []
        for i in range(args.slow):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(f"PUT /master.slow/k{i} HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n".encode())
            s.setblocking(False)
            slow.append(s)
        for _ in range(args.idle):
            socks.append(socket.create_connection(("127.0.0.1", port)))
        during = 0.0
        answered: dict[int, bytes] = {}
        started = time.monotonic()
        while len(answered) < len(slow) and time.monotonic() - started < args.timeout:
            for i, s in enumerate(slow):
                if i in answered:
                    continue
                try:
                    s.send(b"x")
                except OSError:
                    pass
                try:
                    data = s.recv(65536)
                    answered[i] = data
                except BlockingIOError:
                    pass
                except OSError as exc:
                    answered[i] = repr(exc).encode()
            during = max(during, rss_mib(proc.pid))
            time.sleep(1)
        took = time.monotonic() - started
        timeouts = sum(1 for d in answered.values() if b"RequestTimeout" in d)
        for s in slow + socks:
            s.close()
        socks.clear()
        # a burst of big PUTs, then idle
        payload = os.urandom(1 << 20)
        for i in range(4):
            with socket.create_connection(("127.0.0.1", port)) as c:
                c.sendall(f"PUT /master.slow/big{i} HTTP/1.1\r\nHost: x\r\nContent-Length: {64 << 20}\r\n"
                          "Connection: close\r\n\r\n".encode())
                for _ in range(64):
                    c.sendall(payload)
                c.recv(65536)
        peak_burst = rss_mib(proc.pid)
        time.sleep(12)         # the idle trim comes 5-10 s after the last request
        after = rss_mib(proc.pid)
        print(f"slow clients {args.slow}: answered {len(answered)} in {took:.0f} s, "
              f"{timeouts} RequestTimeout; idle connections {args.idle}")
        print(f"RSS MiB: before {before:.0f}, during {during:.0f}, right after a 4 x 64 MiB PUT burst "
              f"{peak_burst:.0f}, after 12 s idle {after:.0f}")
        return 0 if timeouts == args.slow else 1
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(wd, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
