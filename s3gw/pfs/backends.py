"""Opening a metadata store by name: the data folder's SQLite file (the default) or a
PostgreSQL URL (``--meta postgresql://user@host/db``).  For the wiring only
(``app.py``, ``cli``); everything else takes a ``pfs.interface.MetadataStore``.

A data folder served with ``--meta URL`` remembers the URL, without its password, in
``<data>/metadata.url`` (``remember``): admin commands on the folder (``s3gw log
--data ...``) then open the same database without being told.  A password comes from
libpq's usual places (``PGPASSWORD``, ``~/.pgpass``) or an explicit ``--meta``.

The auth store follows the metadata (``open_auth_store``): a SQLite folder keeps it in
``<data>/auth.sqlite``; a folder whose metadata is in PostgreSQL keeps it in the same
database, shared by every gateway.  A folder that has an enabled ``auth.sqlite`` of its
own but PostgreSQL metadata (the way auth was shared before) is refused by a gateway
(``LocalAuthNotImported``) until ``s3gw auth import`` copies it into the database: a
gateway must not quietly serve with auth off, or with other keys than the ones its
operator set up."""

from __future__ import annotations

import os

from .interface import AuthStore, MetadataStore
from .roles import AuthStoreError

__all__ = ["open_metadata", "open_auth_store", "LocalAuthNotImported", "local_auth_pending",
           "import_local_auth", "is_postgres_url", "describe", "remember", "remembered"]

REMEMBERED = "metadata.url"


def is_postgres_url(meta: str | None) -> bool:
    return bool(meta) and meta.split("://", 1)[0] in ("postgresql", "postgres")


def open_metadata(data_dir: str, meta: str | None = None, *, durable: bool = True,
                  must_exist: bool = False) -> MetadataStore:
    """The store ``meta`` names (None or empty: ``<data_dir>/meta.sqlite``).

    Raises:
        FileNotFoundError: ``must_exist`` and the SQLite file is not there.
        pfs.postgres.SchemaMismatch: the database is not at this s3gw's schema version.
        psycopg.OperationalError: the database cannot be reached.
    """
    if not meta:
        meta = remembered(data_dir)
    if is_postgres_url(meta):
        from .postgres import PostgresMetadata
        return PostgresMetadata(meta)
    if meta:
        raise ValueError(f"--meta takes a postgresql:// URL (or nothing for the data "
                         f"folder's SQLite file), not {meta!r}")
    from .metadata import SqliteMetadata
    path = os.path.join(data_dir, "meta.sqlite")
    if must_exist and not os.path.exists(path):
        raise FileNotFoundError(path)
    return SqliteMetadata(path, durable=durable)


class LocalAuthNotImported(AuthStoreError):
    """The data folder's own ``auth.sqlite`` has auth enabled, but its metadata (and so
    its auth) is in PostgreSQL: the message says how to import it."""


def local_auth_pending(data_dir: str, meta: str | None = None) -> str | None:
    """One line if ``<data_dir>/auth.sqlite`` holds enabled auth that a PostgreSQL
    gateway of this folder would not use (import it first), else None."""
    if not meta:
        meta = remembered(data_dir)
    if not is_postgres_url(meta):
        return None
    from .auth import AUTH_FILE, local_auth_enabled
    if not local_auth_enabled(data_dir):
        return None
    from .postgres import _redacted
    path = os.path.join(data_dir, AUTH_FILE)
    return (f"{path} has auth enabled, but this folder's users and keys live in "
            f"{_redacted(meta)} now: run `s3gw auth import --data {data_dir}` to copy them "
            f"there (or remove the file to drop them)")


def open_auth_store(data_dir: str, meta: str | None = None, *, watch: bool = False,
                    check_local: bool = False) -> AuthStore:
    """The auth store of the metadata ``meta`` names: ``<data_dir>/auth.sqlite`` for the
    folder's SQLite metadata, the database's tables for PostgreSQL.

    Args:
        watch: a gateway's store (PostgreSQL: a background thread keeps the snapshot
            fresh; ``pfs.postgres_auth``).
        check_local: refuse a folder whose own ``auth.sqlite`` is enabled when the
            store is the database's (``local_auth_pending``).

    Raises:
        LocalAuthNotImported: ``check_local`` and the folder's auth is not imported.
        pfs.postgres.SchemaMismatch, psycopg.OperationalError: as ``open_metadata``.
    """
    if not meta:
        meta = remembered(data_dir)
    if is_postgres_url(meta):
        if check_local:
            problem = local_auth_pending(data_dir, meta)
            if problem is not None:
                raise LocalAuthNotImported(problem)
        from .postgres_auth import PostgresAuthStore
        return PostgresAuthStore(meta, watch=watch)
    if meta:
        raise ValueError(f"--meta takes a postgresql:// URL (or nothing for the data "
                         f"folder's SQLite file), not {meta!r}")
    from .auth import SqliteAuthStore
    return SqliteAuthStore(data_dir)


def import_local_auth(data_dir: str, meta: str | None = None) -> dict:
    """``s3gw auth import``: merge ``<data_dir>/auth.sqlite`` into the auth store of the
    folder's PostgreSQL database (``AuthStore.import_rows``), then set the file aside as
    ``auth.sqlite.imported-<time>`` so gateways start on the folder.  Returns the counts
    added, ``enabled`` (in the database, after), ``where`` and ``moved_to``.

    Raises:
        AuthStoreError: the folder's metadata is not in PostgreSQL, or it has no file.
    """
    import time

    from .auth import AUTH_FILE, SqliteAuthStore
    if not meta:
        meta = remembered(data_dir)
    path = os.path.join(data_dir, AUTH_FILE)
    if not is_postgres_url(meta):
        raise AuthStoreError(f"import copies {path} into the folder's PostgreSQL database, "
                             f"but this folder's metadata is its own SQLite file (pass "
                             f"--meta postgresql://...)")
    if not os.path.exists(path):
        raise AuthStoreError(f"nothing to import: no {path}")
    local = SqliteAuthStore(data_dir)
    try:
        rows = local.export_rows()
    finally:
        local.close()
    shared = open_auth_store(data_dir, meta)
    try:
        result: dict = dict(shared.import_rows(rows))
        result["enabled"] = shared.enabled
    finally:
        shared.close()
    aside = f"{path}.imported-{time.strftime('%Y%m%dT%H%M%S')}"
    os.replace(path, aside)
    from .postgres import _redacted
    result.update(where=_redacted(meta), moved_to=aside)
    return result


def describe(data_dir: str, meta: str | None) -> str:
    """Where the metadata lives, for log lines (no password)."""
    if is_postgres_url(meta):
        from .postgres import _redacted
        return _redacted(meta)
    return os.path.abspath(os.path.join(data_dir, "meta.sqlite"))


def remembered(data_dir: str) -> str | None:
    """The metadata URL the folder was served with (``remember``), or None."""
    try:
        with open(os.path.join(data_dir, REMEMBERED), encoding="utf-8") as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


def remember(data_dir: str, meta: str) -> None:
    """Record ``meta`` (its password left out) as the folder's metadata store."""
    from .postgres import _redacted
    text = _redacted(meta) + "\n"
    path = os.path.join(data_dir, REMEMBERED)
    if remembered(data_dir) == text.strip():
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
