"""The ``s3gw`` command: serve the gateway and administer a data folder.

Every subcommand takes ``--data`` (env ``S3GW_DATA``, default ``./s3gw-data``).
``serve`` also reads ``S3GW_HOST``, ``S3GW_PORT``, ``S3GW_REGION`` and
``S3GW_DOMAIN``.  Admin commands open the same SQLite file the server uses
(WAL: safe while it runs), or with ``--meta postgresql://...`` (env ``S3GW_META``)
the same PostgreSQL database; ``migrate`` brings that database to this version's
schema.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import logging.handlers
import os
import queue
import sqlite3
import sys

from .. import settings
from ..store.manifest import INLINE_MAX

__all__ = ["main"]


_SETTING_OF = {var: name for name, (var, _default, _parse) in settings.VARIABLES.items()}


def _env(variable: str, default=None):
    """An option's default: its setting (``s3gw.settings``, from the environment), or
    ``default`` when the setting has none."""
    value = getattr(settings.from_env(), _SETTING_OF[variable])
    return default if value is None else value


def _data_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=_env("S3GW_DATA", "s3gw-data"),
                   help="data folder (env S3GW_DATA; default ./s3gw-data)")
    _meta_arg(p)


def _meta_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--meta", default=_env("S3GW_META", None),
                   help="metadata store: a postgresql://user@host/db URL (env S3GW_META; "
                        "default: the data folder's SQLite file)")


def _duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``12h``, ``7d`` -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = str(text).strip().lower()
    scale = units.get(text[-1:], None)
    number = text[:-1] if scale else text
    try:
        value = float(number) * (scale or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("a duration cannot be negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s3gw", description="versioned data store with an S3 front door")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the S3 gateway")
    _data_arg(p)
    p.add_argument("--host", default=_env("S3GW_HOST", "127.0.0.1"), help="env S3GW_HOST")
    p.add_argument("--port", type=int, default=int(_env("S3GW_PORT", "30600")), help="env S3GW_PORT")
    p.add_argument("--region", default=_env("S3GW_REGION", "us-east-1"), help="env S3GW_REGION")
    p.add_argument("--domain", default=_env("S3GW_DOMAIN", None),
                   help="enable virtual-host style for <bucket>.<domain> (env S3GW_DOMAIN)")
    p.add_argument("--no-fsync", action="store_true",
                   help="skip fsync (faster, NOT crash safe; for throwaway data)")
    p.add_argument("--log-level", default=_env("S3GW_LOG_LEVEL", "INFO"))
    p.add_argument("--log-format", choices=("text", "json"), default=_env("S3GW_LOG_FORMAT", "text"),
                   help="access log: one text line per request (default), or one JSON object "
                        "per request with operation, bucket, key, status, bytes, duration and "
                        "request id (env S3GW_LOG_FORMAT)")
    p.add_argument("--upload-expiry", type=_duration, default=_env("S3GW_UPLOAD_EXPIRY", "7d"),
                   help="abort unfinished multipart uploads after this long: seconds, or "
                        "with a unit s/m/h/d; 0 keeps them (env S3GW_UPLOAD_EXPIRY; default 7d)")
    p.add_argument("--inline-max", type=_inline_max, default=_env("S3GW_INLINE_MAX", INLINE_MAX),
                   help="keep objects of up to this many bytes in their commits, not in the "
                        f"chunk store: one sync per small PUT; 0 never (env S3GW_INLINE_MAX; "
                        f"default {INLINE_MAX}, at most 65536)")
    p.add_argument("--max-jobs", type=int, default=int(_env("S3GW_MAX_JOBS", "2")),
                   help="pipeline jobs running at once (env S3GW_MAX_JOBS; default 2)")
    p.add_argument("--body-min-rate", type=float, default=float(_env("S3GW_BODY_MIN_RATE", "1024")),
                   help="bytes/s a request body must average after its first 20 s, else "
                        "RequestTimeout (env S3GW_BODY_MIN_RATE; default 1024; 0: no minimum)")
    p.add_argument("--body-rate-grace", type=_duration, default=_env("S3GW_BODY_RATE_GRACE", "20s"),
                   help="time before --body-min-rate applies (env S3GW_BODY_RATE_GRACE; default 20s)")
    p.add_argument("--job-host", default=_env("S3GW_JOB_HOST", "127.0.0.1"),
                   help="address of each pipeline job's own S3 endpoint (env S3GW_JOB_HOST)")
    p.add_argument("--console", type=_console_arg, default=_env("S3GW_CONSOLE", "127.0.0.1:30601"),
                   help="host:port of the read-only web console, or 'off' (env S3GW_CONSOLE; "
                        "default 127.0.0.1:30601)")
    p.add_argument("--chunks", default=_env("S3GW_CHUNKS", None),
                   help="keep chunks in an S3-compatible object store: "
                        "'s3://bucket/prefix?endpoint=http://host:8333' (keys from the environment "
                        "or ?profile=); recorded in the data folder, which later commands reuse "
                        "(env S3GW_CHUNKS; see docs/object-store.md)")

    p.add_argument("--workers", type=int, default=int(_env("S3GW_WORKERS", "1")),
                   help="serve with this many processes on one port and one data folder "
                        "(env S3GW_WORKERS; default 1; see docs/backends.md, Workers)")

    sub.add_parser("version", help="print the version and the hot-path implementation in use")

    p = sub.add_parser("migrate", help="bring a PostgreSQL metadata database to this "
                                       "version's schema (gateways never do it themselves); "
                                       "with --from, move a data folder's store into it and "
                                       "an object store")
    _meta_arg(p)
    p.add_argument("--from", dest="from_dir", default=None, metavar="DIR",
                   help="copy this local data folder's chunks to --chunks and its metadata "
                        "to --meta (resumable, verified; see docs/object-store.md)")
    p.add_argument("--chunks", default=None, help="with --from: the s3:// URL of the object store")
    p.add_argument("--pipelines", action="store_true",
                   help="with --from DIR (a folder served on PostgreSQL): copy the pipelines "
                        "and jobs its pps.sqlite still holds into the database")
    p.add_argument("--to", default=None, metavar="DIR",
                   help="with --from: also prepare this data folder for a gateway on the "
                        "moved store; with --from a folder served on PostgreSQL + an object "
                        "store: the new local folder to move it back into")

    p = sub.add_parser("stats", help="repos, files, bytes received vs bytes stored")
    _data_arg(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("gc", help="delete chunks and objects nothing references")
    _data_arg(p)
    p.add_argument("--grace", type=float, default=None,
                   help="keep unreferenced chunks younger than this many seconds (uploads in "
                        "flight); default 3600, or an object store's own grace (also its least)")
    p.add_argument("--dry-run", action="store_true")

    p = sub.add_parser("fsck", help="check the databases and every chunk each object version needs")
    _data_arg(p)
    p.add_argument("--repair", action="store_true",
                   help="also repair what needs no data (server stopped): rebuild the pack index, "
                        "re-index whole pack records, put back quarantined chunks that check out")

    from .history import add_parsers  # log, branch, diff
    add_parsers(sub, _data_arg)
    from .auth import add_parser as add_auth_parser
    add_auth_parser(sub, _data_arg)
    from .pipelines import add_parsers as add_pipeline_parsers
    add_pipeline_parsers(sub, _data_arg)
    return parser


# Commands that may run on a folder that is not (yet) a data folder: ``serve`` creates
# one; ``version`` needs none.  Every other command needs an existing folder, so a
# command run in the wrong place says so instead of creating ./s3gw-data.
_CREATES_OR_NEEDS_NO_FOLDER = {"serve", "version", "migrate"}


def main(argv: list[str] | None = None) -> int:
    try:
        settings.from_env()
    except ValueError as exc:               # a malformed S3GW_* variable: one line
        sys.stderr.write(f"s3gw: {exc}\n")
        return 2
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)   # `serve --workers` re-runs it
    if args.command not in _CREATES_OR_NEEDS_NO_FOLDER and not os.path.isdir(args.data) and \
            not (args.command == "auth" and getattr(args, "meta", None)):   # auth in a database
        print(f"s3gw: no data folder at {os.path.abspath(args.data)} (pass --data or set "
              "S3GW_DATA; only `s3gw serve` creates one)", file=sys.stderr)
        return 2
    try:
        return _COMMANDS[args.command](args) or 0
    except sqlite3.DatabaseError as exc:   # a damaged database: one line, not a traceback
        print(f"s3gw: a database in {os.path.abspath(args.data)} cannot be read ({exc}); "
              f"run `s3gw fsck --data {args.data}`", file=sys.stderr)
        return 1


def _cmd_serve(args) -> int:
    import trio

    from ..app import AppConfig, DataFolderBusy, run_server
    from ..http import accesslog
    from ..store import chunker, hashing

    from ..pfs.backends import is_postgres_url
    if args.meta and not is_postgres_url(args.meta):
        sys.stderr.write(f"s3gw: --meta takes a postgresql:// URL, not {args.meta!r}\n")
        return 2
    from .workers import become_worker, worker_role
    role = worker_role()
    if role is not None and not become_worker(role[1]):
        return 1                                   # its supervisor is gone already
    if role is None and args.workers < 1:
        sys.stderr.write("s3gw: --workers takes a number of processes, 1 or more\n")
        return 2
    if role is None and os.path.isdir(args.data):  # a worker's supervisor checked it
        from .fsck import startup_problem
        problem = startup_problem(args.data)
        if problem is not None:
            print(f"s3gw: refusing to serve: {problem}", file=sys.stderr)
            return 1
    listener, access = _start_logging(args.log_level.upper(), args.log_format)
    logging.getLogger("s3gw").info("hot path: chunker=%s hashing=%s (self-test %s)",
                                   chunker.IMPLEMENTATION, hashing.IMPLEMENTATION,
                                   "ok" if chunker.self_test() else "FAILED")
    config = AppConfig(data_dir=args.data, host=args.host, port=args.port, region=args.region,
                       domain=args.domain, fsync=not args.no_fsync,
                       upload_expiry=args.upload_expiry, inline_object_max=args.inline_max,
                       max_jobs=max(1, args.max_jobs), job_host=args.job_host,
                       console=args.console,
                       metrics_token=settings.from_env().metrics_token,
                       chunks=args.chunks,
                       body_min_rate=max(0.0, args.body_min_rate),
                       body_rate_grace=args.body_rate_grace,
                       meta=args.meta or None)
    if role is not None:
        config.worker, config.listen_fds = role[0], role[2]
        config.console = config.console if role[0] == 0 else None   # one console port
    from ..store.chunkstore import ChunkError
    failure = None
    try:
        if role is None and args.workers > 1:
            from .workers import supervise
            return supervise(config, args.argv, args.workers)
        trio.run(run_server, config)
    except KeyboardInterrupt:
        pass
    except (DataFolderBusy, ChunkError) as exc:
        failure = str(exc)
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        failure = f"cannot listen on {args.host}:{args.port}: {exc.strerror}"
    except Exception as exc:
        failure = _meta_error(exc)
        if failure is None:
            raise
    finally:
        access.close()
        accesslog.install(None)
        listener.stop()   # writes out what is still queued
    if failure is not None:
        # last, after the queued log lines, and in one write (a print's text and newline
        # could be split by another writer)
        sys.stderr.write(f"s3gw: {failure}\n")
        return 1
    return 0


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Hands records to the writer thread; drops (and counts) them if it falls far behind."""

    dropped = 0

    def prepare(self, record):
        # QueueHandler.prepare formats the message here, on the event loop; the
        # writer thread's formatter does it anyway (log arguments are plain values)
        return record

    def enqueue(self, record):
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            type(self).dropped += 1


