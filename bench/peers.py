"""Servers for the whole-process benchmark (bench/run.py).

* ``start_s3gw``: ``python -m s3gw serve`` on a free 127.0.0.1 port, fresh data dir.
* ``start_moto``: moto's server (``pip install 'moto[server]'``), ``python -m moto.server``.
* ``start_s3rver``: s3rver (npm) run by node, installed once into ``bench/.peers``.
* the ceiling senders, run as child processes of this file:
  ``python bench/peers.py h11-sink`` — a bare trio+h11 server: ``GET /<n>`` sends n bytes
  from one preallocated 1 MiB buffer, ``PUT`` drains the body (256 KiB receives);
  ``python bench/peers.py raw-sender`` — a plain blocking socket that answers the same
  ``GET /<n>`` with ``sendall`` of the 1 MiB buffer (the loopback socket ceiling).
  Each prints its port on its first stdout line.

``ServerHandle`` watches its process: peak RSS per phase (VmHWM, reset through
``/proc/PID/clear_refs`` when allowed, plus a 20 ms VmRSS sampler as a check)
and CPU per thread (``/proc/PID/task/*/stat``), so the report can say which
thread was busy.  Every process started here is stopped by ``stop()``, and by
an ``atexit`` hook if the caller forgets; temp dirs are removed likewise.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEERS_DIR = os.path.join(HERE, ".peers")
S3RVER_JS = os.path.join(PEERS_DIR, "node_modules", "s3rver", "bin", "s3rver.js")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

_LIVE: list["ServerHandle"] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float) -> bool:
    """True once 127.0.0.1:``port`` accepts a connection; False if ``proc`` exits
    first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class PeerUnavailable(Exception):
    """The peer can't be installed or started here; the message says why."""


# ----------------------------------------------------------------------------------------------
# /proc helpers


def _status_kib(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _proc_cpu(pid: int) -> float:
    """CPU seconds of the whole process, threads that already exited included."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return 0.0
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _machine_busy() -> float:
    """CPU seconds every core of the machine spent busy (not idle, not iowait) since boot."""
    try:
        with open("/proc/stat") as f:
            vals = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return (sum(vals[:8]) - idle) / CLK_TCK


def _client_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _thread_times(pid: int) -> dict[int, tuple[str, float]]:
    """tid -> (name, cpu seconds) for every thread of ``pid``."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                s = f.read()
        except OSError:
            continue
        name = s[s.index("(") + 1:s.rindex(")")]
        fields = s[s.rindex(")") + 2:].split()
        out[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


class Phase:
    """What one server did during one benchmark phase: peak RSS and CPU per thread."""

    def __init__(self, handle: "ServerHandle", name: str):
        self.handle = handle
        self.name = name
        self.peak_kib = 0
        self.hwm_reset = False
        self.cpu: dict = {}

    def __enter__(self) -> "Phase":
        pid = self.handle.pid
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS (Linux >= 4.0)
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self.handle.sampler_peak = 0
        self._t0 = time.perf_counter()
        self._times0 = _thread_times(pid)
        self._proc0 = _proc_cpu(pid)
        self._client0 = _client_cpu()
        self._machine0 = _machine_busy()
        return self

    def __exit__(self, *exc) -> None:
        pid = self.handle.pid
        wall = time.perf_counter() - self._t0
        times1 = _thread_times(pid)
        proc_cpu = _proc_cpu(pid) - self._proc0
        client_cpu = _client_cpu() - self._client0
        machine = _machine_busy() - self._machine0
        hwm = _status_kib(pid, "VmHWM") or 0
        sampled = self.handle.sampler_peak
        # VmHWM is exact but only per phase if the reset worked; else the sampler's max.
        self.peak_kib = max(hwm, sampled) if self.hwm_reset else max(sampled, 0) or hwm
        self.handle.overall_peak_kib = max(self.handle.overall_peak_kib, hwm, sampled)
        threads = []
        total = 0.0
        for tid, (name, t1) in times1.items():
            t0 = self._times0.get(tid, (name, 0.0))[1]
            d = t1 - t0
            total += d
            if d > 0.005:
                threads.append({"tid": tid, "name": name, "cpu_s": round(d, 3),
                                "cores": round(d / wall, 2) if wall > 0 else None})
        threads.sort(key=lambda t: -t["cpu_s"])
        total = max(total, proc_cpu)
        self.cpu = {"wall_s": round(wall, 3), "cpu_s": round(total, 3),
                    "cores": round(total / wall, 2) if wall > 0 else None, "threads": threads[:10],
                    "client_cores": round(client_cpu / wall, 2) if wall > 0 else None,
                    # busy cores not ours (server + this client): other work on the machine
                    "other_cores": round(max(0.0, machine - total - client_cpu) / wall, 2) if wall > 0 else None}
        self.handle.phases[self.name] = {"peak_rss_mib": round(self.peak_kib / 1024, 1), "cpu": self.cpu}


class ServerHandle:
    """A server in a child process, its port, log and temp dir."""

    def __init__(self, name: str, argv: list[str], port: int, workdir: str, env: dict | None = None,
                 cwd: str | None = None, ready_path: str | None = None):
        self.name = name
        self.argv = argv
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.workdir = workdir
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.env = env
        self.cwd = cwd
        self.ready_path = ready_path
        self.proc: subprocess.Popen | None = None
        self.phases: dict = {}
        self.sampler_peak = 0
        self.overall_peak_kib = 0
        self._stop_sampler = threading.Event()
        self._log = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> "ServerHandle":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env, cwd=self.cwd,
                                     start_new_session=True)
        _LIVE.append(self)
        if not wait_listening(self.port, self.proc, timeout):
            rc = self.proc.poll()
            log = self.log()[-2000:]
            self.stop()
            if rc is not None:
                raise PeerUnavailable(f"{self.name} exited early (rc {rc}):\n{log}")
            raise PeerUnavailable(f"{self.name} did not listen on port {self.port} in {timeout:.0f} s:\n{log}")
        threading.Thread(target=self._sample, daemon=True, name=f"rss-{self.name}").start()
        return self

    def _sample(self) -> None:
        while not self._stop_sampler.wait(0.02):
            if self.proc is None:
                return
            rss = _status_kib(self.proc.pid, "VmRSS")
            if rss is None:
                return
            if rss > self.sampler_peak:
                self.sampler_peak = rss

    def phase(self, name: str) -> Phase:
        return Phase(self, name)

    def rss_now_mib(self) -> float | None:
        kib = _status_kib(self.pid, "VmRSS") if self.proc else None
        return None if kib is None else round(kib / 1024, 1)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self) -> None:
        self._stop_sampler.set()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: node/python and any children
            except OSError:
                proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    proc.kill()
                proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self in _LIVE:
            _LIVE.remove(self)


