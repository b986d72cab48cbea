"""Opening a metadata store by name: the data folder's SQLite file (the default) or a
PostgreSQL URL (``--meta postgresql://user@host/db``).  For the wiring only
(``app.py``, ``cli``); everything else takes a ``pfs.interface.MetadataStore``.

A data folder served with ``--meta URL`` remembers the URL, without its password, in
``<data>/metadata.url`` (``remember``): admin commands on the folder (``s3gw log
--data ...``) then open the same database without being told.  A password comes from
libpq's usual places (``PGPASSWORD``, ``~/.pgpass``) or an explicit ``--meta``."""

from __future__ import annotations

import os

from .interface import MetadataStore

__all__ = ["open_metadata", "is_postgres_url", "describe", "remember", "remembered"]

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