def _start_logging(level: str, access_format: str = "text"):
    """Log lines are formatted and written by a thread of their own, not on the event
    loop: writing and flushing them there cost about a tenth of a small request's
    event-loop time.  The queue is bounded (10,000 records); past that, records are
    dropped rather than memory grown.  The access log (one line per request) skips
    ``logging`` altogether: see ``http.accesslog``."""
    from ..http import accesslog
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    records: queue.Queue = queue.Queue(maxsize=10_000)
    root = logging.getLogger()
    root.setLevel(level)
    root.addHandler(_DroppingQueueHandler(records))
    listener = logging.handlers.QueueListener(records, handler)
    listener.start()
    access = accesslog.BatchedAccessLog(handler, fmt=access_format).start()
    accesslog.install(access)
    return listener, access


def _cmd_version(args) -> int:
    from .. import __version__
    from ..pfs import sqlbatch
    from ..store import chunker, hashing
    print(f"s3gw {__version__}")
    print(f"chunker: {chunker.IMPLEMENTATION} (format v{chunker.CHUNKER_VERSION}, "
          f"min/avg/max {'/'.join(str(x) for x in chunker.DEFAULT_PARAMS)})")
    print(f"hashing: {hashing.IMPLEMENTATION}")
    print(f"sqlite batches: {sqlbatch.IMPLEMENTATION}")
    print(f"python: {sys.version.split()[0]}")
    return 0


