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

``s3gw migrate --from DIR --to NEW`` where ``DIR`` is served on PostgreSQL + an object
store goes the other way: into the new local folder ``NEW``, the same steps and checks
(every gateway of that database stopped first).

4. **Auth**: the folder's users, keys (secrets included), roles and whether auth is
   on (``auth.sqlite``) are merged into the database's auth tables, where every
   gateway reads them (``AuthStore.import_rows``: a second run adds nothing), and
   checked there.  Going back, the database's auth becomes the new folder's
   ``auth.sqlite``.

The source folder must not be served meanwhile (its serve lock is taken).  The
destination database must be this store's (empty, or a previous run's): one that
holds repos the folder does not is refused.  ``--to DIR`` also prepares a data folder
for a gateway: the URLs recorded (its users, keys, pipelines and jobs are in the
database; the way back writes them into ``auth.sqlite`` and ``pps.sqlite``,
``cli/migrate_pps.py``).
"""

from __future__ import annotations

import os
import sqlite3
import sys

from .migrate_pps import pipelines_into_database, pipelines_out_of_database
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
    from ..pfs.backends import remembered
    src = args.from_dir
    if remembered(src) and not os.path.exists(os.path.join(src, "meta.sqlite")):
        _migrate_back(args)
        return
    _migrate_out(args)


def _migrate_out(args) -> None:
    """A local folder -> PostgreSQL + an object store."""
    from ..app import DataFolderBusy, lock_data_folder
    from ..pfs.backends import is_postgres_url, remembered
    from ..pfs.metadata import SqliteMetadata
    from ..pfs.postgres import PostgresMetadata
    from ..pfs.postgres import migrate as migrate_schema
    from ..store.backends import open_chunk_store
    src = args.from_dir
    if not os.path.exists(os.path.join(src, "meta.sqlite")):
        raise MigrateError(f"{src} is not a data folder (no meta.sqlite, no metadata.url)")
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
        old = SqliteMetadata(os.path.join(src, "meta.sqlite"))
        source = open_chunk_store(src, owner=False)
        dest = _open_dest_store(args.chunks)
        try:
            refs = _referenced_chunks(old)
            _copy_chunks(source, dest, refs, src)
            import psycopg
            lite = _sqlite_ro(src)
            try:
                with psycopg.connect(args.meta, autocommit=True) as pg:
                    _copy_metadata(_SqliteSide(lite), _PgSide(pg))
                    _verify_rows(_SqliteSide(lite), _PgSide(pg))
            finally:
                lite.close()
            new = PostgresMetadata(args.meta)
            try:
                _verify(old, new, dest, refs)
            finally:
                new.close()
            _copy_auth_out(src, args.meta)
        finally:
            old.close()
            source.close()
            dest.close()
        _pipelines(pipelines_into_database, src, args.meta)
        if args.to:
            _prepare_folder(src, args.to, args.meta, args.chunks)
    finally:
        lock.close()


def _migrate_back(args) -> None:
    """A folder served on PostgreSQL + an object store -> a new local folder (``--to``):
    every gateway of that database must be stopped first (nothing here can tell)."""
    from ..app import DataFolderBusy, lock_data_folder
    from ..pfs.backends import remembered
    from ..pfs.metadata import SqliteMetadata
    from ..pfs.postgres import PostgresMetadata
    from ..store.backends import open_chunk_store, recorded_chunks_url
    from ..store.chunkstore import LocalChunkStore
    src, to = args.from_dir, args.to
    url = args.meta or remembered(src)
    if not to:
        raise MigrateError(f"{src} is served from {url}: name the new local folder with --to")
    if recorded_chunks_url(src) is None:
        raise MigrateError(f"{src} keeps its chunks in its own folder: nothing to bring back")
    if os.path.exists(os.path.join(to, "metadata.url")) or os.path.exists(
            os.path.join(to, "chunks.url")):
        raise MigrateError(f"{to} is served from shared stores: name a new folder with --to")
    os.makedirs(to, exist_ok=True)
    try:
        lock = lock_data_folder(to)
    except DataFolderBusy as exc:
        raise MigrateError(str(exc)) from None
    try:
        old = PostgresMetadata(url)
        new = SqliteMetadata(os.path.join(to, "meta.sqlite"))
        _ = new.uploads                       # the staging tables, as a server makes them
        source = open_chunk_store(src, owner=False)
        dest = LocalChunkStore(to)
        try:
            refs = _referenced_chunks(old)
            _copy_chunks(source, dest, refs, src)
            import psycopg
            lite = sqlite3.connect(os.path.join(to, "meta.sqlite"), timeout=30)
            try:
                with psycopg.connect(url, autocommit=False) as pg:
                    pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one snapshot
                    _copy_metadata(_PgSide(pg), _SqliteSide(lite))
                    _verify_rows(_PgSide(pg), _SqliteSide(lite))
                    pg.rollback()
            finally:
                lite.close()
            _verify(old, new, dest, refs)
        finally:
            old.close()
            new.close()
            source.close()
            dest.close()
        _copy_auth_back(url, to)
        _pipelines(pipelines_out_of_database, url, to)
        print(f"prepared {to}: s3gw serve --data {to} (local metadata and chunks)")
    finally:
        lock.close()


def _copy_auth_out(src: str, url: str) -> None:
    """The folder's ``auth.sqlite`` merged into the database's auth, and checked."""
    from ..pfs.auth import AUTH_FILE, SqliteAuthStore
    from ..pfs.postgres_auth import PostgresAuthStore
    if not os.path.exists(os.path.join(src, AUTH_FILE)):
        print("auth: the folder has no auth.sqlite: nothing to copy")
        return
    _copy_auth(lambda: SqliteAuthStore(src), lambda: PostgresAuthStore(url), "the database")


def _copy_auth_back(url: str, to: str) -> None:
    """The database's auth merged into the new folder's ``auth.sqlite``, and checked."""
    from ..pfs.auth import SqliteAuthStore
    from ..pfs.postgres_auth import PostgresAuthStore
    _copy_auth(lambda: PostgresAuthStore(url), lambda: SqliteAuthStore(to),
               f"{to}/auth.sqlite")


def _copy_auth(open_source, open_dest, where: str) -> None:
    """Every row of one auth store merged into another (``import_rows``), then checked."""
    source = open_source()
    try:
        rows = source.export_rows()
    finally:
        source.close()
    dest = open_dest()
    try:
        added = dest.import_rows(rows)
        _verify_auth(rows, dest.export_rows())
    finally:
        dest.close()
    _report_auth(rows, added, where)


def _verify_auth(src, dst) -> None:
    """Every user, key (secret, revocation) and role of ``src`` is in ``dst``; auth is on
    there if it is on in ``src``."""
    keys = {k[0]: k for k in dst.keys}
    for k in src.keys:
        got = keys.get(k[0])
        if got is None or got[:6] != k[:6] or (k[6] is not None and got[6] is None):
            raise MigrateError(f"auth: key {k[0]} did not arrive intact: run the migrate again")
    users, grants = {u[0] for u in dst.users}, {g[:2] for g in dst.grants}
    missing = [u[0] for u in src.users if u[0] not in users] + [
        f"{g[0]} on {g[1]}" for g in src.grants if g[:2] not in grants]
    if missing or (src.enabled and not dst.enabled):
        raise MigrateError(f"auth: {', '.join(missing[:5]) or 'enabled'} did not arrive: run "
                           f"the migrate again")


def _report_auth(rows, added: dict, where: str) -> None:
    new = added["users"] + added["keys"] + added["grants"]
    print(f"auth: {len(rows.users)} users, {len(rows.keys)} keys and {len(rows.grants)} roles "
          f"verified in {where} ({new} rows new), auth "
          f"{'enabled' if rows.enabled else 'disabled'}")


def _pipelines(copy, source: str, target: str) -> None:
    """The pipelines and jobs, after the metadata (``cli/migrate_pps.py``)."""
    from .migrate_pps import PipelinesError
    try:
        copy(source, target)
    except PipelinesError as exc:
        raise MigrateError(f"pipelines: {exc}") from None


def _open_dest_store(url: str):
    from ..store.s3chunks import S3ChunkStore
    from ..store.s3url import S3UrlError, is_s3_url, parse_s3_url
    if not is_s3_url(url):
        raise MigrateError(f"--chunks takes an s3:// URL, not {url!r}")
    try:
        return S3ChunkStore(parse_s3_url(url).url())
    except S3UrlError as exc:
        raise MigrateError(f"--chunks: {exc}") from None


def _referenced_chunks(meta) -> dict:
    """{chunk id: ChunkRef} of every stored chunk the metadata references."""
    from ..store.manifest import Manifest
    refs = {}
    for blob in track(meta.referenced_manifests(), "reading manifests", unit="manifest"):
        for ref in Manifest.unpack(bytes(blob)).chunks:
            if ref.data is None:
                refs[bytes(ref.id)] = ref
    return refs


def _copy_chunks(source, dest, refs: dict, src: str) -> None:
    from ..store import hashing
    present = {bytes(cid): size for cid, _mtime, size in
               track(dest.iter_chunks(), "listing the destination's chunks", unit="chunk")}
    todo = [ref for cid, ref in sorted(refs.items()) if present.get(cid) != ref.length]
    print(f"chunks: {len(refs)} referenced, {len(refs) - len(todo)} in the destination "
          f"already, {len(todo)} to copy ({sum(r.length for r in todo)} bytes)")
    batch = dest.batch()
    pending = 0
    for ref in track(todo, "copying chunks", unit="chunk"):
        data = source.read(ref)                         # length and XXH3 checked
        if hashing.chunk_id(data) != bytes(ref.id):
            raise MigrateError(f"chunk {ref.id.hex()} of {src} does not hash to its name "
                               f"(run `s3gw fsck --data {src}`)")
        batch.put(ref.id, data)
        pending += 1
        if pending >= _BATCH_CHUNKS:
            batch.sync()
            batch = dest.batch()
            pending = 0
    batch.sync()


class _SqliteSide:
    def __init__(self, conn):
        self.conn = conn

    def tables(self) -> dict[str, list[str]]:
        names = [r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: [r[1] for r in self.conn.execute(f"PRAGMA table_info({t})")] for t in names}

    def rows(self, table: str, cols: list[str]):
        return self.conn.execute(f"SELECT {', '.join(cols)} FROM {table}")

    def count(self, table: str) -> int:
        return self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def repos(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT name FROM repos")}

    def insert(self, table: str, cols: list[str], rows) -> None:
        sql = (f"INSERT OR IGNORE INTO {table}({', '.join(cols)}) "
               f"VALUES ({', '.join(['?'] * len(cols))})")
        with self.conn:
            self.conn.executemany(sql, rows)

    def finish(self) -> None:
        pass


class _PgSide:
    def __init__(self, conn):
        self.conn = conn

    def tables(self) -> dict[str, list[str]]:
        return _pg_tables(self.conn)

    def rows(self, table: str, cols: list[str]):
        cur = self.conn.cursor()
        cur.execute(f"SELECT {', '.join(cols)} FROM {table}")
        return cur

    def count(self, table: str) -> int:
        return self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def repos(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT name FROM repos")}

    def insert(self, table: str, cols: list[str], rows) -> None:
        sql = (f"INSERT INTO {table}({', '.join(cols)}) VALUES "
               f"({', '.join(['%s'] * len(cols))}) ON CONFLICT DO NOTHING")
        with self.conn.transaction():
            with self.conn.cursor() as cur:
                cur.executemany(sql, rows)

    def finish(self) -> None:
        # objects.id is an identity column: new objects number on from the copied ones
        self.conn.execute("SELECT setval(pg_get_serial_sequence('objects', 'id'), m) "
                          "FROM (SELECT max(id) AS m FROM objects) s WHERE m IS NOT NULL")


def _pg_tables(conn) -> dict[str, list[str]]:
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name <> 's3gw_schema' "
        "ORDER BY table_name, ordinal_position").fetchall()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, []).append(column)
    return tables


def _shared_tables(a, b) -> dict[str, list[str]]:
    """{table: columns} both sides have, in copy order (repos and branches last)."""
    ta, tb = a.tables(), b.tables()
    common = {t: [c for c in tb[t] if c in set(ta[t])] for t in tb
              if t in ta and t != "s3gw_schema" and not t.startswith("sqlite_")}
    order = sorted(t for t in common if t not in _LAST) + [t for t in _LAST if t in common]
    return {t: common[t] for t in order if common[t]}


def _copy_metadata(src, dst) -> None:
    theirs, ours = dst.repos(), src.repos()
    if theirs - ours:
        raise MigrateError(f"the destination holds repos the source does not "
                           f"({', '.join(sorted(theirs - ours)[:5])}): it is another store")
    for table, cols in _shared_tables(src, dst).items():
        batch = []
        for row in track(src.rows(table, cols), f"copying {table}", total=src.count(table),
                         unit="row"):
            batch.append(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row))
            if len(batch) >= _BATCH_ROWS:
                dst.insert(table, cols, batch)
                batch = []
        if batch:
            dst.insert(table, cols, batch)
    dst.finish()


def _verify_rows(src, dst) -> None:
    for table in _shared_tables(src, dst):
        if table == "meta":                       # schema_version: each its own
            continue
        a, b = src.count(table), dst.count(table)
        if a != b:
            raise MigrateError(f"table {table}: {a} rows in the source, {b} in the destination")


def _verify(old, new, dest, refs: dict) -> None:
    stored = {bytes(cid) for cid in track(dest.iter_ids(), "verifying chunks", unit="chunk")}
    missing = [cid for cid in refs if cid not in stored]
    if missing:
        raise MigrateError(f"{len(missing)} chunks missing in the destination after the copy "
                           f"(first {missing[0].hex()}): run the migrate again")
    if old.stats() != new.stats():
        raise MigrateError(f"stats differ: source {old.stats()}, destination {new.stats()}")
    branches = old.list_branches()
    files = 0
    for b in track(branches, "comparing trees", unit="branch"):
        if new.get_branch(b.repo, b.name).head != b.head:
            raise MigrateError(f"branch {b.name}.{b.repo}: another head in the destination")
        files += _compare_tree(old, new, b.repo, b.name)
    print(f"verified: {len(refs)} chunks in the destination; {len(branches)} branches, "
          f"{files} files, the same in the source and the destination")


def _compare_tree(old, new, repo: str, branch: str) -> int:
    after = None
    count = 0
    while True:
        a = old.list_files(repo, branch, after=after, limit=1000)
        b = new.list_files(repo, branch, after=after, limit=1000)
        key = [(f.path, f.object.size, f.object.etag, f.commit_id) for f in a]
        if key != [(f.path, f.object.size, f.object.etag, f.commit_id) for f in b]:
            raise MigrateError(f"branch {branch}.{repo}: its files differ in the destination")
        count += len(a)
        if len(a) < 1000:
            return count
        after = a[-1].path


def _sqlite_ro(src: str):
    lite = sqlite3.connect(f"file:{os.path.join(src, 'meta.sqlite')}?mode=ro", uri=True)
    lite.execute("BEGIN")                              # one snapshot of the source
    return lite


def _prepare_folder(src: str, to: str, meta: str, chunks: str) -> None:
    """A data folder for a gateway on the moved store: the URLs recorded (the folder's
    users, keys and pipelines are in the database)."""
    from ..pfs.backends import remember
    from ..store.backends import open_chunk_store
    os.makedirs(to, exist_ok=True)
    if os.path.exists(os.path.join(to, "meta.sqlite")):
        raise MigrateError(f"{to} has metadata of its own: name a new folder with --to")
    open_chunk_store(to, chunks).close()         # records chunks.url
    remember(to, meta)
    print(f"prepared {to}: s3gw serve --data {to} (metadata and chunks recorded)")
