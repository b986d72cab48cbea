"""s3gw.settings: every S3GW_* variable in one table, read from a mapping."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

from s3gw import settings

ROOT = pathlib.Path(__file__).resolve().parents[2] / "s3gw"


def test_defaults_and_parsing():
    s = settings.from_env({})
    assert s == settings.Settings()
    s = settings.from_env({"S3GW_PORT": "9000", "S3GW_PUREPYTHON": "1", "S3GW_META": "",
                           "S3GW_SQLITE_CACHE_KIB": "2048", "S3GW_PROGRESS": " Lines "})
    assert (s.port, s.pure_python, s.meta, s.sqlite_cache_kib, s.progress) == \
        (9000, True, None, 2048, "lines")


def test_a_malformed_variable_is_named():
    with pytest.raises(ValueError, match="S3GW_PORT='http'"):
        settings.from_env({"S3GW_PORT": "http"})
    proc = subprocess.run([sys.executable, "-m", "s3gw", "version"], capture_output=True,
                          text=True, cwd=ROOT.parent,
                          env={"S3GW_PORT": "http", "PATH": os.environ.get("PATH", ""),
                               **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}})
    assert proc.returncode == 2 and proc.stderr.startswith("s3gw: S3GW_PORT='http'")


def test_no_module_reads_the_environment_but_settings():
    """One settings object: ``os.environ``/``os.getenv`` for an ``S3GW_`` variable appear
    only in s3gw/settings.py (other environment uses -- a job's env -- are not S3GW_)."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        if path.name == "settings.py" and path.parent == ROOT:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"(os\.environ|getenv)\S*\(?[\"']S3GW_", line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
