"""stat_nowait: stat's answers, and MetadataBusy instead of waiting for a lock."""

import sqlite3

import pytest

from s3gw.pfs.metadata import SqliteMetadata
from s3gw.pfs.model import MetadataBusy, NoSuchBranch, NoSuchFile, ObjectInfo, Put


def test_stat_nowait_answers_as_stat(tmp_path):
    meta = SqliteMetadata(str(tmp_path / "meta.sqlite"), durable=False)
    meta.create_branch("r", "master", 1)
    obj = ObjectInfo(size=3, etag="e", manifest=b"", headers={}, checksums={})
    meta.commit("r", "master", [Put("k", obj)], "m", 2)
    assert meta.stat_nowait("r", "master", "k") == meta.stat("r", "master", "k")
    for call in (meta.stat, meta.stat_nowait):
        with pytest.raises(NoSuchFile):
            call("r", "master", "nope")
        with pytest.raises(NoSuchBranch):
            call("r", "dev", "k")
        with pytest.raises(NoSuchBranch):
            call("gone", "master", "k")
    meta.close()


def test_stat_nowait_reports_a_locked_database(tmp_path):
    class Locked(SqliteMetadata):
        locked = False

        def _stat(self, cur, repo, branch, path):
            if self.locked:
                raise sqlite3.OperationalError("database is locked")
            return super()._stat(cur, repo, branch, path)

    meta = Locked(str(tmp_path / "meta.sqlite"), durable=False)
    meta.create_branch("r", "master", 1)
    meta.locked = True
    with pytest.raises(MetadataBusy):
        meta.stat_nowait("r", "master", "k")
    meta.close()
