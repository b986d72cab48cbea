"""The auth-store conformance suite: every ``AuthStore`` implementation (SQLite's
``auth.sqlite``, PostgreSQL on a real server) passes the same cases.  Several handles
on one store stand for several processes (``s3gw auth`` beside a gateway, several
gateways)."""

from __future__ import annotations

import threading

import pytest

from s3gw.pfs.interface import AuthStore
from s3gw.pfs.roles import AuthRows, AuthStoreError, Role


class Backend:
    """One fresh auth store of a kind: ``make()`` opens another handle on it;
    ``stored_text()`` is everything it keeps at rest, as text (for what must not be)."""

    def __init__(self, kind: str, tmp_path, request):
        self.kind = kind
        self.opened: list = []
        if kind == "sqlite":
            self.where = str(tmp_path / "sqlite-auth")
        else:
            self.where = request.getfixturevalue("pg_url")

    def make(self):
        if self.kind == "sqlite":
            from s3gw.pfs.auth import SqliteAuthStore
            store = SqliteAuthStore(self.where)
        else:
            from s3gw.pfs.postgres_auth import PostgresAuthStore
            store = PostgresAuthStore(self.where)
        self.opened.append(store)
        return store

    def stored_text(self) -> str:
        if self.kind == "sqlite":
            with open(f"{self.where}/auth.sqlite", "rb") as f:
                return f.read().decode("latin-1")
        import psycopg
        with psycopg.connect(self.where) as conn:
            return repr([conn.execute(f"SELECT * FROM {t}").fetchall()
                         for t in ("auth_state", "auth_users", "auth_keys", "auth_grants")])

    def close(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    b = Backend(request.param, tmp_path, request)
    yield b
    b.close()


@pytest.fixture
def store(backend):
    return backend.make()


def test_implements_the_protocol(store):
    assert isinstance(store, AuthStore)
    missing = [name for name in dir(AuthStore) if not name.startswith("_")
               and not hasattr(store, name)]
    assert not missing


def test_disabled_until_enabled(store):
    assert not store.snapshot().enabled and not store.enabled
    creds = store.enable()
    snap = store.snapshot()
    assert snap.enabled and store.enabled
    assert creds.user == "admin" and creds.kind == "pair" and snap.is_admin("admin")
    assert snap.secret(creds.access_key) == creds.secret_key
    assert snap.user_of(creds.access_key) == "admin"
    with pytest.raises(AuthStoreError):
        store.enable()
    store.disable()
    assert not store.snapshot().enabled
    # the admin's key survives: enabling again makes a second one
    again = store.enable()
    assert again.access_key != creds.access_key
    assert store.snapshot().secret(creds.access_key) == creds.secret_key
    assert store.users() == [("admin", True)]


def test_pair_secret_is_stored_token_is_not(backend, store):
    store.enable()
    pair = store.create_key("alice")
    token = store.create_key("bob", token=True)
    assert token.access_key == token.secret_key and token.kind == "token"
    raw = backend.stored_text()
    assert pair.secret_key in raw                 # HMAC needs it
    assert token.access_key not in raw            # only its hash is kept
    snap = store.snapshot()
    assert snap.secret(token.access_key) == token.access_key
    assert snap.user_of(token.access_key) == "bob"
    assert snap.secret("nope") is None and snap.user_of("nope") is None
    ids = {k.access_key: k for k in store.list_keys()}
    assert pair.access_key in ids
    assert any(k.startswith("token-") and v.user == "bob" and v.kind == "token"
               for k, v in ids.items())


@pytest.mark.parametrize("by", ["token", "listed id"])
def test_revoke_token(store, by):
    store.enable()
    token = store.create_key("bob", token=True)
    listed = next(k.access_key for k in store.list_keys("bob"))
    info = store.revoke_key(token.access_key if by == "token" else listed)
    assert info.access_key == listed and info.user == "bob" and info.revoked_ns is not None
    assert store.snapshot().secret(token.access_key) is None
    assert store.list_keys("bob")[0].revoked_ns == info.revoked_ns


def test_revoke_keeps_the_row_and_unknown_keys_are_refused(store):
    store.enable()
    pair = store.create_key("alice")
    first = store.revoke_key(pair.access_key)
    assert store.snapshot().secret(pair.access_key) is None
    again = store.revoke_key(pair.access_key)             # revoking twice keeps the time
    assert again.revoked_ns == first.revoked_ns
    assert [(k.access_key, k.revoked_ns) for k in store.list_keys("alice")] == [
        (pair.access_key, first.revoked_ns)]
    with pytest.raises(AuthStoreError):
        store.revoke_key("S3GWNOSUCHKEY")


def test_keys_and_users_are_listed_in_order(store):
    ticks = iter(range(1000, 2000))
    store.clock = lambda: next(ticks)
    store.enable()
    a = store.create_key("zed")
    b = store.create_key("amy", admin=True)
    c = store.create_key("zed")
    listed = [(k.access_key, k.user, k.created_ns) for k in store.list_keys()]
    assert [x[0] for x in listed[1:]] == [a.access_key, b.access_key, c.access_key]
    assert [x[2] for x in listed] == sorted(x[2] for x in listed)
    assert [k.access_key for k in store.list_keys("zed")] == [a.access_key, c.access_key]
    assert store.users() == [("admin", True), ("amy", True), ("zed", False)]


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
    assert store.grants() == [store.grants("alice")[0]]
    assert store.grants("alice", "images")[0].role is Role.READER
    assert store.revoke("alice", "images")
    assert not store.revoke("alice", "images")
    assert store.snapshot().role("alice", "images") is None
    assert store.snapshot().role("admin", "anything") is Role.OWNER


def test_grants_are_listed_by_repo_then_user(store):
    store.enable()
    for user in ("bob", "alice"):
        store.create_key(user)
    store.grant("bob", "b-repo", "owner")
    store.grant("alice", "b-repo", "reader")
    store.grant("bob", "a-repo", "writer")
    assert [(g.repo, g.user, g.role.label) for g in store.grants()] == [
        ("a-repo", "bob", "writer"), ("b-repo", "alice", "reader"), ("b-repo", "bob", "owner")]
    assert [g.repo for g in store.grants(user="bob")] == ["a-repo", "b-repo"]
    assert [g.user for g in store.grants(repo="b-repo")] == ["alice", "bob"]


def test_grant_needs_a_user_and_a_role(store):
    store.enable()
    with pytest.raises(AuthStoreError):
        store.grant("ghost", "images", "reader")
    store.create_key("alice")
    with pytest.raises(AuthStoreError):
        store.grant("alice", "images", "emperor")
    with pytest.raises(AuthStoreError):
        store.create_key("bad name/")
    assert store.grants() == []


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


def test_set_repo_grants_replaces_all_or_nothing(store):
    store.enable()
    store.create_key("alice")
    store.create_key("bob")
    store.grant("alice", "images", "owner")
    store.set_repo_grants("images", {"bob": Role.WRITER})
    assert [(g.user, g.role) for g in store.grants(repo="images")] == [("bob", Role.WRITER)]
    with pytest.raises(AuthStoreError):
        store.set_repo_grants("images", {"alice": Role.OWNER, "ghost": Role.READER})
    assert [(g.user, g.role) for g in store.grants(repo="images")] == [("bob", Role.WRITER)]
    store.set_repo_grants("images", {})
    assert store.grants(repo="images") == [] and not store.snapshot().granted("images")


def test_changes_by_another_handle_are_seen(backend, store):
    """The server's snapshot follows `s3gw auth` changes made in another process."""
    store.enable()
    other = backend.make()
    creds = other.create_key("carol")
    assert store.snapshot().secret(creds.access_key) == creds.secret_key
    other.revoke_key(creds.access_key)
    assert store.snapshot().secret(creds.access_key) is None
    other.disable()
    assert not store.snapshot().enabled


def test_snapshot_is_reused_while_nothing_changes(store):
    store.enable()
    assert store.snapshot() is store.snapshot()


def test_max_age_bounds_how_stale_a_view_may_be(backend, store):
    """A handle checks for outside changes at most every max_age seconds; its own
    writes are visible at once."""
    store.enable()
    other = backend.make()
    store.snapshot()
    creds = other.create_key("carol")
    assert store.snapshot(max_age=3600).secret(creds.access_key) is None   # not checked yet
    assert store.snapshot(max_age=0).secret(creds.access_key) == creds.secret_key
    other.revoke_key(creds.access_key)
    assert store.snapshot(max_age=3600).secret(creds.access_key) == creds.secret_key
    assert store.snapshot(max_age=0).secret(creds.access_key) is None
    store.create_key("dave")                 # the store's own write: no waiting
    key = store.list_keys("dave")[0].access_key
    assert store.snapshot(max_age=3600).user_of(key) == "dave"


def test_concurrent_enable_has_exactly_one_winner(backend):
    handles = [backend.make() for _ in range(4)]
    barrier = threading.Barrier(len(handles))
    outcomes: list = [None] * len(handles)

    def run(i: int) -> None:
        barrier.wait(10)
        try:
            outcomes[i] = handles[i].enable()
        except AuthStoreError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(handles))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    winners = [o for o in outcomes if not isinstance(o, AuthStoreError)]
    assert len(winners) == 1, outcomes
    assert [k.access_key for k in handles[0].list_keys()] == [winners[0].access_key]
    assert handles[1].snapshot().secret(winners[0].access_key) == winners[0].secret_key