@atexit.register
def _stop_all() -> None:
    for h in list(_LIVE):
        try:
            h.stop()
        except Exception:  # noqa: BLE001
            pass


# ----------------------------------------------------------------------------------------------
# the servers


def start_s3gw(workdir: str, pure: bool = False, fsync: bool = True, workers: int = 1,
               extra: tuple[str, ...] = ()) -> ServerHandle:
    """``workers``: ``s3gw serve --workers N`` (the RSS sampled is the supervisor's);
    ``extra``: more ``serve`` arguments (``--meta postgresql://...``)."""
    data = os.path.join(workdir, "s3gw-data")
    port = free_port()
    env = dict(os.environ)
    if pure:
        env["S3GW_PUREPYTHON"] = "1"
    else:
        env.pop("S3GW_PUREPYTHON", None)
    # the default log level (INFO: one access line per request), as a user runs it
    argv = [sys.executable, "-m", "s3gw", "serve", "--data", data, "--port", str(port)]
    if not fsync:
        argv.append("--no-fsync")
    if workers != 1:
        argv += ["--workers", str(workers)]
    argv += list(extra)
    h = ServerHandle("s3gw", argv, port, workdir, env=env, cwd=ROOT)
    h.data_dir = data
    return h.start()


def moto_available() -> str | None:
    """None if moto's server can run here, else why not."""
    try:
        import flask  # noqa: F401  (moto[server] brings flask and flask-cors)
        import moto  # noqa: F401
        import moto.server  # noqa: F401
    except Exception as e:  # noqa: BLE001
        return f"moto[server] not importable ({type(e).__name__}: {e}); pip install 'moto[server]'"
    return None


