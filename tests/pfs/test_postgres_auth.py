"""The PostgreSQL auth store's own cases, on a real server: a gateway's watching handle
follows changes made elsewhere without reading the database on ``snapshot()``, applies
its own changes at once, and keeps its last snapshot (logging once) while the database
cannot be reached; the schema is migration 3's."""

from __future__ import annotations

import logging
import time

import psycopg
import pytest

from s3gw.pfs.postgres import SchemaMismatch
from s3gw.pfs.postgres_auth import PostgresAuthStore


def _wait_for(predicate, timeout: float = 10.0) -> float:
    """Seconds until ``predicate()`` held (polled every millisecond); fails after
    ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.001)
    return time.monotonic() - start


@pytest.fixture
def handles(pg_url):
    opened = []

    def make(**kw):
        opened.append(PostgresAuthStore(pg_url, **kw))
        return opened[-1]
    yield make
    for h in opened:
        h.close()


def test_a_watching_handle_follows_other_handles(handles):
    gateway, admin_cli = handles(watch=True), handles()
    admin = admin_cli.enable()
    _wait_for(lambda: gateway.snapshot().enabled)
    lags = []
    for i in range(5):
        creds = admin_cli.create_key(f"user{i}")
        lags.append(_wait_for(lambda: gateway.snapshot().secret(creds.access_key) is not None))
        admin_cli.revoke_key(creds.access_key)
        lags.append(_wait_for(lambda: gateway.snapshot().secret(creds.access_key) is None))
    assert gateway.snapshot().secret(admin.access_key) == admin.secret_key
    print(f"changes seen by the watching handle after {min(lags) * 1000:.1f}.."
          f"{max(lags) * 1000:.1f} ms")


def test_a_watching_handle_applies_its_own_changes_at_once(handles):
    gateway, other = handles(watch=True), handles(watch=True)
    gateway.enable()
    gateway.create_key("alice")
    gateway.claim_repo("alice", "images")            # what CreateBucket does
    assert gateway.snapshot().role("alice", "images").label == "owner"
    gateway.drop_repo("images")
    assert not gateway.snapshot().granted("images")
    _wait_for(lambda: other.snapshot().enabled)      # and the other gateway follows


def test_an_unreachable_database_keeps_the_last_snapshot_and_logs_once(
        pg_server, pg_url, handles, caplog):
    caplog.set_level(logging.WARNING, logger="s3gw.auth")
    gateway = handles(watch=True, poll=0.05)
    admin = handles().enable()
    _wait_for(lambda: gateway.snapshot().enabled)
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_server.url(), autocommit=True) as su:
        su.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            su.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = %s", (name,))
            _wait_for(lambda: gateway.unreachable)
            time.sleep(1.0)                          # several failed reconnections
            snap = gateway.snapshot()                # no database needed
            assert snap.enabled and snap.secret(admin.access_key) == admin.secret_key
            with pytest.raises(psycopg.OperationalError):
                gateway.create_key("nobody")         # changes fail meanwhile
        finally:
            su.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    _wait_for(lambda: not gateway.unreachable)
    lost = [r for r in caplog.records if "cannot reach" in r.getMessage()]
    back = [r for r in caplog.records if "reachable again" in r.getMessage()]
    assert len(lost) == 1 and len(back) == 1, [r.getMessage() for r in caplog.records]
    assert "postgresql://" in lost[0].getMessage()
    # the changes' connection, killed with the others, is opened again
    creds = gateway.create_key("after")
    assert gateway.snapshot().secret(creds.access_key) == creds.secret_key
    later = handles().create_key("later")
    _wait_for(lambda: gateway.snapshot().secret(later.access_key) is not None)


def test_the_tables_are_migration_3(pg_server, pg_url):
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT version, enabled FROM auth_state").fetchall() == [(0, False)]
        versions = [r[0] for r in conn.execute("SELECT version FROM s3gw_schema ORDER BY 1")]
    assert 3 in versions
    bare = pg_server.database(migrate=False)
    try:
        with pytest.raises(SchemaMismatch, match="s3gw migrate"):
            PostgresAuthStore(bare)
    finally:
        pg_server.drop(bare)
