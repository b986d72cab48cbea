"""The auth store: keys, tokens, grants, revocation, file mode, snapshots across connections."""

from __future__ import annotations

import os
import stat

import pytest

from s3gw.pfs.auth import AuthStoreError, Role, SqliteAuthStore


@pytest.fixture
def store(tmp_path):
    s = SqliteAuthStore(str(tmp_path))
    yield s
    s.close()


def test_disabled_until_enabled(store):
    assert not store.snapshot().enabled
    creds = store.enable()
    snap = store.snapshot()
    assert snap.enabled
    assert creds.user == "admin" and snap.is_admin("admin")
    assert snap.secret(creds.access_key) == creds.secret_key
    assert snap.user_of(creds.access_key) == "admin"
    with pytest.raises(AuthStoreError):
        store.enable()
    store.disable()
    assert not store.snapshot().enabled


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


def test_pair_secret_is_stored_token_is_not(tmp_path, store):
    store.enable()
    pair = store.create_key("alice")
    token = store.create_key("bob", token=True)
    assert token.access_key == token.secret_key
    raw = (tmp_path / "auth.sqlite").read_bytes()
    assert pair.secret_key.encode() in raw          # HMAC needs it (mode 0600 protects it)
    assert token.access_key.encode() not in raw     # only its hash is kept
    snap = store.snapshot()
    assert snap.secret(token.access_key) == token.access_key
    assert snap.user_of(token.access_key) == "bob"
    assert snap.secret("nope") is None and snap.user_of("nope") is None
    ids = {k.access_key: k for k in store.list_keys()}
    assert pair.access_key in ids
    assert any(k.startswith("token-") and v.user == "bob" for k, v in ids.items())


@pytest.mark.parametrize("by", ["token", "listed id"])
def test_revoke_token(store, by):
    store.enable()
    token = store.create_key("bob", token=True)
    listed = next(k.access_key for k in store.list_keys("bob"))
    store.revoke_key(token.access_key if by == "token" else listed)
    assert store.snapshot().secret(token.access_key) is None
    assert store.list_keys("bob")[0].revoked_ns is not None


def test_revoke_pair_and_unknown(store):
    store.enable()
    pair = store.create_key("alice")
    store.revoke_key(pair.access_key)
    assert store.snapshot().secret(pair.access_key) is None
    with pytest.raises(AuthStoreError):
        store.revoke_key("S3GWNOSUCHKEY")


def test_roles_are_ordered_and_replaced(store):
    store.enable()
    store.create_key("alice")
    store.grant("alice", "images", "writer")
    snap = store.snapshot()
    assert snap.may("alice", "images", Role.READER)
    assert snap.may("alice", "images", Role.WRITER)
    assert not snap.may("alice", "images", Role.OWNER)
    assert not snap.may("alice", "other", Role.READER)
    store.grant("alice", "images", Role.READER)
    assert not store.snapshot().may("alice", "images", Role.WRITER)
    assert store.revoke("alice", "images")
    assert not store.revoke("alice", "images")
    assert store.snapshot().role("alice", "images") is None
    assert store.snapshot().role("admin", "anything") is Role.OWNER


def test_grant_needs_a_user_and_a_role(store):
    store.enable()
    with pytest.raises(AuthStoreError):
        store.grant("ghost", "images", "reader")
    store.create_key("alice")
    with pytest.raises(AuthStoreError):
        store.grant("alice", "images", "emperor")
    with pytest.raises(AuthStoreError):
        store.create_key("bad name/")


def test_claim_and_drop_repo(store):
    store.enable()
    store.create_key("alice")
    store.create_key("bob")
    store.claim_repo("alice", "images")
    assert store.snapshot().role("alice", "images") is Role.OWNER
    store.grant("bob", "images", "reader")
    store.drop_repo("images")
    snap = store.snapshot()
    assert snap.role("alice", "images") is None and snap.role("bob", "images") is None
    assert not snap.granted("images")
    # roles granted before a repo exists stand: its creator is not made owner
    store.grant("bob", "docs", "reader")
    assert store.snapshot().granted("docs")
    store.claim_repo("alice", "docs")
    snap = store.snapshot()
    assert snap.role("alice", "docs") is None and snap.role("bob", "docs") is Role.READER


def test_changes_by_another_connection_are_seen(tmp_path, store):
    """The server's snapshot follows `s3gw auth` changes made in another process."""
    store.enable()
    other = SqliteAuthStore(str(tmp_path))
    try:
        creds = other.create_key("carol")
        assert store.snapshot().secret(creds.access_key) == creds.secret_key
        other.revoke_key(creds.access_key)
        assert store.snapshot().secret(creds.access_key) is None
        other.disable()
        assert not store.snapshot().enabled
    finally:
        other.close()


def test_snapshot_is_reused_while_nothing_changes(store):
    store.enable()
    assert store.snapshot() is store.snapshot()


def test_max_age_bounds_how_stale_a_view_may_be(tmp_path, store):
    """The server checks for outside changes at most every max_age seconds; its own
    writes are visible at once."""
    store.enable()
    other = SqliteAuthStore(str(tmp_path))
    try:
        store.snapshot()
        creds = other.create_key("carol")
        assert store.snapshot(max_age=3600).secret(creds.access_key) is None   # not checked yet
        assert store.snapshot(max_age=0).secret(creds.access_key) == creds.secret_key
        other.revoke_key(creds.access_key)
        assert store.snapshot(max_age=3600).secret(creds.access_key) == creds.secret_key
        assert store.snapshot(max_age=0).secret(creds.access_key) is None
        store.create_key("dave")                 # the store's own write: no waiting
        assert any(k.user == "dave" for k in store.list_keys())
        assert store.snapshot(max_age=3600).user_of(store.list_keys("dave")[0].access_key) == "dave"
    finally:
        other.close()
