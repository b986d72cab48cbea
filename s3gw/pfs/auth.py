"""The auth store: users, access keys and per-repo roles, in ``<data>/auth.sqlite``.

Theory of operation
-------------------
Auth is off until ``enable()`` (``s3gw auth enable``), which creates the
first admin and its key.  Everything lives in one small SQLite file next to
the metadata, separate from it so that its file mode can be tighter:

* ``config``   -- ``enabled`` (``"1"``/``"0"``).
* ``users``    -- name, admin flag, creation time.
* ``keys``     -- one row per credential.  Two kinds:

  - ``pair``: an S3-style access key id + secret.  SigV4/SigV2 are HMACs, so
    the server needs the secret itself: it is stored as is.
  - ``token``: Pachyderm's convention, where a client uses one auth token
    as both access key and secret.  The access key arrives with every
    request, so the token is never stored: the row holds its SHA-256, and a
    request's access key is hashed to find it (the secret is then the
    access key itself).  Such a key is listed as ``token-<16 hex>`` (a
    prefix of the hash), which ``revoke_key`` accepts, as it does the token.

  Revoking keeps the row with ``revoked_ns`` set (listings show it).
* ``grants``   -- (user, repo) -> role: ``reader`` < ``writer`` < ``owner``;
  each role includes the ones before it.  Admin users need no grants.

Protection of secrets: the file is created mode 0600 (and put back to 0600
if found looser), its rollback journal inherits that mode, so another local
user cannot read it; the owner of the data folder (and root) can -- a SigV4
server must be able to recover every pair secret.  Tokens are stored only
as hashes.

The server reads through :meth:`SqliteAuthStore.snapshot`, an immutable
in-memory view rebuilt only when the file changed (``PRAGMA data_version``,
one cheap query, made at most every ``AUTH_RECHECK`` seconds by the server),
so ``s3gw auth key revoke`` on the command line takes effect on a running
server within that delay (50 ms), without a restart.

All methods block (tiny SQLite transactions); ``snapshot()`` is cheap enough
to call on the event loop thread.  This is the auth store of a data folder whose
metadata is its own SQLite file; a gateway whose metadata is in PostgreSQL keeps
its auth in that database (``pfs.postgres_auth``, the same ``pfs.interface.AuthStore``).
"""

from __future__ import annotations

import os
import secrets as _secrets
import sqlite3
import string
import threading
import time

from .roles import (PAIR, TOKEN, AuthRows, AuthSnapshot, AuthStoreError, Credentials, Grant,
                    KeyInfo, Role, check_user, token_hash)

__all__ = [
    "AuthStoreError",
    "AuthSnapshot",
    "AuthRows",
    "Credentials",
    "Grant",
    "KeyInfo",
    "Role",
    "SqliteAuthStore",
    "ADMIN_USER",
    "AUTH_FILE",
    "local_auth_enabled",
]

