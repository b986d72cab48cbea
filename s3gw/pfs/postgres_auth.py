"""The auth store in PostgreSQL: one set of users, keys and roles for every gateway of a
database, so a gateway holds no auth state of its own.

Theory of operation
-------------------
The tables (migration 3 in ``pfs.postgres``) hold what ``auth.sqlite`` holds
(``pfs.auth``), with the same meaning: ``auth_users``; ``auth_keys`` (a pair's
secret as is, since SigV4 and SigV2 are HMACs the server must compute; a token only
as its SHA-256; a revoked key keeps its row with ``revoked_ns``); ``auth_grants``
(role 1 reader < 2 writer < 3 owner); and one row, ``auth_state(version, enabled)``.

*One change at a time.*  Every change is one READ COMMITTED transaction whose first
statement bumps ``auth_state.version`` (``UPDATE ... RETURNING``).  That row's lock
orders the changes of every process: a second change waits for the first to commit,
and its later statements see what the first wrote.  So of two concurrent ``enable``
(two ``s3gw auth enable`` anywhere), the second finds auth enabled and is refused:
exactly one wins.  The same transaction sends ``NOTIFY s3gw_auth``, which PostgreSQL
delivers to the listeners when (and only if) it commits.

*Freshness on the gateways.*  A gateway opens the store with ``watch=True``; its
request path never reads the database: ``snapshot()`` returns the current immutable
``AuthSnapshot`` (an attribute read), which a background thread replaces.  The
thread LISTENs on a connection of its own: a notification wakes it at once, and it
also reads the version every ``POLL`` seconds (0.1), in case a notification is lost
with a connection.  On a new version it reads everything in one REPEATABLE READ
transaction, builds the new snapshot and swaps it in (one assignment).  A change made
with ``s3gw auth`` anywhere therefore applies on every gateway within milliseconds
(measured: docs/backends.md), at most ``POLL`` plus one reload.  The gateway's own
changes (CreateBucket's ``claim_repo``, PutBucketAcl's ``set_repo_grants``,
DeleteBucket's ``drop_repo``) reload in the calling worker thread before they return:
they apply at once.  A snapshot is only ever replaced by one of a newer version, so
the thread and the callers never put an older view back.

*An unreachable database.*  The thread logs one warning, keeps the last snapshot (the
gateway keeps authenticating and authorising with it), and tries to reconnect, every
``POLL`` seconds at first, then at most every second; when it is back it logs once and
reloads at once.  Changes fail meanwhile (their callers report the error).

Without ``watch`` (the ``s3gw auth`` commands), ``snapshot(max_age)`` reads the version
when the view is older than ``max_age`` seconds (0: at every call), as SQLite's does.

Connections: one for changes and listings (behind a lock, re-opened if it broke) and,
with ``watch``, the thread's.  Known weakness: every change makes every gateway read
the whole auth state again (a few ms for thousands of keys).
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg

from .auth import ADMIN_USER, new_pair, new_token, token_id
from .postgres import _check_schema, _connect, _redacted
from .roles import (PAIR, TOKEN, AuthRows, AuthSnapshot, AuthStoreError, Credentials, Grant,
                    KeyInfo, Role, check_user, token_hash)

__all__ = ["PostgresAuthStore", "POLL", "CHANNEL"]

log = logging.getLogger("s3gw.auth")

POLL = 0.1            # seconds between the watcher's version checks
RETRY_MAX = 1.0       # seconds between reconnection attempts, at most
CHANNEL = "s3gw_auth"
_KEY_COLS = "id, username, kind, created_ns, revoked_ns"


class PostgresAuthStore:
    """Users, keys and roles in a PostgreSQL database (see the module docstring).

    Raises (on opening):
        pfs.postgres.SchemaMismatch: the database is not at this s3gw's schema version.
        psycopg.OperationalError: the database cannot be reached.
    """

    def __init__(self, dsn: str, *, watch: bool = False, clock=time.time_ns,
                 poll: float = POLL):
        self.dsn = dsn
        self.where = _redacted(dsn)
        self.clock = clock
        self.poll = poll
        self._lock = threading.Lock()         # self._conn: changes and listings
        self._swap = threading.Lock()         # self._version / self._snapshot
        self._version = -1
        self._snapshot = AuthSnapshot.disabled()
        self._checked = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.unreachable = False              # the watcher lost the database
        self._conn: psycopg.Connection | None = _connect(dsn)
        try:
            _check_schema(self._conn, dsn)
            self._install(*_read_all(self._conn))
        except BaseException:
            self._conn.close()
            raise
        if watch:
            self._thread = threading.Thread(target=self._watch, name="s3gw-auth-watch",
                                            daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5 * self.poll + 1.0)
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- the snapshot ---------------------------------------------------------------------
    def snapshot(self, max_age: float = 0.0) -> AuthSnapshot:
        """The current view.  Watching: never reads the database (the watcher keeps the
        view fresh, see the module docstring), whatever ``max_age``.  Otherwise: the
        version is read when the view is older than ``max_age`` seconds."""
        if self._thread is not None:
            return self._snapshot
        now = time.monotonic()
        if max_age > 0 and now - self._checked < max_age:
            return self._snapshot
        with self._lock:
            try:
                self._refresh(self._connection())
            except psycopg.OperationalError:
                if not self._conn.broken:
                    raise
                self._refresh(self._connection())        # lost since its last use: again
            self._checked = now
        return self._snapshot

    def _install(self, version: int, snapshot: AuthSnapshot) -> None:
        with self._swap:
            if version > self._version:
                self._version, self._snapshot = version, snapshot

    def _refresh(self, conn: psycopg.Connection) -> None:
        version = conn.execute("SELECT version FROM auth_state").fetchone()[0]
        if version != self._version:
            self._install(*_read_all(conn))

    def _watch(self) -> None:
        conn = None
        delay = self.poll
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._refresh(conn)          # what changed while nobody listened
                    if self.unreachable:
                        log.warning("auth store: %s is reachable again; auth changes "
                                    "apply again", self.where)
                        self.unreachable = False
                    delay = self.poll
                for _ in conn.notifies(timeout=self.poll, stop_after=1):
                    pass
                if not self._stop.is_set():
                    self._refresh(conn)
            except Exception as exc:  # noqa: BLE001 - whatever it is, keep the last view and retry
                if not self.unreachable:
                    log.warning("auth store: cannot reach %s (%s); serving with the users, "
                                "keys and roles as of its last change seen, until it is back",
                                self.where, (str(exc).strip().splitlines() or ["?"])[0])
                    self.unreachable = True
                if conn is not None:
                    _close_quietly(conn)
                    conn = None
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX)
        if conn is not None:
            _close_quietly(conn)

    # -- reading --------------------------------------------------------------------------
    def _connection(self) -> psycopg.Connection:
        """The changes' connection (the caller holds ``_lock``), re-opened if it broke."""
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                _close_quietly(conn)
            conn = self._conn = _connect(self.dsn)
        return conn

    def _begin(self, sql: str = "BEGIN") -> psycopg.Connection:
        """The changes' connection in a new transaction (the caller holds ``_lock``).  A
        connection found dead at ``BEGIN`` (the database restarted since its last use:
        nothing of this transaction reached it) is replaced once."""
        conn = self._connection()
        try:
            conn.execute(sql)
        except psycopg.OperationalError:
            if not conn.broken:
                raise
            conn = self._connection()
            conn.execute(sql)
        return conn

    def _query(self, sql: str, args=()) -> list[tuple]:
        with self._lock:
            conn = self._begin(_READ)
            try:
                return conn.execute(sql, args).fetchall()
            finally:
                _end(conn, "COMMIT")

    @property
    def enabled(self) -> bool:
        return self.snapshot().enabled

    def list_keys(self, user: str | None = None) -> list[KeyInfo]:
        sql, args = f"SELECT {_KEY_COLS} FROM auth_keys", ()
        if user is not None:
            sql, args = sql + " WHERE username = %s", (user,)
        return [KeyInfo(*row) for row in self._query(sql + " ORDER BY created_ns, id", args)]

    def grants(self, user: str | None = None, repo: str | None = None) -> list[Grant]:
        sql, args = "SELECT username, repo, role FROM auth_grants WHERE true", []
        if user is not None:
            sql += " AND username = %s"
            args.append(user)
        if repo is not None:
            sql += " AND repo = %s"
            args.append(repo)
        return [Grant(u, r, Role(role))
                for u, r, role in self._query(sql + " ORDER BY repo, username", args)]

    def users(self) -> list[tuple[str, bool]]:
        return [(n, bool(a)) for n, a in
                self._query("SELECT name, admin FROM auth_users ORDER BY name")]

    # -- changing -------------------------------------------------------------------------
    def _tx(self, fn):
        """``fn(conn, enabled)`` in one change transaction (see "One change at a time");
        the new state is this handle's snapshot when it returns."""
        with self._lock:
            conn = self._begin()
            try:
                enabled = conn.execute("UPDATE auth_state SET version = version + 1 "
                                       "RETURNING enabled").fetchone()[0]
                result = fn(conn, enabled)
                conn.execute(f"NOTIFY {CHANNEL}")
            except BaseException:
                _end(conn, "ROLLBACK")
                raise
            conn.execute("COMMIT")
            self._install(*_read_all(conn))
            self._checked = time.monotonic()
            return result

    def enable(self) -> Credentials:
        """Turn auth on and create the first admin's key.

        Raises:
            AuthStoreError: auth is already enabled.
        """
        def run(c, enabled):
            if enabled:
                raise AuthStoreError("auth is already enabled for this database")
            c.execute("UPDATE auth_state SET enabled = true")
            return self._new_key(c, ADMIN_USER, admin=True, token=False)
        return self._tx(run)

    def disable(self) -> None:
        self._tx(lambda c, _: c.execute("UPDATE auth_state SET enabled = false"))

    def create_key(self, user: str, *, admin: bool = False, token: bool = False) -> Credentials:
        """Create *user* if missing (an admin with ``admin=True``) and a new key for it."""
        check_user(user)
        return self._tx(lambda c, _: self._new_key(c, user, admin=admin, token=token))

    def _new_key(self, c, user: str, *, admin: bool, token: bool) -> Credentials:
        now = self.clock()
        c.execute("INSERT INTO auth_users(name, admin, created_ns) VALUES(%s, false, %s) "
                  "ON CONFLICT (name) DO NOTHING", (user, now))
        if admin:
            c.execute("UPDATE auth_users SET admin = true WHERE name = %s", (user,))
        if token:
            value, digest = new_token()
            c.execute("INSERT INTO auth_keys(id, lookup, kind, username, secret, created_ns) "
                      "VALUES(%s, %s, %s, %s, NULL, %s)",
                      (token_id(digest), digest, TOKEN, user, now))
            return Credentials(user, value, value, TOKEN)
        access, secret = new_pair()
        c.execute("INSERT INTO auth_keys(id, lookup, kind, username, secret, created_ns) "
                  "VALUES(%s, %s, %s, %s, %s, %s)", (access, access, PAIR, user, secret, now))
        return Credentials(user, access, secret, PAIR)

    def revoke_key(self, key: str) -> KeyInfo:
        """Revoke a key by its access key, its listed id, or (tokens) the token itself.

        Raises:
            AuthStoreError: no such key.
        """
        def run(c, _):
            row = c.execute(f"UPDATE auth_keys SET revoked_ns = COALESCE(revoked_ns, %s) "
                            f"WHERE id = %s OR lookup = %s OR lookup = %s RETURNING {_KEY_COLS}",
                            (self.clock(), key, key, token_hash(key))).fetchone()
            if row is None:
                raise AuthStoreError(f"no such key: {key}")
            return KeyInfo(*row)
        return self._tx(run)

    def grant(self, user: str, repo: str, role: Role | str) -> Grant:
        """Give *user* *role* on *repo* (replacing any role it had there).

        Raises:
            AuthStoreError: unknown user or role.
        """
        role = Role.parse(role) if isinstance(role, str) else Role(role)

        def run(c, _):
            _check_users(c, [user], " (create a key for it first)")
            c.execute("INSERT INTO auth_grants(username, repo, role) VALUES(%s, %s, %s) "
                      "ON CONFLICT (username, repo) DO UPDATE SET role = EXCLUDED.role",
                      (user, repo, int(role)))
            return Grant(user, repo, role)
        return self._tx(run)

    def revoke(self, user: str, repo: str) -> bool:
        """Remove *user*'s role on *repo*; False if it had none."""
        return self._tx(lambda c, _: c.execute(
            "DELETE FROM auth_grants WHERE username = %s AND repo = %s",
            (user, repo)).rowcount > 0)

    def claim_repo(self, user: str, repo: str) -> None:
        """Make *user* the owner of a repo it just created, unless roles on that repo were
        granted before it existed: those stand as they are."""
        self._tx(lambda c, _: c.execute(
            "INSERT INTO auth_grants(username, repo, role) SELECT %s, %s, %s "
            "WHERE NOT EXISTS (SELECT 1 FROM auth_grants WHERE repo = %s)",
            (user, repo, int(Role.OWNER), repo)))

    def set_repo_grants(self, repo: str, roles: dict[str, Role]) -> None:
        """Replace every grant on *repo* with *roles* (user -> role), atomically.

        Raises:
            AuthStoreError: a user that does not exist (nothing is changed).
        """
        def run(c, _):
            _check_users(c, list(roles))
            c.execute("DELETE FROM auth_grants WHERE repo = %s", (repo,))
            for user, role in roles.items():
                c.execute("INSERT INTO auth_grants(username, repo, role) VALUES(%s, %s, %s)",
                          (user, repo, int(role)))
        self._tx(run)

    def drop_repo(self, repo: str) -> None:
        """Forget every grant on a deleted repo (a new repo of that name starts clean)."""
        self._tx(lambda c, _: c.execute("DELETE FROM auth_grants WHERE repo = %s", (repo,)))

    # -- copying between backends ---------------------------------------------------------
    def export_rows(self) -> AuthRows:
        """Everything, in one read snapshot (secrets included)."""
        with self._lock:
            conn = self._begin(_READ)
            try:
                enabled = conn.execute("SELECT enabled FROM auth_state").fetchone()[0]
                users = tuple((n, bool(a), t) for n, a, t in conn.execute(
                    "SELECT name, admin, created_ns FROM auth_users ORDER BY name"))
                keys = tuple(conn.execute(
                    "SELECT id, lookup, kind, username, secret, created_ns, revoked_ns "
                    "FROM auth_keys ORDER BY created_ns, id"))
                grants = tuple(conn.execute(
                    "SELECT username, repo, role FROM auth_grants ORDER BY username, repo"))
            finally:
                _end(conn, "COMMIT")
        return AuthRows(bool(enabled), users, keys, grants)

    def import_rows(self, rows: AuthRows) -> dict[str, int]:
        """Merge ``rows`` in, in one change: users, keys and grants the database lacks
        are added; where both hold a row, the database's stands, except that a key
        revoked in ``rows`` is revoked here too; auth is enabled if ``rows`` has it
        enabled (an import never turns auth off).  Returns the counts added (and
        revoked)."""
        def run(c, _):
            added = {"users": 0, "keys": 0, "grants": 0, "revoked": 0}
            if rows.enabled:
                c.execute("UPDATE auth_state SET enabled = true")
            for name, admin, created in rows.users:
                added["users"] += c.execute(
                    "INSERT INTO auth_users(name, admin, created_ns) VALUES(%s, %s, %s) "
                    "ON CONFLICT DO NOTHING", (name, bool(admin), created)).rowcount
            for key in rows.keys:
                added["keys"] += c.execute(
                    "INSERT INTO auth_keys(id, lookup, kind, username, secret, created_ns, "
                    "revoked_ns) VALUES(%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    tuple(key)).rowcount
                if key[6] is not None:
                    added["revoked"] += c.execute(
                        "UPDATE auth_keys SET revoked_ns = %s WHERE id = %s "
                        "AND revoked_ns IS NULL", (key[6], key[0])).rowcount
            for user, repo, role in rows.grants:
                added["grants"] += c.execute(
                    "INSERT INTO auth_grants(username, repo, role) VALUES(%s, %s, %s) "
                    "ON CONFLICT DO NOTHING", (user, repo, int(role))).rowcount
            return added
        return self._tx(run)


_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"


def _read_all(conn: psycopg.Connection) -> tuple[int, AuthSnapshot]:
    """(version, snapshot) of the whole auth state, in one REPEATABLE READ snapshot."""
    conn.execute(_READ)
    try:
        version, enabled = conn.execute("SELECT version, enabled FROM auth_state").fetchone()
        keys = conn.execute("SELECT lookup, kind, username, secret FROM auth_keys "
                            "WHERE revoked_ns IS NULL").fetchall()
        users = conn.execute("SELECT name, admin FROM auth_users").fetchall()
        grants = conn.execute("SELECT username, repo, role FROM auth_grants").fetchall()
    finally:
        _end(conn, "COMMIT")
    return version, AuthSnapshot.from_rows(enabled, keys, users, grants)


def _end(conn: psycopg.Connection, sql: str) -> None:
    """End the transaction (a broken connection has none left to end)."""
    if not conn.closed and not conn.broken and conn.info.transaction_status != 0:
        conn.execute(sql)


def _check_users(c, users: list[str], hint: str = "") -> None:
    if not users:
        return
    known = {r[0] for r in c.execute("SELECT name FROM auth_users WHERE name = ANY(%s)",
                                     (users,))}
    for user in users:
        if user not in known:
            raise AuthStoreError(f"no such user: {user}{hint}")


def _close_quietly(conn: psycopg.Connection) -> None:
    try:
        conn.close()
    except psycopg.Error:
        pass
