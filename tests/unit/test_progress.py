"""s3gw.cli.progress: plain lines when stderr is not a terminal, and the admin commands
that report through it (fsck, gc, branch create --from) in that mode."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from s3gw.cli.progress import mode, track
from s3gw.pfs.metadata import SqliteMetadata
from s3gw.pfs.model import ObjectInfo, Put


def test_lines_when_not_a_terminal(monkeypatch):
    monkeypatch.delenv("S3GW_PROGRESS", raising=False)
    monkeypatch.setenv("S3GW_PROGRESS_INTERVAL", "0")
    out = io.StringIO()
    assert mode(out) == "lines"
    assert list(track(range(3), "work", unit="chunk", stream=out)) == [0, 1, 2]
    lines = out.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines[:3]] == [
        "work: 1 chunks of 3 (33%)", "work: 2 chunks of 3 (67%)", "work: 3 chunks of 3 (100%)"]
    assert lines[3].startswith("work: 3 chunks in ") and len(lines) == 4
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_quiet_for_short_work_and_off(monkeypatch):
    monkeypatch.delenv("S3GW_PROGRESS_INTERVAL", raising=False)
    out = io.StringIO()
    assert list(track(iter("abc"), "work", stream=out)) == ["a", "b", "c"]
    assert out.getvalue() == ""                     # shorter than the 10 s interval
    monkeypatch.setenv("S3GW_PROGRESS", "off")
    monkeypatch.setenv("S3GW_PROGRESS_INTERVAL", "0")
    assert list(track(range(2), "work", stream=out)) == [0, 1] and out.getvalue() == ""


def test_bar_mode_uses_tqdm(monkeypatch):
    monkeypatch.setenv("S3GW_PROGRESS", "bar")
    out = io.StringIO()
    assert list(track(range(5), "work", unit="chunk", stream=out)) == list(range(5))
    assert "work:" in out.getvalue() and "/5 " in out.getvalue() and "\r" in out.getvalue()


def test_admin_commands_report_progress_on_a_pipe(tmp_path):
    data = str(tmp_path / "data")
    os.makedirs(data)
    subprocess.run([sys.executable, "-m", "s3gw", "stats", "--data", data], capture_output=True)
    m = SqliteMetadata(os.path.join(data, "meta.sqlite"), durable=False)
    _ = m.uploads          # the multipart tables, as a server creates them
    m.create_branch("r", "master", 0)
    for i in range(3):
        m.commit("r", "master", [Put(f"k{i}", ObjectInfo(size=1, etag="e", manifest=b""))],
                 "PUT", i)
    m.close()
    env = dict(os.environ, S3GW_PROGRESS_INTERVAL="0")
    env.pop("S3GW_PROGRESS", None)

    def run(*args):
        proc = subprocess.run([sys.executable, "-m", "s3gw", *args, "--data", data], env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout, proc.stderr

    out, err = run("fsck")
    assert "no problems found" in out and "fsck: chunks objects need: 0 chunks in" in err
    out, err = run("gc")
    assert out.startswith("removed ") and "gc: marking: 3 manifests in" in err
    assert "gc: scanning chunks: 0 chunks in" in err
    out, err = run("branch", "create", "dev.r", "--from", "master")
    assert out.startswith("dev.r\t") and "branch create: history rows: 3 rows in" in err