AUTH_FILE = "auth.sqlite"
ADMIN_USER = "admin"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS config(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users(
    name TEXT PRIMARY KEY, admin INTEGER NOT NULL, created_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS keys(
    id TEXT PRIMARY KEY, lookup TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
    user TEXT NOT NULL, secret TEXT, created_ns INTEGER NOT NULL, revoked_ns INTEGER);
CREATE TABLE IF NOT EXISTS grants(
    user TEXT NOT NULL, repo TEXT NOT NULL, role INTEGER NOT NULL, PRIMARY KEY(user, repo));
"""


def local_auth_enabled(data_dir: str) -> bool:
    """Whether ``<data_dir>/auth.sqlite`` exists with auth enabled (read only: the file
    is neither created nor changed)."""
    path = os.path.join(data_dir, AUTH_FILE)
    if not os.path.exists(path):
        return False
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name='config'").fetchone() is None:
            return False
        row = conn.execute("SELECT value FROM config WHERE key='enabled'").fetchone()
        return row is not None and row[0] == "1"
    finally:
        conn.close()


_KEY_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


def new_pair() -> tuple[str, str]:
    """A new (access key, secret) pair."""
    access = "S3GW" + "".join(_secrets.choice(_KEY_ALPHABET) for _ in range(16))
    return access, "".join(_secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def new_token() -> tuple[str, str]:
    """A new token and its SHA-256 (what is stored)."""
    value = _secrets.token_hex(20)
    return value, token_hash(value)


def token_id(digest: str) -> str:
    """The listed id of a token key: a prefix of its hash."""
    return f"token-{digest[:16]}"


class SqliteAuthStore:
    """The embedded auth store (see the module docstring)."""

    def __init__(self, data_dir: str, *, clock=time.time_ns):
        self.path = os.path.join(data_dir, AUTH_FILE)
        self.clock = clock
        os.makedirs(data_dir, exist_ok=True)
        if not os.path.exists(self.path):
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        if os.stat(self.path).st_mode & 0o077:
            os.chmod(self.path, 0o600)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                     timeout=30.0)
        self._conn.execute("PRAGMA synchronous=FULL")
        with self._lock:
            self._conn.executescript(_SCHEMA)
        self._version: int | None = None
        self._checked = 0.0
        self._snapshot = AuthSnapshot.disabled()

    def close(self) -> None:
        self._conn.close()

    # -- reading ----------------------------------------------------------------------
    def snapshot(self, max_age: float = 0.0) -> AuthSnapshot:
        """The current view; rebuilt only when the file changed since the last check.

        Args:
            max_age: seconds a view may go unchecked.  0 checks at every call
                (one ``PRAGMA data_version``).  The server passes a few tens of
                milliseconds: the check is a SQLite call, which gives up the GIL
                and, on a busy server, waits to get it back (measured ~200 us of
                wall time per request under load), while a change made with
                ``s3gw auth`` then applies within that delay.  The server's own
                writes (``claim_repo`` ...) apply at once either way.
        """
        now = time.monotonic()
        if max_age > 0 and self._version is not None and now - self._checked < max_age:
            return self._snapshot
        with self._lock:
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._version:
                self._snapshot = self._load()
                self._version = version
            self._checked = now
            return self._snapshot

    def _load(self) -> AuthSnapshot:
        c = self._conn
        c.execute("BEGIN")
        try:
            row = c.execute("SELECT value FROM config WHERE key='enabled'").fetchone()
            return AuthSnapshot.from_rows(
                row is not None and row[0] == "1",
                c.execute("SELECT lookup, kind, user, secret FROM keys WHERE revoked_ns IS NULL"),
                c.execute("SELECT name, admin FROM users"),
                c.execute("SELECT user, repo, role FROM grants"))
        finally:
            c.execute("COMMIT")

    @property
    def enabled(self) -> bool:
        return self.snapshot().enabled

    def list_keys(self, user: str | None = None) -> list[KeyInfo]:
        sql = "SELECT id, user, kind, created_ns, revoked_ns FROM keys"
        args: tuple = ()
        if user is not None:
            sql += " WHERE user = ?"
            args = (user,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY created_ns, id", args).fetchall()
        return [KeyInfo(*row) for row in rows]

    def grants(self, user: str | None = None, repo: str | None = None) -> list[Grant]:
        sql, args = "SELECT user, repo, role FROM grants WHERE 1=1", []
        if user is not None:
            sql += " AND user = ?"
            args.append(user)
        if repo is not None:
            sql += " AND repo = ?"
            args.append(repo)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY repo, user", args).fetchall()
        return [Grant(u, r, Role(role)) for u, r, role in rows]

    def users(self) -> list[tuple[str, bool]]:
        with self._lock:
            return [(n, bool(a)) for n, a in
                    self._conn.execute("SELECT name, admin FROM users ORDER BY name")]

    # -- changing ---------------------------------------------------------------------
    def _tx(self, fn):
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                result = fn(c)
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")
            self._version = None  # data_version only moves for *other* connections' commits
            return result

    def enable(self) -> Credentials:
        """Turn auth on and create the first admin's key.

        Raises:
            AuthStoreError: auth is already enabled.
        """
        def run(c):
            row = c.execute("SELECT value FROM config WHERE key='enabled'").fetchone()
            if row is not None and row[0] == "1":
                raise AuthStoreError("auth is already enabled for this data folder")
            c.execute("INSERT OR REPLACE INTO config(key, value) VALUES('enabled', '1')")
            return self._new_key(c, ADMIN_USER, admin=True, token=False)
        return self._tx(run)

    def disable(self) -> None:
        self._tx(lambda c: c.execute(
            "INSERT OR REPLACE INTO config(key, value) VALUES('enabled', '0')"))

    def create_key(self, user: str, *, admin: bool = False, token: bool = False) -> Credentials:
        """Create *user* if missing (an admin with ``admin=True``) and a new key for it."""
        check_user(user)
        return self._tx(lambda c: self._new_key(c, user, admin=admin, token=token))

    def _new_key(self, c, user: str, *, admin: bool, token: bool) -> Credentials:
        now = self.clock()
        c.execute("INSERT OR IGNORE INTO users(name, admin, created_ns) VALUES(?, 0, ?)",
                  (user, now))
        if admin:
            c.execute("UPDATE users SET admin = 1 WHERE name = ?", (user,))
        if token:
            value, digest = new_token()
            c.execute("INSERT INTO keys(id, lookup, kind, user, secret, created_ns) "
                      "VALUES(?, ?, ?, ?, NULL, ?)", (token_id(digest), digest, TOKEN, user, now))
            return Credentials(user, value, value, TOKEN)
        access, secret = new_pair()
        c.execute("INSERT INTO keys(id, lookup, kind, user, secret, created_ns) "
                  "VALUES(?, ?, ?, ?, ?, ?)", (access, access, PAIR, user, secret, now))
        return Credentials(user, access, secret, PAIR)

    def revoke_key(self, key: str) -> KeyInfo:
        """Revoke a key by its access key, its listed id, or (tokens) the token itself.

        Raises:
            AuthStoreError: no such key.
        """
        def run(c):
            row = c.execute("SELECT id FROM keys WHERE id = ? OR lookup = ? OR lookup = ?",
                            (key, key, token_hash(key))).fetchone()
            if row is None:
                raise AuthStoreError(f"no such key: {key}")
            c.execute("UPDATE keys SET revoked_ns = COALESCE(revoked_ns, ?) WHERE id = ?",
                      (self.clock(), row[0]))
            return KeyInfo(*c.execute("SELECT id, user, kind, created_ns, revoked_ns FROM keys "
                                      "WHERE id = ?", (row[0],)).fetchone())
        return self._tx(run)

    def grant(self, user: str, repo: str, role: Role | str) -> Grant:
        """Give *user* *role* on *repo* (replacing any role it had there).

        Raises:
            AuthStoreError: unknown user or role.
        """
        role = Role.parse(role) if isinstance(role, str) else Role(role)

        def run(c):
            if c.execute("SELECT 1 FROM users WHERE name = ?", (user,)).fetchone() is None:
                raise AuthStoreError(f"no such user: {user} (create a key for it first)")
            c.execute("INSERT OR REPLACE INTO grants(user, repo, role) VALUES(?, ?, ?)",
                      (user, repo, int(role)))
            return Grant(user, repo, role)
        return self._tx(run)

    def revoke(self, user: str, repo: str) -> bool:
        """Remove *user*'s role on *repo*; False if it had none."""
        return self._tx(lambda c: c.execute("DELETE FROM grants WHERE user = ? AND repo = ?",
                                            (user, repo)).rowcount > 0)

    def claim_repo(self, user: str, repo: str) -> None:
        """Make *user* the owner of a repo it just created, unless roles on that repo were
        granted before it existed: those stand as they are (the creator keeps its own)."""
        self._tx(lambda c: c.execute(
            "INSERT INTO grants(user, repo, role) SELECT ?, ?, ? "
            "WHERE NOT EXISTS (SELECT 1 FROM grants WHERE repo = ?)",
            (user, repo, int(Role.OWNER), repo)))

    def set_repo_grants(self, repo: str, roles: dict[str, Role]) -> None:
        """Replace every grant on *repo* with *roles* (user -> role), atomically.

        Raises:
            AuthStoreError: a user that does not exist (nothing is changed).
        """
        def run(c):
            for user in roles:
                if c.execute("SELECT 1 FROM users WHERE name = ?", (user,)).fetchone() is None:
                    raise AuthStoreError(f"no such user: {user}")
            c.execute("DELETE FROM grants WHERE repo = ?", (repo,))
            c.executemany("INSERT INTO grants(user, repo, role) VALUES(?, ?, ?)",
                          [(u, repo, int(r)) for u, r in roles.items()])
        self._tx(run)

    def drop_repo(self, repo: str) -> None:
        """Forget every grant on a deleted repo (a new repo of that name starts clean)."""
        self._tx(lambda c: c.execute("DELETE FROM grants WHERE repo = ?", (repo,)))

    # -- copying between backends -------------------------------------------------------
    def export_rows(self) -> AuthRows:
        """Everything, in one read transaction (secrets included)."""
        with self._lock:
            c = self._conn
            c.execute("BEGIN")
            try:
                row = c.execute("SELECT value FROM config WHERE key='enabled'").fetchone()
                users = tuple((n, bool(a), t) for n, a, t in c.execute(
                    "SELECT name, admin, created_ns FROM users ORDER BY name"))
                keys = tuple(c.execute(
                    "SELECT id, lookup, kind, user, secret, created_ns, revoked_ns FROM keys "
                    "ORDER BY created_ns, id"))
                grants = tuple(c.execute("SELECT user, repo, role FROM grants ORDER BY user, repo"))
            finally:
                c.execute("COMMIT")
        return AuthRows(row is not None and row[0] == "1", users, keys, grants)

    def import_rows(self, rows: AuthRows) -> dict[str, int]:
        """Merge ``rows`` in, in one transaction: users, keys and grants this store lacks
        are added; where both hold a row, this store's stands, except that a key revoked
        in ``rows`` is revoked here too; auth is enabled if ``rows`` has it enabled (an
        import never turns auth off).  Returns the counts added (and revoked)."""
        def run(c):
            added = {"users": 0, "keys": 0, "grants": 0, "revoked": 0}
            if rows.enabled:
                c.execute("INSERT OR REPLACE INTO config(key, value) VALUES('enabled', '1')")
            for name, admin, created in rows.users:
                added["users"] += c.execute(
                    "INSERT OR IGNORE INTO users(name, admin, created_ns) VALUES(?, ?, ?)",
                    (name, int(admin), created)).rowcount
            for key in rows.keys:
                added["keys"] += c.execute(
                    "INSERT OR IGNORE INTO keys(id, lookup, kind, user, secret, created_ns, "
                    "revoked_ns) VALUES(?, ?, ?, ?, ?, ?, ?)", key).rowcount
                if key[6] is not None:
                    added["revoked"] += c.execute(
                        "UPDATE keys SET revoked_ns = ? WHERE id = ? AND revoked_ns IS NULL",
                        (key[6], key[0])).rowcount
            for user, repo, role in rows.grants:
                added["grants"] += c.execute(
                    "INSERT OR IGNORE INTO grants(user, repo, role) VALUES(?, ?, ?)",
                    (user, repo, int(role))).rowcount
            return added
        return self._tx(run)
