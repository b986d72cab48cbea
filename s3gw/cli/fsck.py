"""``s3gw fsck``: find every fault of a data folder, name what it damages, repair what can be.

Theory of operation
-------------------
1. **Databases.**  SQLite's own ``PRAGMA integrity_check`` on ``meta.sqlite``
   (repos, branches, commits, objects), ``auth.sqlite``, ``pps.sqlite`` and
   ``packs/index.sqlite``.  A file that is not a database, truncated, or with
   damaged pages is reported in one line each, never a traceback.
2. **Every object version's chunks.**  Each manifest of ``objects`` (every
   version of every file of every branch, and old versions kept by history)
   and of staged multipart parts is unpacked; each chunk it needs is read
   once and checked: present, its length, its XXH3-64, and its BLAKE3 against
   its name (inline chunks: BLAKE3).  A damaged chunk is quarantined as a read
   would (``store.integrity``).  Each fault is reported with what it damages:
   repo, branch, key and commit of every version that uses the chunk.
3. **Stored chunks nothing references** (garbage until ``s3gw gc``) are
   checked too and quarantined when damaged; they damage no object.

Exit status: 0 when everything checks out, 1 when anything is damaged
(2: no data folder).

``--repair`` (needs the server stopped: it takes ``serve.lock``) also:

- rebuilds ``packs/index.sqlite`` from the pack files when it is damaged;
- finds chunks an object needs that are missing from the index but whose
  records are whole in a pack (a lost index row) and indexes them again;
- puts back a quarantined chunk file that checks out after all.

Whatever is still missing or damaged after that can only come back from its
data: an upload of the same bytes (any key, any bucket) writes the chunk
again and heals every object that shares it (the write path checks a stored
copy before trusting it).  A damaged ``meta.sqlite`` cannot be repaired
here: restore it from a backup (``docs/failure-model.md``).

Known weakness: the walk keeps every referenced chunk id in memory (about
150 bytes each: 1.5 GB for ten million chunks).
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections import defaultdict

from .. import settings

__all__ = ["run", "DATABASES", "check_database", "startup_problem"]

# file (under the data folder) -> what it holds, for messages
DATABASES = {
    "meta.sqlite": "the metadata (repos, branches, commits, objects)",
    "auth.sqlite": "the access keys and grants",
    "pps.sqlite": "the pipelines and jobs",
    os.path.join("packs", "index.sqlite"): "the index of packed small chunks",
}

# serve runs SQLite's quick_check at start on databases up to this size (bigger: only
# the header is checked, fsck does the rest); env S3GW_STARTUP_CHECK_MIB
# (S3GW_STARTUP_CHECK_MIB: settings.startup_check_mib)


def check_database(path: str, quick: bool = False) -> str | None:
    """None when SQLite's integrity check passes; otherwise what is wrong, in words."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=30)
    except sqlite3.Error as exc:
        return f"cannot be opened ({exc})"
    try:
        rows = conn.execute("PRAGMA quick_check" if quick else "PRAGMA integrity_check").fetchall()
    except sqlite3.Error as exc:
        return str(exc)
    finally:
        conn.close()
    problems = [str(r[0]) for r in rows]
    if problems == ["ok"]:
        return None
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return "; ".join(problems[:3]) + more


def startup_problem(data_dir: str) -> str | None:
    """What ``serve`` refuses to start on: a damaged database, in one line (None: fine).

    Databases up to ``settings.startup_check_mib`` MiB get SQLite's ``quick_check`` (about
    a second per few hundred MiB); bigger ones only a read of their schema."""
    for name in DATABASES:
        path = os.path.join(data_dir, name)
        try:
            size = os.path.getsize(path)
        except OSError:
            continue
        if size <= settings.current().startup_check_mib << 20:
            problem = check_database(path, quick=True)
        else:
            problem = _schema_problem(path)
        if problem is not None:
            return (f"{path} is damaged ({problem}); run `s3gw fsck --data {data_dir}` "
                    "for details (docs/failure-model.md says how to recover)")
    return None


def _schema_problem(path: str) -> str | None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=30)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return str(exc)
    return None


class _Report:
    def __init__(self, out):
        self.out = out
        self.problems = 0

    def say(self, line: str) -> None:
        print(line, file=self.out)

    def problem(self, line: str) -> None:
        self.problems += 1
        self.say(line)