@pytest.fixture
def pair_of_backends(request, tmp_path):
    """(source, destination) of another kind each: copying auth between backends."""
    kinds = request.param
    made = [Backend(kind, tmp_path / f"b{i}", request) for i, kind in enumerate(kinds)]
    yield made
    for b in made:
        b.close()


@pytest.mark.parametrize("pair_of_backends", [("sqlite", "postgres"), ("postgres", "sqlite")],
                         indirect=True, ids=["sqlite-to-postgres", "postgres-to-sqlite"])
def test_export_and_import_copy_everything_between_backends(pair_of_backends):
    a, b = pair_of_backends
    src, dst = a.make(), b.make()
    admin = src.enable()
    alice = src.create_key("alice")
    gone = src.create_key("alice")
    src.revoke_key(gone.access_key)
    tok = src.create_key("tokie", token=True)
    src.create_key("root2", admin=True)
    src.grant("alice", "images", "writer")
    src.grant("tokie", "images", "reader")
    rows = src.export_rows()
    assert isinstance(rows, AuthRows) and rows.enabled
    added = dst.import_rows(rows)
    assert added == {"users": 4, "keys": 5, "grants": 2, "revoked": 0}   # live keys revoked
    assert dst.export_rows() == rows
    snap = dst.snapshot()
    assert snap.enabled
    for creds in (admin, alice, tok):
        assert snap.secret(creds.access_key) == creds.secret_key
        assert snap.user_of(creds.access_key) == creds.user
    assert snap.secret(gone.access_key) is None
    assert snap.is_admin("root2") and not snap.is_admin("alice")
    assert snap.role("alice", "images") is Role.WRITER
    assert snap.role("tokie", "images") is Role.READER

    # a second import adds nothing; a revocation made since is carried over; the
    # destination's own rows stand; an import never turns auth off
    assert dst.import_rows(rows) == {"users": 0, "keys": 0, "grants": 0, "revoked": 0}
    src.revoke_key(alice.access_key)
    src.grant("alice", "images", "owner")
    dst.create_key("local-only")
    dst.disable()
    src.disable()
    added = dst.import_rows(src.export_rows())
    assert added == {"users": 0, "keys": 0, "grants": 0, "revoked": 1}
    snap = dst.snapshot()
    assert snap.secret(alice.access_key) is None and snap.role("alice", "images") is Role.WRITER
    assert "local-only" in dict(dst.users()) and not snap.enabled
    src.enable()
    dst.import_rows(src.export_rows())
    assert dst.snapshot().enabled
