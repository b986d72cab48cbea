"""The data folder: one server per folder, admin commands never create one, one-line errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import ServerProcess


def s3gw(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "s3gw", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd, stdin=subprocess.DEVNULL)


def test_a_second_server_on_the_same_folder_refuses_in_one_line(tmp_path):
    data = str(tmp_path / "data")
    first = ServerProcess(data).start()
    try:
        second = ServerProcess(data)
        proc = subprocess.run([sys.executable, "-m", "s3gw", "serve", "--data", data, "--port",
                               str(second.port)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1
        err = [ln for ln in proc.stderr.splitlines() if ln.startswith("s3gw:")]
        assert err == [f"s3gw: another s3gw serve (pid {first.proc.pid}) is serving "
                       f"{os.path.abspath(data)}"], proc.stderr
        assert "Traceback" not in proc.stderr
    finally:
        first.stop()
    # the lock goes with its process, however it ends
    again = ServerProcess(data).start()
    again.kill()
    ServerProcess(data).start().stop()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_a_port_in_use_says_so_and_creates_nothing(tmp_path, workers):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        data = tmp_path / "never"
        proc = s3gw("serve", "--data", str(data), "--port", str(port), "--workers", workers)
    assert proc.returncode == 1
    assert f"s3gw: cannot listen on 127.0.0.1:{port}: Address already in use" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not data.exists()


def test_admin_commands_in_the_wrong_folder_create_nothing(tmp_path):
    for args in (["auth", "disable"], ["auth", "key", "revoke", "AKIDEXAMPLE"], ["fsck"],
                 ["gc"], ["stats"], ["log", "master.x"], ["pipeline", "list"],
                 ["job", "list"]):
        proc = s3gw(*args, cwd=str(tmp_path))
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "s3gw: no data folder at" in proc.stderr and "Traceback" not in proc.stderr
        assert os.listdir(tmp_path) == [], args
