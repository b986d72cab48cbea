"""``s3gw migrate --from DIR --meta postgresql://... --chunks s3://...``: move a local
data folder's store past one machine.

1. **Chunks** (first: the crash order of every write, chunks before the metadata
   that names them).  The chunks the folder's objects and staged upload parts
   reference (garbage is left behind) are read from the folder's store, each one's
   length and XXH3 checked by the read and its BLAKE3 checked against its name, and
   PUT to the object store.  Chunks the object store already lists at the same
   size are skipped: a second run resumes where the first stopped.
2. **Metadata**: every table of ``meta.sqlite`` that the PostgreSQL schema has,
   row by row (``INSERT ... ON CONFLICT DO NOTHING``: a second run adds only what is
   missing), in one read snapshot of the SQLite file; ``repos`` and ``branches``
   last, so a half-copied database shows no repo.
3. **Verify**: every referenced chunk is in the object store; every table holds as
   many rows as the source's; the stats (objects, bytes) agree; each branch has the
   same head, and its tree lists the same files (path, size, ETag, commit).

The source folder must not be served meanwhile (its serve lock is taken).  The
destination database must be this store's (empty, or a previous run's): one that
holds repos the folder does not is refused.  ``--to DIR`` also prepares a data folder
for a gateway: the URLs recorded, ``auth.sqlite`` and ``pps.sqlite`` copied.
"""

from __future__ import annotations

import os
import sqlite3
import sys

from .progress import track

__all__ = ["run_migrate", "MigrateError"]

# PostgreSQL tables in copy order: what the others point at first, repos and branches last
_LAST = ("repos", "branches")
_BATCH_ROWS = 1000
_BATCH_CHUNKS = 32


class MigrateError(Exception):
    """The move cannot go on (the message says why)."""


def run_migrate(args) -> int:
    try:
        _migrate(args)
    except MigrateError as exc:
        print(f"s3gw: migrate: {exc}", file=sys.stderr)
        return 1
    return 0


def _migrate(args) -> None:
    from ..app import DataFolderBusy, lock_data_folder
    from ..pfs.backends import is_postgres_url, remembered
    from ..pfs.postgres import migrate as migrate_schema
    src = args.from_dir
    if not os.path.exists(os.path.join(src, "meta.sqlite")):
        raise MigrateError(f"{src} is not a data folder with its own metadata (no meta.sqlite)")
    if remembered(src):
        raise MigrateError(f"{src} keeps its metadata in {remembered(src)} already")
    if not is_postgres_url(args.meta):
        raise MigrateError("--from needs --meta postgresql://... (the destination database)")
    if not args.chunks:
        raise MigrateError("--from needs --chunks s3://... (the destination object store)")
    try:
        lock = lock_data_folder(src)
    except DataFolderBusy as exc:
        raise MigrateError(f"{exc}: stop it first") from None
    try:
        migrate_schema(args.meta)
        refs = _referenced_chunks(src)
        dest = _open_dest_store(args.chunks)
        try:
            _copy_chunks(src, dest, refs)
            _copy_metadata(src, args.meta)
            _verify(src, args.meta, dest, refs)
        finally:
            dest.close()
        if args.to:
            _prepare_folder(src, args.to, args.meta, args.chunks)
    finally:
        lock.close()


def _open_dest_store(url: str):
    from ..store.s3chunks import S3ChunkStore
    from ..store.s3url import S3UrlError, is_s3_url, parse_s3_url
    if not is_s3_url(url):
        raise MigrateError(f"--chunks takes an s3:// URL, not {url!r}")
    try:
        return S3ChunkStore(parse_s3_url(url).url())
    except S3UrlError as exc:
        raise MigrateError(f"--chunks: {exc}") from None


def _referenced_chunks(src: str) -> dict:
    """{chunk id: ChunkRef} of every stored chunk the folder's metadata references."""
    from ..pfs.metadata import SqliteMetadata
    from ..store.manifest import Manifest
    meta = SqliteMetadata(os.path.join(src, "meta.sqlite"))
    try:
        refs = {}
        for blob in meta.referenced_manifests():
            for ref in Manifest.unpack(blob).chunks:
                if ref.data is None:
                    refs[bytes(ref.id)] = ref
        return refs
    finally:
        meta.close()


def _copy_chunks(src: str, dest, refs: dict) -> None:
    from ..store import hashing
    from ..store.backends import open_chunk_store
    present = {bytes(cid): size for cid, _mtime, size in
               track(dest.iter_chunks(), "listing the object store", unit="chunk")}
    todo = [ref for cid, ref in sorted(refs.items()) if present.get(cid) != ref.length]
    print(f"chunks: {len(refs)} referenced, {len(refs) - len(todo)} in the object store "
          f"already, {len(todo)} to copy ({sum(r.length for r in todo)} bytes)")
    source = open_chunk_store(src, owner=False)
    try:
        batch = dest.batch()
        pending = 0
        for ref in track(todo, "copying chunks", unit="chunk"):
            data = source.read(ref)                     # length and XXH3 checked
            if hashing.chunk_id(data) != bytes(ref.id):
                raise MigrateError(f"chunk {ref.id.hex()} in {src} does not hash to its name "
                                   f"(run `s3gw fsck --data {src}`)")
            batch.put(ref.id, data)
            pending += 1
            if pending >= _BATCH_CHUNKS:
                batch.sync()
                batch = dest.batch()
                pending = 0
        batch.sync()
    finally:
        source.close()


def _pg_tables(conn) -> dict[str, list[str]]:
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name <> 's3gw_schema' "
        "ORDER BY table_name, ordinal_position").fetchall()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, []).append(column)
    return tables