def run(args, out=None) -> int:
    """``s3gw fsck [--repair]``; returns the exit status."""
    out = out or sys.stdout
    data = args.data
    report = _Report(out)
    lock = None
    if getattr(args, "repair", False):
        from ..app import DataFolderBusy, lock_data_folder
        try:
            lock = lock_data_folder(data)
        except DataFolderBusy as exc:
            print(f"s3gw: fsck --repair needs the server stopped: {exc}", file=sys.stderr)
            return 1
    try:
        return _run(args, data, report, lock is not None)
    finally:
        if lock is not None:
            lock.close()


def _run(args, data: str, report: _Report, repair: bool) -> int:
    report.say(f"checking {os.path.abspath(data)}")
    damaged_dbs = set()
    for name, what in DATABASES.items():
        path = os.path.join(data, name)
        if not os.path.exists(path):
            if name == "meta.sqlite":
                report.problem(f"MISSING {name}: {what} (no commit can be read)")
                damaged_dbs.add(name)
            continue
        problem = check_database(path)
        if problem is None:
            report.say(f"ok      {name}")
        else:
            damaged_dbs.add(name)
            report.problem(f"DAMAGED {name} ({what}): {problem}")
    index_name = os.path.join("packs", "index.sqlite")
    if index_name in damaged_dbs and repair:
        _rebuild_pack_index(data, report)
        damaged_dbs.discard(index_name)
        report.problems -= 1       # repaired
    if "meta.sqlite" in damaged_dbs or index_name in damaged_dbs:
        report.say("the chunks are not checked: a damaged database cannot say which objects "
                   "need which chunks" + ("" if repair or "meta.sqlite" in damaged_dbs
                                          else " (--repair rebuilds the pack index)"))
        return _finish(report, repair)
    from ..store.backends import open_chunk_store
    store = open_chunk_store(data, owner=False)   # its own chunks, or the recorded object store
    try:
        _check_chunks(data, store, report, repair)
    finally:
        store.close()
    return _finish(report, repair)


def _quarantine(store, cid: bytes, why: str) -> None:
    """Move a damaged chunk aside where the store can (a local store's quarantine)."""
    quarantine = getattr(store, "quarantine", None)
    if quarantine is not None:
        quarantine(cid, why)


def _finish(report: _Report, repair: bool) -> int:
    if report.problems:
        report.say(f"{report.problems} problem(s) found" + ("" if repair else
                   "; `s3gw fsck --repair` (server stopped) fixes what can be fixed without the "
                   "data; an upload of the same bytes heals a damaged or missing chunk"))
        return 1
    report.say("no problems found")
    return 0


def _check_chunks(data: str, store, report: _Report, repair: bool) -> None:
    from ..store import hashing
    from ..store.chunkstore import ChunkCorrupt, ChunkMissing, verify_inline
    from ..store.manifest import Manifest
    db = sqlite3.connect(f"file:{os.path.join(data, 'meta.sqlite')}?mode=rw", uri=True, timeout=30)
    try:
        refs: dict[bytes, object] = {}
        users: dict[bytes, list] = defaultdict(list)     # chunk id -> [("object", id) | ("part", ...)]
        versions = inline_bad = 0
        for obj_id, blob in db.execute("SELECT id, manifest FROM objects"):
            versions += 1
            for ref in Manifest.unpack(bytes(blob)).chunks:
                if ref.data is not None:
                    if not verify_inline(ref):
                        inline_bad += 1
                        _name_users(db, report, [("object", obj_id)],
                                    f"inline chunk {ref.id.hex()} damaged (in meta.sqlite)")
                    continue
                refs.setdefault(ref.id, ref)
                users[ref.id].append(("object", obj_id))
        parts = 0
        for upload, number, blob in db.execute("SELECT upload_id, number, manifest FROM upload_parts"):
            parts += 1
            for ref in Manifest.unpack(bytes(blob)).chunks:
                if ref.data is None:
                    refs.setdefault(ref.id, ref)
                    users[ref.id].append(("part", upload, number))
        bad: dict[bytes, str] = {}
        from .progress import track
        for cid, ref in track(refs.items(), "fsck: chunks objects need", total=len(refs),
                              unit="chunk"):
            try:
                content = store.read(ref)
            except ChunkMissing as exc:
                bad[cid] = f"missing (expected at {exc.path})"
                continue
            except ChunkCorrupt as exc:
                bad[cid] = f"damaged at {exc.path}: {exc.detail}"
                continue
            if hashing.chunk_id(content) != cid:
                where = store.where(cid)
                _quarantine(store, cid, "BLAKE3 does not match its name")
                bad[cid] = f"damaged at {where}: content does not hash to its name"
        if repair and bad and hasattr(store, "packs"):     # a local store's own repairs
            for cid in _heal(store, data, {c: refs[c] for c in bad}, report):
                del bad[cid]
        for cid, why in bad.items():
            if _quarantined(data, cid) and "quarantine" not in why:
                why += f"; a damaged copy is in {os.path.join(data, 'quarantine')}"
            _name_users(db, report, users[cid], f"chunk {cid.hex()} {why}")
        garbage = garbage_bad = 0
        for cid, _mtime, _size in list(store.iter_chunks()):
            if cid in refs:
                continue
            garbage += 1
            if not store.verify(cid):
                garbage_bad += 1
                where = store.where(cid)
                _quarantine(store, cid, "unreferenced and damaged (fsck)")
                report.say(f"note    unreferenced chunk {cid.hex()} at {where} is damaged: "
                           "quarantined (it belonged to no object)")
        report.say(f"checked {len(refs)} chunks used by {versions} object versions and {parts} "
                   f"staged parts: {len(bad)} missing or damaged; {inline_bad} damaged inline; "
                   f"{garbage} unreferenced chunks ({garbage_bad} damaged)")
    finally:
        db.close()