def start_moto(workdir: str) -> ServerHandle:
    why = moto_available()
    if why:
        raise PeerUnavailable(why)
    port = free_port()
    env = dict(os.environ, TMPDIR=workdir)  # moto spools large objects to temp files
    h = ServerHandle("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                     port, workdir, env=env)
    return h.start()


def ensure_s3rver(install: bool = True, timeout: float = 300) -> str:
    """The path of s3rver's CLI, installing it with npm into bench/.peers once."""
    if os.path.exists(S3RVER_JS):
        return S3RVER_JS
    if shutil.which("node") is None:
        raise PeerUnavailable("node is not installed (apt-get install nodejs npm)")
    if not install:
        raise PeerUnavailable(f"s3rver is not installed in {PEERS_DIR} (run without --no-install)")
    if shutil.which("npm") is None:
        raise PeerUnavailable("npm is not installed (apt-get install npm)")
    os.makedirs(PEERS_DIR, exist_ok=True)
    try:
        p = subprocess.run(["npm", "install", "--prefix", PEERS_DIR, "--no-audit", "--no-fund", "s3rver@3"],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise PeerUnavailable(f"npm install s3rver took over {timeout:.0f} s") from None
    if p.returncode != 0 or not os.path.exists(S3RVER_JS):
        raise PeerUnavailable(f"npm install s3rver failed: {(p.stderr or p.stdout)[-800:]}")
    return S3RVER_JS


def start_s3rver(workdir: str, install: bool = True) -> ServerHandle:
    js = ensure_s3rver(install)
    port = free_port()
    data = os.path.join(workdir, "s3rver-data")
    os.makedirs(data, exist_ok=True)
    argv = ["node", js, "-d", data, "-a", "127.0.0.1", "-p", str(port), "--silent",
            "--allow-mismatched-signatures", "--no-vhost-buckets"]
    h = ServerHandle("s3rver", argv, port, workdir)
    return h.start()


# the credentials each server wants from boto3/aws cli (s3rver also accepts any with
# --allow-mismatched-signatures, but a known access key id avoids InvalidAccessKeyId)
CREDENTIALS = {"s3gw": ("test", "test"), "moto": ("test", "test"), "s3rver": ("S3RVER", "S3RVER")}


class CeilingSender:
    """``python bench/peers.py MODE`` in a child process; ``port`` once it listens."""

    def __init__(self, mode: str):
        self.mode = mode
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), mode],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                     start_new_session=True)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"{mode} did not start: {line!r}")
        self.port = int(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def make_workdir(prefix: str = "s3gw-bench-") -> str:
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    atexit.register(shutil.rmtree, d, ignore_errors=True)
    return d


# ----------------------------------------------------------------------------------------------
# ceiling senders (child process entry points)

MiB = 1 << 20


def _h11_sink() -> None:
    """A bare trio+h11 server: GET /<n> streams n bytes from one 1 MiB buffer; PUT drains."""
    import h11
    import trio

    block = memoryview(bytearray(os.urandom(MiB)))

    async def handle(stream) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        try:
            while True:
                ev = conn.next_event()
                if ev is h11.NEED_DATA:
                    data = await stream.receive_some(256 * 1024)
                    conn.receive_data(data)
                    if not data and conn.their_state is h11.CLOSED:
                        return
                    continue
                if isinstance(ev, h11.ConnectionClosed) or ev is h11.PAUSED:
                    if ev is h11.PAUSED:
                        conn.start_next_cycle()
                        continue
                    return
                if isinstance(ev, h11.Request):
                    if ev.method == b"PUT":
                        while True:
                            ev2 = conn.next_event()
                            if ev2 is h11.NEED_DATA:
                                data = await stream.receive_some(256 * 1024)
                                if not data:
                                    return
                                conn.receive_data(data)
                            elif isinstance(ev2, h11.EndOfMessage):
                                break
                        await stream.send_all(conn.send(h11.Response(
                            status_code=200, headers=[("Content-Length", "0")])))
                        await stream.send_all(conn.send(h11.EndOfMessage()))
                    else:
                        try:
                            n = int(ev.target.lstrip(b"/").split(b"?")[0] or b"0")
                        except ValueError:
                            n = 0
                        while not isinstance(conn.next_event(), h11.EndOfMessage):
                            pass
                        await stream.send_all(conn.send(h11.Response(
                            status_code=200, headers=[("Content-Length", str(n))])))
                        left = n
                        while left > 0:
                            k = min(MiB, left)
                            for piece in conn.send_with_data_passthrough(h11.Data(data=block[:k])):
                                await stream.send_all(piece)
                            left -= k
                        await stream.send_all(conn.send(h11.EndOfMessage()))
                    conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            return

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(functools.partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
            print(listeners[0].socket.getsockname()[1], flush=True)

    trio.run(main)


def _raw_sender() -> None:
    """Plain blocking sockets: GET /<n> answered by sendall of one 1 MiB buffer."""
    from clients import recv_head  # this child runs with bench/ on its path

    block = memoryview(bytearray(os.urandom(MiB)))
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    print(srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        with conn:
            data = recv_head(conn)
            if not data:
                continue
            target = data.split(b" ", 2)[1]
            n = int(target.lstrip(b"/").split(b"?")[0] or b"0")
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % n)
            left = n
            try:
                while left > 0:
                    k = min(MiB, left)
                    conn.sendall(block[:k])
                    left -= k
            except OSError:
                pass


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "h11-sink":
        _h11_sink()
    elif mode == "raw-sender":
        _raw_sender()
    else:
        print("usage: python bench/peers.py h11-sink|raw-sender", file=sys.stderr)
        sys.exit(2)