def _copy_order(tables) -> list[str]:
    return sorted(t for t in tables if t not in _LAST) + [t for t in _LAST if t in tables]


def _copy_metadata(src: str, url: str) -> None:
    import psycopg
    lite = sqlite3.connect(f"file:{os.path.join(src, 'meta.sqlite')}?mode=ro", uri=True)
    try:
        lite.execute("BEGIN")                          # one snapshot of the source
        with psycopg.connect(url, autocommit=True) as pg:
            tables = _pg_tables(pg)
            theirs = {r[0] for r in pg.execute("SELECT name FROM repos")}
            ours = {r[0] for r in lite.execute("SELECT name FROM repos")}
            if theirs - ours:
                raise MigrateError(f"the database holds repos the folder does not "
                               f"({', '.join(sorted(theirs - ours)[:5])}): it is another store")
            for table in _copy_order(tables):
                cols = _common_columns(lite, table, tables[table])
                if not cols:
                    continue
                total = lite.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                names = ", ".join(cols)
                insert = (f"INSERT INTO {table}({names}) VALUES "
                          f"({', '.join(['%s'] * len(cols))}) ON CONFLICT DO NOTHING")
                rows = lite.execute(f"SELECT {names} FROM {table}")
                batch = []
                for row in track(rows, f"copying {table}", total=total, unit="row"):
                    batch.append(row)
                    if len(batch) >= _BATCH_ROWS:
                        _insert(pg, insert, batch)
                        batch = []
                if batch:
                    _insert(pg, insert, batch)
            # objects.id is an identity column: new objects number on from the copied ones
            pg.execute("SELECT setval(pg_get_serial_sequence('objects', 'id'), m) "
                       "FROM (SELECT max(id) AS m FROM objects) s WHERE m IS NOT NULL")
        lite.execute("ROLLBACK")
    finally:
        lite.close()


def _insert(pg, sql: str, rows) -> None:
    with pg.transaction():
        with pg.cursor() as cur:
            cur.executemany(sql, rows)


def _common_columns(lite, table: str, pg_columns: list[str]) -> list[str]:
    have = {r[1] for r in lite.execute(f"PRAGMA table_info({table})")}
    return [c for c in pg_columns if c in have]


def _verify(src: str, url: str, dest, refs: dict) -> None:
    import psycopg

    from ..pfs.metadata import SqliteMetadata
    from ..pfs.postgres import PostgresMetadata
    stored = {bytes(cid) for cid in track(dest.iter_ids(), "verifying chunks", unit="chunk")}
    missing = [cid for cid in refs if cid not in stored]
    if missing:
        raise MigrateError(f"{len(missing)} chunks missing in the object store after the copy "
                           f"(first {missing[0].hex()}): run the migrate again")
    lite = sqlite3.connect(f"file:{os.path.join(src, 'meta.sqlite')}?mode=ro", uri=True)
    try:
        with psycopg.connect(url, autocommit=True) as pg:
            for table, columns in _pg_tables(pg).items():
                if table == "meta" or not _common_columns(lite, table, columns):
                    continue
                a = lite.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                b = pg.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                if a != b:
                    raise MigrateError(f"table {table}: {a} rows in the folder, {b} in the database")
    finally:
        lite.close()
    old = SqliteMetadata(os.path.join(src, "meta.sqlite"))
    new = PostgresMetadata(url)
    try:
        if old.stats() != new.stats():
            raise MigrateError(f"stats differ: folder {old.stats()}, database {new.stats()}")
        branches = old.list_branches()
        files = 0
        for b in track(branches, "comparing trees", unit="branch"):
            if new.get_branch(b.repo, b.name).head != b.head:
                raise MigrateError(f"branch {b.name}.{b.repo}: another head in the database")
            files += _compare_tree(old, new, b.repo, b.name)
    finally:
        old.close()
        new.close()
    print(f"verified: {len(refs)} chunks in the object store; {len(branches)} branches, "
          f"{files} files, the same in the folder and the database")


def _compare_tree(old, new, repo: str, branch: str) -> int:
    after = None
    count = 0
    while True:
        a = old.list_files(repo, branch, after=after, limit=1000)
        b = new.list_files(repo, branch, after=after, limit=1000)
        key = [(f.path, f.object.size, f.object.etag, f.commit_id) for f in a]
        if key != [(f.path, f.object.size, f.object.etag, f.commit_id) for f in b]:
            raise MigrateError(f"branch {branch}.{repo}: its files differ in the database")
        count += len(a)
        if len(a) < 1000:
            return count
        after = a[-1].path


def _prepare_folder(src: str, to: str, meta: str, chunks: str) -> None:
    """A data folder for a gateway on the moved store: URLs recorded, the folder's
    users and keys (auth.sqlite) and pipelines (pps.sqlite) copied once."""
    from ..pfs.backends import remember
    from ..store.backends import open_chunk_store
    os.makedirs(to, exist_ok=True)
    if os.path.exists(os.path.join(to, "meta.sqlite")):
        raise MigrateError(f"{to} has metadata of its own: name a new folder with --to")
    for name in ("auth.sqlite", "pps.sqlite"):
        source, target = os.path.join(src, name), os.path.join(to, name)
        if os.path.exists(source) and not os.path.exists(target):
            a, b = sqlite3.connect(source), sqlite3.connect(target + ".tmp")
            try:
                a.backup(b)
            finally:
                a.close()
                b.close()
            os.replace(target + ".tmp", target)
    open_chunk_store(to, chunks).close()         # records chunks.url
    remember(to, meta)
    print(f"prepared {to}: s3gw serve --data {to} (metadata and chunks recorded)")
