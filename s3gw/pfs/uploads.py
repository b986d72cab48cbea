"""Multipart upload staging: uploads in progress and their parts, in the metadata database.

Theory of operation
-------------------
An upload is staged in two tables of the same database as the file trees
(so it survives a restart and completes in one transaction with the commit):

* ``uploads``: id (random, URL-safe ``[A-Za-z0-9_-]``), the target (repo,
  branch, key), when it was initiated, the headers to store with the object
  and the checksum algorithm/type announced by CreateMultipartUpload.
* ``upload_parts``: (upload id, part number) -> size, MD5 ETag, packed chunk
  manifest, checksums, time.  A part sent again replaces the row (last one
  wins); parts arrive in any order and in parallel (each is one small write
  transaction after its chunks are durable).

Nothing here is visible on a branch.  Completion is ``MetadataStore.commit``
with ``also=staging.remove_in(upload_id, expected)``: the commit of the new
file and the removal of the upload rows are ONE transaction, so a completed
upload is either fully on the branch and gone from the staging tables, or
not at all; two concurrent Completes of one upload cannot both commit (the
second finds no rows and raises ``NoSuchUpload``, rolling back).

Aborting or expiring an upload deletes its rows only: its chunks are then
referenced by nothing and are garbage for GC.  While an upload is in
progress its parts' manifests count as references
(``referenced_manifests``), so a GC run never takes chunks from under it.

The SQL is the subset both backends speak, over the store's ``SqlAccess``
(``pfs.interface``); each backend creates the tables (SQLite: ``SCHEMA`` when
``meta.uploads`` is first used; PostgreSQL: its migrations).  All methods
block (callers use worker threads).  Known weakness: listing
uploads with a delimiter walks the matching uploads in SQL batches; fine for
the thousands of uploads in progress a gateway sees, not for millions.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from .keys import prefix_upper_bound
from .model import PfsError

__all__ = ["UploadStaging", "UploadInfo", "PartInfo", "NoSuchUpload", "new_upload_id", "SCHEMA"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads(
    id TEXT PRIMARY KEY, repo TEXT NOT NULL, branch TEXT NOT NULL, key TEXT NOT NULL,
    initiated_ns INTEGER NOT NULL, headers TEXT NOT NULL, checksum_algorithm TEXT,
    checksum_type TEXT);
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads(repo, branch, key, initiated_ns, id);
CREATE INDEX IF NOT EXISTS uploads_by_time ON uploads(initiated_ns);
CREATE TABLE IF NOT EXISTS upload_parts(
    upload_id TEXT NOT NULL, number INTEGER NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
    manifest BLOB NOT NULL, checksums TEXT NOT NULL, time_ns INTEGER NOT NULL,
    PRIMARY KEY(upload_id, number)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS completed_uploads(
    id TEXT PRIMARY KEY, repo TEXT NOT NULL, branch TEXT NOT NULL, key TEXT NOT NULL,
    result TEXT NOT NULL, time_ns INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS completed_uploads_time ON completed_uploads(time_ns);
"""

# How long a completed upload's result is kept for retried Completes (clients retry a
# Complete whose answer timed out; AWS answers them 200 with the same result).
COMPLETED_KEEP_NS = 7 * 24 * 3600 * 10**9


class NoSuchUpload(PfsError):
    """The upload id is unknown (never created, aborted, expired or completed)."""


