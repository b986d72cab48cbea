"""Who may do what: roles, credentials and the immutable auth snapshot (pure values).

An auth store (``pfs.interface.AuthStore``: ``pfs.auth.SqliteAuthStore`` or
``pfs.postgres_auth.PostgresAuthStore``) persists users, keys and grants and hands
the server an :class:`AuthSnapshot`, the in-memory view the S3 layer's signature
verifiers and role checks read.  Nothing here does I/O, so
the S3 layer's pure auth modules import this, not the store.  ``pfs.auth``
re-exports every name here.
"""

from __future__ import annotations

import enum
import hashlib
import string
from dataclasses import dataclass

__all__ = ["AuthStoreError", "AuthSnapshot", "AuthRows", "Credentials", "Grant", "KeyInfo", "Role",
           "PAIR", "TOKEN", "check_user", "token_hash"]

PAIR, TOKEN = "pair", "token"

_USER_CHARS = frozenset(string.ascii_letters + string.digits + "-_.@")


class Role(enum.IntEnum):
    READER = 1
    WRITER = 2
    OWNER = 3

    @classmethod
    def parse(cls, text: str) -> "Role":
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise AuthStoreError(f"unknown role {text!r} (reader, writer or owner)") from None

    @property
    def label(self) -> str:
        return self.name.lower()


class AuthStoreError(Exception):
    """A refused administrative change (unknown user or key, bad name, ...)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A newly created key; the only time its secret is shown."""

    user: str
    access_key: str
    secret_key: str
    kind: str = PAIR


@dataclass(frozen=True, slots=True)
class KeyInfo:
    access_key: str           # the public id: the access key, or token-<hash prefix>
    user: str
    kind: str
    created_ns: int
    revoked_ns: int | None


@dataclass(frozen=True, slots=True)
class Grant:
    user: str
    repo: str
    role: Role


@dataclass(frozen=True, slots=True)
class AuthRows:
    """Everything an auth store holds, as rows: what ``export_rows`` gives and
    ``import_rows`` merges (``s3gw migrate`` and ``s3gw auth import`` copy auth
    between backends with them).  Secrets of pairs are in it: handle it as the
    store itself."""

    enabled: bool
    users: tuple[tuple[str, bool, int], ...]                 # (name, admin, created_ns)
    # (id, lookup, kind, user, secret or None, created_ns, revoked_ns or None)
    keys: tuple[tuple[str, str, str, str, str | None, int, int | None], ...]
    grants: tuple[tuple[str, str, int], ...]                 # (user, repo, role)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_user(name: str) -> str:
    if not name or len(name) > 64 or not set(name) <= _USER_CHARS:
        raise AuthStoreError(f"invalid user name {name!r} (letters, digits, - _ . @; at most 64)")
    return name


class AuthSnapshot:
    """An immutable view of the auth store, as of one moment.

    ``secret(access_key)`` is the ``secret_lookup`` the signature verifiers
    take: the secret, or ``None`` for an unknown or revoked key.
    """

    __slots__ = ("enabled", "_pairs", "_tokens", "_admins", "_users", "_grants", "_granted")

    def __init__(self, enabled: bool, pairs: dict[str, tuple[str, str]],
                 tokens: dict[str, str], admins: frozenset[str], users: frozenset[str],
                 grants: dict[tuple[str, str], Role]):
        self.enabled = enabled
        self._pairs = pairs        # access key -> (secret, user), live keys only
        self._tokens = tokens      # sha256(token) -> user, live tokens only
        self._admins = admins
        self._users = users
        self._grants = grants
        self._granted = frozenset(repo for _user, repo in grants)   # repos with any grant

    @classmethod
    def disabled(cls) -> "AuthSnapshot":
        return cls(False, {}, {}, frozenset(), frozenset(), {})

    @classmethod
    def from_rows(cls, enabled: bool, live_keys, users, grants) -> "AuthSnapshot":
        """The view of a store's rows: ``live_keys`` (lookup, kind, user, secret) of the
        keys not revoked, ``users`` (name, admin), ``grants`` (user, repo, role)."""
        pairs, tokens = {}, {}
        for lookup, kind, user, secret in live_keys:
            if kind == TOKEN:
                tokens[lookup] = user
            else:
                pairs[lookup] = (secret, user)
        names = {name: bool(admin) for name, admin in users}
        return cls(bool(enabled), pairs, tokens, frozenset(u for u, a in names.items() if a),
                   frozenset(names), {(u, r): Role(role) for u, r, role in grants})

    def secret(self, access_key: str) -> str | None:
        pair = self._pairs.get(access_key)
        if pair is not None:
            return pair[0]
        if access_key and token_hash(access_key) in self._tokens:
            return access_key
        return None

    def user_of(self, access_key: str) -> str | None:
        pair = self._pairs.get(access_key)
        if pair is not None:
            return pair[1]
        return self._tokens.get(token_hash(access_key)) if access_key else None

    def is_admin(self, user: str) -> bool:
        return user in self._admins

    def role(self, user: str, repo: str) -> Role | None:
        """The user's role on *repo* (admins: OWNER everywhere), or None."""
        if user in self._admins:
            return Role.OWNER
        return self._grants.get((user, repo))

    def may(self, user: str, repo: str, needed: Role) -> bool:
        role = self.role(user, repo)
        return role is not None and role >= needed

    def granted(self, repo: str) -> bool:
        """Whether anyone holds a role on *repo* (an administrator may grant roles on a
        repo before it exists)."""
        return repo in self._granted
