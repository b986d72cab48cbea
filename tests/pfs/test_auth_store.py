"""The SQLite auth store's own cases: the file's mode, and reading a folder's auth
without touching it.  Everything an auth store does is in the conformance suite
(tests/pfs/test_auth_conformance.py), which runs on this store too."""

from __future__ import annotations

import os
import stat

import pytest

from s3gw.pfs.auth import SqliteAuthStore, local_auth_enabled


@pytest.fixture
def store(tmp_path):
    s = SqliteAuthStore(str(tmp_path))
    yield s
    s.close()


def test_file_is_private(tmp_path, store):
    store.enable()
    mode = stat.S_IMODE(os.stat(tmp_path / "auth.sqlite").st_mode)
    assert mode == 0o600


def test_loose_mode_is_tightened(tmp_path):
    path = tmp_path / "auth.sqlite"
    SqliteAuthStore(str(tmp_path)).close()
    os.chmod(path, 0o644)
    SqliteAuthStore(str(tmp_path)).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_local_auth_enabled_reads_without_creating(tmp_path):
    assert not local_auth_enabled(str(tmp_path))
    assert not (tmp_path / "auth.sqlite").exists()
    store = SqliteAuthStore(str(tmp_path))
    try:
        assert not local_auth_enabled(str(tmp_path))
        store.enable()
        assert local_auth_enabled(str(tmp_path))
        store.disable()
        assert not local_auth_enabled(str(tmp_path))
    finally:
        store.close()