def new_upload_id() -> str:
    """A random upload id: 32 characters of ``[A-Za-z0-9_-]`` (192 bits)."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class UploadInfo:
    id: str
    repo: str
    branch: str
    key: str
    initiated_ns: int
    headers: dict[str, str] = field(default_factory=dict)
    checksum_algorithm: str | None = None   # e.g. "crc32" (lower case)
    checksum_type: str | None = None        # "COMPOSITE" or "FULL_OBJECT"


@dataclass(frozen=True)
class PartInfo:
    number: int
    size: int
    etag: str                  # MD5 hex of the part, unquoted
    manifest: bytes            # packed chunk list
    checksums: dict[str, str] = field(default_factory=dict)   # {"crc32": base64}
    time_ns: int = 0


_UPLOAD_COLS = "id, repo, branch, key, initiated_ns, headers, checksum_algorithm, checksum_type"
_PART_COLS = "number, size, etag, manifest, checksums, time_ns"


def _upload(row) -> UploadInfo:
    uid, repo, branch, key, initiated, headers, algo, ctype = row
    return UploadInfo(uid, repo, branch, key, initiated, json.loads(headers), algo, ctype)


def _part(row) -> PartInfo:
    number, size, etag, manifest, checksums, time_ns = row
    return PartInfo(number, size, etag, bytes(manifest), json.loads(checksums), time_ns)


class UploadStaging:
    """Uploads in progress, stored next to the file trees (in the metadata store).

    Get it as ``meta.uploads``; it writes through the metadata store's ``write``
    and reads with its per-thread ``reader`` (the tables exist: see above).
    """

    def __init__(self, meta):
        self._meta = meta

    # -- uploads ------------------------------------------------------------------------
    def create(self, repo: str, branch: str, key: str, headers: Mapping[str, str], now_ns: int,
               checksum_algorithm: str | None = None,
               checksum_type: str | None = None) -> UploadInfo:
        info = UploadInfo(new_upload_id(), repo, branch, key, now_ns, dict(headers),
                          checksum_algorithm, checksum_type)

        def tx(cur):
            cur.execute(f"INSERT INTO uploads({_UPLOAD_COLS}) VALUES(?,?,?,?,?,?,?,?)",
                        (info.id, repo, branch, key, now_ns, json.dumps(info.headers),
                         checksum_algorithm, checksum_type))

        self._meta.write(tx)
        return info

    def get(self, upload_id: str) -> UploadInfo:
        row = self._meta.reader.execute(
            f"SELECT {_UPLOAD_COLS} FROM uploads WHERE id=?", (upload_id,)).fetchone()
        if row is None:
            raise NoSuchUpload(upload_id)
        return _upload(row)

    def abort(self, upload_id: str) -> None:
        """Forget an upload and its parts (their chunks become garbage)."""

        def tx(cur):
            if not self._remove(cur, upload_id):
                raise NoSuchUpload(upload_id)

        self._meta.write(tx)

    def expire(self, initiated_before_ns: int) -> list[str]:
        """Abort every upload initiated before the given time; returns their ids."""

        def tx(cur):
            ids = [r[0] for r in cur.execute(
                "SELECT id FROM uploads WHERE initiated_ns < ?", (initiated_before_ns,))]
            for uid in ids:
                self._remove(cur, uid)
            return ids

        return self._meta.write(tx)

    @staticmethod
    def _remove(cur, upload_id: str) -> bool:
        cur.execute("DELETE FROM upload_parts WHERE upload_id=?", (upload_id,))
        return cur.execute("DELETE FROM uploads WHERE id=?", (upload_id,)).rowcount > 0

    def remove_in(self, upload_id: str, expected: Mapping[int, str] | None = None):
        """A hook for ``MetadataStore.commit(also=...)``: inside the commit's
        transaction, check that the parts still have the ETags the completion
        was planned with, then delete the upload's rows.

        Raises (rolling the commit back): ``NoSuchUpload`` when the upload is
        gone (aborted, expired, completed concurrently); ``PartChanged`` when
        a part was replaced after the plan was made.
        """

        def hook(cur):
            if expected:
                rows = dict(cur.execute(
                    "SELECT number, etag FROM upload_parts WHERE upload_id=?", (upload_id,)))
                for number, etag in expected.items():
                    if rows.get(number) != etag:
                        raise PartChanged(number)
            if not self._remove(cur, upload_id):
                raise NoSuchUpload(upload_id)

        return hook

    def record_completion(self, upload_id: str, repo: str, branch: str, key: str,
                          result: Mapping, now_ns: int) -> None:
        """Remember a completed upload's answer (a JSON-able ``result``) for retried
        Completes, for ``COMPLETED_KEEP_NS``.

        Contract: one small write transaction after the completing commit (a retry
        landing between the two finds neither the upload nor this record:
        ``NoSuchUpload``); records older than the keep time are dropped in it.
        """

        def tx(cur):
            cur.execute("DELETE FROM completed_uploads WHERE time_ns < ?",
                        (now_ns - COMPLETED_KEEP_NS,))
            cur.execute("INSERT INTO completed_uploads VALUES(?,?,?,?,?,?) ON CONFLICT(id) DO "
                        "UPDATE SET repo=excluded.repo, branch=excluded.branch, key=excluded.key, "
                        "result=excluded.result, time_ns=excluded.time_ns",
                        (upload_id, repo, branch, key, json.dumps(dict(result)), now_ns))

        self._meta.write(tx)

    def completion(self, upload_id: str, repo: str, branch: str, key: str) -> dict | None:
        """The recorded answer of a completed upload of that bucket and key, or None
        (one read)."""
        row = self._meta.reader.execute(
            "SELECT result FROM completed_uploads WHERE id=? AND repo=? AND branch=? AND key=?",
            (upload_id, repo, branch, key)).fetchone()
        return None if row is None else json.loads(row[0])

    def list_uploads(self, repo: str, branch: str, prefix: str = "",
                     after: tuple[str, int, str] | None = None, limit: int = 1000,
                     ) -> list[UploadInfo]:
        """Uploads of a branch whose key starts with ``prefix``, ordered by (key,
        initiated, id), strictly after ``after`` = (key, initiated_ns, id)."""
        sql = f"SELECT {_UPLOAD_COLS} FROM uploads WHERE repo=? AND branch=? AND key >= ?"
        args: list = [repo, branch, prefix]
        upper = prefix_upper_bound(prefix) if prefix else None
        if upper is not None:
            sql += " AND key < ?"
            args.append(upper)
        if after is not None:
            sql += " AND (key > ? OR (key = ? AND (initiated_ns > ? OR (initiated_ns = ? AND id > ?))))"
            k, t, i = after
            args += [k, k, t, t, i]
        sql += " ORDER BY key, initiated_ns, id LIMIT ?"
        args.append(limit)
        return [_upload(r) for r in self._meta.reader.execute(sql, args)]

    # -- parts --------------------------------------------------------------------------
    def put_part(self, upload_id: str, part: PartInfo) -> None:
        """Record a part (replacing an earlier one with the same number).

        Raises ``NoSuchUpload`` if the upload was aborted/completed meanwhile.
        """

        def tx(cur):
            if cur.execute("SELECT 1 FROM uploads WHERE id=?", (upload_id,)).fetchone() is None:
                raise NoSuchUpload(upload_id)
            cur.execute(
                f"INSERT INTO upload_parts(upload_id, {_PART_COLS}) VALUES(?,?,?,?,?,?,?) "
                "ON CONFLICT(upload_id, number) DO UPDATE SET size=excluded.size, "
                "etag=excluded.etag, manifest=excluded.manifest, checksums=excluded.checksums, "
                "time_ns=excluded.time_ns",
                (upload_id, part.number, part.size, part.etag, part.manifest,
                 json.dumps(part.checksums, sort_keys=True), part.time_ns))

        self._meta.write(tx)

    def list_parts(self, upload_id: str, after: int = 0, limit: int = 10000) -> list[PartInfo]:
        """Parts with number > ``after``, ascending (at most ``limit``)."""
        rows = self._meta.reader.execute(
            f"SELECT {_PART_COLS} FROM upload_parts WHERE upload_id=? AND number > ? "
            "ORDER BY number LIMIT ?", (upload_id, after, limit))
        return [_part(r) for r in rows]

    def get_with_parts(self, upload_id: str) -> tuple[UploadInfo, dict[int, PartInfo]]:
        """The upload and all its parts, read in one snapshot (``BEGIN`` on a reader
        opens one on either backend)."""
        conn = self._meta.reader
        conn.execute("BEGIN")
        try:
            info = self.get(upload_id)
            parts = {p.number: p for p in self.list_parts(upload_id)}
        finally:
            conn.execute("COMMIT")
        return info, parts

    # -- GC support ---------------------------------------------------------------------
    def referenced_manifests(self) -> Iterable[bytes]:
        """The manifests of the parts of uploads in progress (their chunks are live)."""
        for (blob,) in self._meta.reader.execute("SELECT manifest FROM upload_parts"):
            yield bytes(blob)

    def count(self) -> int:
        return self._meta.reader.execute("SELECT count(*) FROM uploads").fetchone()[0]


class PartChanged(PfsError):
    """A part was replaced while its upload was being completed."""

    def __init__(self, number: int):
        super().__init__(f"part {number} changed during completion")
        self.number = number
        self.s3_fields = {"part_number": number}