def _cmd_migrate(args) -> int:
    from ..pfs.backends import is_postgres_url
    if args.pipelines:
        from .migrate_pps import run_migrate_pipelines
        return run_migrate_pipelines(args)
    if args.from_dir:
        from .migrate import run_migrate
        return run_migrate(args)
    if not is_postgres_url(args.meta):
        print("s3gw: migrate takes --meta postgresql://... (a data folder's SQLite file "
              "is brought up to date when it is opened)", file=sys.stderr)
        return 2
    from ..pfs.postgres import SCHEMA_VERSION, migrate
    try:
        applied = migrate(args.meta)
    except Exception as exc:
        reason = _meta_error(exc)
        if reason is None:
            raise
        print(f"s3gw: {reason}", file=sys.stderr)
        return 1
    if applied:
        print(f"applied schema migration(s) {', '.join(map(str, applied))}: "
              f"now at version {SCHEMA_VERSION}")
    else:
        print(f"already at schema version {SCHEMA_VERSION}")
    return 0


def _open_meta(args):
    from .metastore import open_meta
    return open_meta(args)


def _meta_error(exc: BaseException) -> str | None:
    from .metastore import meta_error
    return meta_error(exc)


def _console_arg(text):
    if text is None or str(text).strip().lower() in ("off", "none", "no", "0", "false", ""):
        return None
    from ..app import parse_console_address
    try:
        parse_console_address(str(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return str(text).strip()


def _inline_max(text) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a byte count: {text!r}") from None
    if not 0 <= value <= 65536:
        raise argparse.ArgumentTypeError("must be 0 to 65536 bytes")
    return value


def _open_store(args):
    """The folder's chunk store (its own, or the object store ``serve --chunks`` recorded),
    opened as an admin: beside a live server, touching no upload in flight."""
    from ..store.backends import open_chunk_store
    return open_chunk_store(args.data, owner=False)


def _cmd_stats(args) -> int:
    from ..store.integrity import quarantined_count
    meta = _open_meta(args)
    stats = meta.stats()
    store = _open_store(args)
    chunks, stored = store.usage()
    packs, pack_bytes = store.packs.files() if hasattr(store, "packs") else (0, 0)
    inline_chunks, inline_bytes = _inline_usage(meta)
    stats.update(chunks=chunks, stored_bytes=stored, packs=packs, pack_file_bytes=pack_bytes,
                 inline_chunks=inline_chunks, inline_bytes=inline_bytes,
                 quarantined_chunks=quarantined_count(args.data))
    kept = stored + inline_bytes
    stats["dedup_ratio"] = round(stats["object_bytes"] / kept, 3) if kept else None
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        width = max(map(len, stats))
        for k, v in stats.items():
            print(f"{k:>{width}}: {v}")
    return 0


def _inline_usage(meta) -> tuple[int, int]:
    """(inline chunks, their bytes): small objects' data kept in their manifests."""
    from ..store.manifest import Manifest
    count = size = 0
    for blob in meta.referenced_manifests():
        for ref in Manifest.unpack(blob).chunks:
            if ref.data is not None:
                count += 1
                size += ref.length
    return count, size


def _history_command(name):
    def run(args) -> int:
        from .history import COMMANDS
        return COMMANDS[name](args, _open_meta(args))
    return run


def _cmd_gc(args) -> int:
    from ..pfs.gc import collect_garbage
    meta = _open_meta(args)
    store = _open_store(args)   # beside a live server: touch no temp file
    from .progress import track
    r = collect_garbage(meta, store, grace_s=args.grace, dry_run=args.dry_run, progress=track)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {r.chunks_removed} chunks ({r.bytes_removed} bytes) and {r.objects_removed} "
          f"objects; {r.chunks_kept} chunks referenced")
    if r.packs_removed:
        print(f"compacted {r.packs_removed} packs ({r.pack_bytes_freed} bytes)")
    return 0


def _cmd_fsck(args) -> int:
    from ..pfs.backends import remembered
    if args.meta or remembered(args.data):
        return _fsck_metadata_store(args)
    from .fsck import run
    return run(args)


def _fsck_metadata_store(args) -> int:
    """fsck of a folder whose metadata is in PostgreSQL: every chunk and inline chunk
    checked through the store interfaces (cli/fsck.py walks meta.sqlite itself)."""
    from ..store.chunkstore import verify_inline
    from ..store.manifest import Manifest
    store = _open_store(args)
    bad = checked = 0
    present: set[bytes] = set()
    for cid in store.iter_ids():
        checked += 1
        present.add(bytes(cid))
        if not store.verify(cid):
            bad += 1
            print(f"CORRUPT {store.where(cid)}")
    inline = 0
    from ..pfs.backends import remembered
    has_meta = bool(args.meta or remembered(args.data)) or os.path.exists(
        os.path.join(args.data, "meta.sqlite"))
    for blob in _open_meta(args).referenced_manifests() if has_meta else ():
        for ref in Manifest.unpack(blob).chunks:
            if ref.data is not None:
                inline += 1
                if not verify_inline(ref):
                    bad += 1
                    print(f"CORRUPT inline chunk {ref.id.hex()}")
            elif bytes(ref.id) not in present and not store.has(ref.id):  # a chunk of a
                bad += 1                             # commit after the listing: still there
                print(f"MISSING {store.where(ref.id)}")
    print(f"checked {checked} chunks and {inline} inline chunks: {bad} corrupt")
    return 1 if bad else 0


def _cmd_auth(args) -> int:
    from .auth import run
    return run(args)


def _cmd_pipeline(args) -> int:
    from .pipelines import run_pipeline
    return run_pipeline(args)


def _cmd_job(args) -> int:
    from .pipelines import run_job
    return run_job(args)


_COMMANDS = {"migrate": _cmd_migrate, "auth": _cmd_auth, "gc": _cmd_gc, "fsck": _cmd_fsck, "serve": _cmd_serve,
             "version": _cmd_version, "stats": _cmd_stats,
             "log": _history_command("log"), "branch": _history_command("branch"),
             "diff": _history_command("diff"), "pipeline": _cmd_pipeline, "job": _cmd_job}

if __name__ == "__main__":
    sys.exit(main())