def _name_users(db, report: _Report, users: list, what: str) -> None:
    """One line per object version (repo, branch, key, commit) or staged part using a chunk."""
    named = 0
    for user in users:
        if user[0] == "object":
            rows = db.execute(
                "SELECT e.repo, c.branch, e.path, e.commit_id FROM entries e "
                "LEFT JOIN commits c ON c.id = e.commit_id WHERE e.object = ? "
                "ORDER BY e.repo, e.path, e.depth", (user[1],)).fetchall()
            heads = db.execute("SELECT repo, branch, path, commit_id FROM tree WHERE object = ?",
                               (user[1],)).fetchall()
            for repo, branch, path, commit in rows or heads:
                named += 1
                report.problem(f"DAMAGED repo {repo}, branch {branch}, key {path}, commit {commit}: "
                               f"{what}")
        else:
            row = db.execute("SELECT repo, branch, key FROM uploads WHERE id = ?", (user[1],)).fetchone()
            repo, branch, key = row or ("?", "?", "?")
            named += 1
            report.problem(f"DAMAGED multipart upload {user[1]} (repo {repo}, branch {branch}, key {key}) "
                           f"part {user[2]}: {what}")
    if not named:
        report.problem(f"DAMAGED an object no commit names: {what}")


def _quarantined(data: str, cid: bytes) -> bool:
    qdir = os.path.join(data, "quarantine")
    hexid = cid.hex()
    return any(os.path.exists(os.path.join(qdir, hexid + ext)) for ext in ("", ".packed"))


def _heal(store, data: str, wanted: dict, report: _Report) -> list[bytes]:
    """Repair what needs no data: a quarantined file that checks out after all goes
    back; a chunk whose whole record is in a pack but not in the index is indexed."""
    from ..store import hashing
    healed = []
    qdir = os.path.join(data, "quarantine")
    for cid in list(wanted):
        path = os.path.join(qdir, cid.hex())
        try:
            with open(path, "rb") as f:
                content = f.read()
        except FileNotFoundError:
            continue
        if hashing.chunk_id(content) == cid and len(content) == wanted[cid].length:
            os.replace(path, store.path_of(cid))
            healed.append(cid)
            report.say(f"repaired chunk {cid.hex()}: its quarantined copy checks out, put back")
    rest = {c for c in wanted if c not in healed}
    if rest:
        for cid in store.packs.reindex(rest):
            healed.append(cid)
            report.say(f"repaired chunk {cid.hex()}: found whole in a pack, indexed again")
    return healed


def _rebuild_pack_index(data: str, report: _Report) -> None:
    """Move a damaged ``packs/index.sqlite`` aside and index every whole pack record again."""
    from ..store.packs import PackStore
    base = os.path.join(data, "packs", "index.sqlite")
    aside = base + ".damaged"
    for ext in ("", "-wal", "-shm"):
        if os.path.exists(base + ext):
            os.replace(base + ext, aside + ext)
    packs = PackStore(data, recover=False)
    try:
        found = packs.reindex(None)
    finally:
        packs.close()
    report.say(f"repaired packs/index.sqlite: rebuilt from the pack files ({len(found)} chunks "
               f"indexed; the damaged one is {aside})")
