"""The pipeline runner's start-up recovery failing must not take the server down: it
is retried, and the server's start is not held up meanwhile (found when a readiness
test moved ``meta.sqlite`` away just as a server started: the recovery's read failed
and the whole server exited)."""

from __future__ import annotations

import trio

from s3gw.pfs.metadata import SqliteMetadata
from s3gw.pps.runner import Runner
from s3gw.pps.store import PpsStore
from s3gw.store.chunkstore import LocalChunkStore


class FlakyMeta:
    """The metadata store, whose first ``list_repos`` fails as a missing file does."""

    def __init__(self, meta):
        self._meta = meta
        self.calls = 0

    def list_repos(self):
        self.calls += 1
        if self.calls == 1:
            import sqlite3
            raise sqlite3.OperationalError("unable to open database file")
        return self._meta.list_repos()

    def __getattr__(self, name):
        return getattr(self._meta, name)


async def test_recovery_failure_is_retried_and_does_not_hold_the_start(tmp_path, caplog):
    data = str(tmp_path)
    meta = SqliteMetadata(str(tmp_path / "meta.sqlite"))
    store = LocalChunkStore(data)
    pps = PpsStore(data)
    flaky = FlakyMeta(meta)
    runner = Runner(flaky, store, pps, None, str(tmp_path / "jobs"), poll=0.05)
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(30):
                await nursery.start(runner.run)        # started despite the failure
                while flaky.calls < 2:                 # ... and recovery tried again
                    await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
    finally:
        pps.close()
        store.close()
        meta.close()
    assert "start-up recovery failed; retrying" in caplog.text
