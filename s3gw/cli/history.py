"""History subcommands: ``s3gw log``, ``s3gw branch list|create``, ``s3gw diff``.

* ``s3gw log <bucket> [path]``: the commits of a bucket (``<branch>.<repo>``,
  ``<repo>`` or a pinned ``<commit>.<branch>.<repo>``), newest first; with a
  path (``/a/b.csv`` or ``a/b.csv``) only the commits that changed it, with
  ``M`` (written) or ``D`` (deleted), size and ETag.  Versions deleted by id
  (expunged, docs/versioning.md) show who deleted them, when, and through which
  branch, under the commit whose version it was.
* ``s3gw branch create <branch>.<repo> --from <commit|branch|branch.repo>``:
  a new branch whose head *is* that commit: no data and no commit copied.
* ``s3gw diff [<bucket>] <old> <new>``: paths added (A), modified (M), deleted
  (D) from the first commit to the second (same repo), in UTF-8 byte order.
  ``old`` and ``new`` are commit expressions, as S3 version ids are: a commit
  id, ``<commit>^`` / ``^N`` / ``~N`` (that many commits before it), ``HEAD``,
  ``HEAD^``...; ``HEAD`` is the head of ``<bucket>``'s branch (or its pinned
  commit), so the forms with ``HEAD`` need the bucket.
"""

from __future__ import annotations

import datetime
import re
import sys
import time

__all__ = ["add_parsers", "COMMANDS"]

_COMMIT = re.compile(r"[0-9a-f]{32}")


def add_parsers(sub, data_arg) -> None:
    p = sub.add_parser("log", help="commits of a bucket (<branch>.<repo>), or of one path in it")
    data_arg(p)
    p.add_argument("bucket")
    p.add_argument("path", nargs="?", help="only commits that changed this file")
    p.add_argument("-n", type=int, default=20, help="at most this many commits (default 20)")

    p = sub.add_parser("branch", help="list branches, or create one at a commit or branch")
    actions = p.add_subparsers(dest="action", required=True)
    data_arg(actions.add_parser("list", help="every branch of every repo, with its head"))
    c = actions.add_parser("create", help="a new branch at a commit (no data copied)")
    data_arg(c)
    c.add_argument("name", help="<branch>.<repo>")
    c.add_argument("--from", dest="source", metavar="COMMIT|BRANCH", required=True,
                   help="a commit id, a branch name of the same repo, or <branch>.<repo>")

    p = sub.add_parser("diff", help="paths added/modified/deleted between two commits",
                       usage="s3gw diff [--data DATA] [BUCKET] OLD NEW")
    data_arg(p)
    p.add_argument("refs", nargs="+", metavar="[BUCKET] OLD NEW",
                   help="two commit expressions (a commit id, <commit>^, <commit>~2, HEAD, "
                        "HEAD^, ...: what S3 version ids accept); HEAD needs the bucket "
                        "(<branch>.<repo>) first")


def _time(ns: int) -> str:
    t = datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc)
    return f"{t:%Y-%m-%d %H:%M:%S}"


def _fail(msg: str) -> int:
    print(f"s3gw: {msg}", file=sys.stderr)
    return 1


def _cmd_log(args, meta) -> int:
    from ..pfs.model import NoSuchBranch, NoSuchCommit
    from ..s3.wire.errors import S3Error
    from ..s3.wire.names import parse_bucket
    try:
        ref = parse_bucket(args.bucket)
        if args.path is None:
            if ref.commit is not None:
                commits, c = [], meta.get_commit(ref.commit)
                while c is not None and len(commits) < args.n:
                    commits.append(c)
                    c = meta.get_commit(c.parent) if c.parent else None
            else:
                commits = meta.log(ref.repo, ref.branch, args.n)
            expunged: dict[str, list] = {}
            for x in meta.expunges(ref.repo, [c.id for c in commits]):
                expunged.setdefault(x.commit_id, []).append(x)
            for c in commits:
                print(f"{c.id}  {_time(c.time_ns)}  {c.message}")
                for x in expunged.get(c.id, ()):
                    print(f"    {_expunge_line(x)}")
                provenance = meta.provenance_of(c.id)
                if provenance:
                    print(f"    provenance: pipeline {provenance.get('pipeline')} "
                          f"v{provenance.get('spec_version')}, job {provenance.get('job')}")
                    for i in provenance.get("inputs", ()):
                        print(f"      <- {i['name']}: {i['branch']}.{i['repo']} "
                              f"commit {i['commit']}")
            return 0
        path = args.path[1:] if args.path.startswith("/") else args.path
        log = meta.history.path_log(ref.repo, ref.branch, path, args.n, pinned=ref.commit)
        gone = {x.commit_id: x for x in meta.expunges(ref.repo, [v.commit_id for v in log], path)}
        for v in log:
            if v.expunged:
                what = _expunge_line(gone[v.commit_id]) if v.commit_id in gone else "expunged"
            elif v.object is None:
                what = "D"
            else:
                what = f"M  {v.object.size:>12}  {v.object.etag}"
                if v.origin:
                    what += f"  (restores version {v.origin})"
            print(f"{v.commit_id}  {_time(v.time_ns)}  {what}")
        return 0
    except S3Error as exc:
        return _fail(exc.message)
    except (NoSuchBranch, NoSuchCommit) as exc:
        return _fail(f"no such bucket or commit: {exc}")


def _expunge_line(x) -> str:
    """One expunge record as ``s3gw log`` shows it (who deleted which version, when)."""
    who = x.principal or "anonymous (auth off)"
    line = (f"expunged /{x.path} (version {x.version} deleted by {who} at {_time(x.time_ns)} "
            f"through {x.branch}")
    if x.restore_commit:
        line += f"; restore commit {x.restore_commit}"
    return line + ")"


def _cmd_branch(args, meta) -> int:
    from ..pfs.model import BranchExists, NoSuchBranch, NoSuchCommit
    from ..s3.wire.errors import S3Error
    from ..s3.wire.names import parse_bucket
    if args.action == "list":
        for b in meta.list_branches():
            print(f"{b.name}.{b.repo}\t{b.head or '-'}")
        return 0
    if not args.name or not args.source:
        return _fail("usage: s3gw branch create <branch>.<repo> --from <commit|branch>")
    try:
        ref = parse_bucket(args.name)
        if ref.commit is not None:
            return _fail("a branch name cannot be pinned to a commit")
        src = args.source
        if _COMMIT.fullmatch(src):
            commit = meta.get_commit(src)
            if commit.repo != ref.repo:
                return _fail(f"commit {src} belongs to repo {commit.repo}, not {ref.repo}")
            head = commit.id
        else:
            sref = parse_bucket(src) if "." in src else parse_bucket(f"{src}.{ref.repo}")
            if sref.repo != ref.repo:
                return _fail("a branch can only start from a commit of its own repo")
            head = sref.commit or meta.get_branch(sref.repo, sref.branch).head
        from .progress import track
        b = meta.create_branch(ref.repo, ref.branch, time.time_ns(), from_commit=head,
                               progress=track)
    except S3Error as exc:
        return _fail(exc.message)
    except BranchExists:
        return _fail(f"branch {args.name} already exists")
    except (NoSuchBranch, NoSuchCommit) as exc:
        return _fail(f"no such branch or commit: {exc}")
    print(f"{b.name}.{b.repo}\t{b.head or '-'}")
    return 0


def _resolve(meta, spec: str, ref) -> str:
    """The commit id an expression names; ``ref``: the bucket (``BucketRef``) or None.

    Raises:
        InvalidVersion: not an expression; ValueError: HEAD without a bucket;
        NoSuchCommit / NoSuchBranch: nothing there.
    """
    from ..pfs.history import InvalidVersion, parse_version
    parsed = parse_version(spec)
    if parsed is None:
        raise InvalidVersion(spec)          # "null" (the current file) names no commit
    base, back = parsed
    if base == "HEAD":
        if ref is None:
            raise ValueError(f"{spec}: HEAD needs a bucket: s3gw diff <branch>.<repo> OLD NEW")
        return meta.resolve_version(ref.repo, ref.branch, spec, pinned=ref.commit).id
    if back == 0:
        return base
    commit = meta.get_commit(base)      # its own lineage: <commit>^ needs no branch
    return meta.resolve_version(commit.repo, commit.branch, spec, pinned=commit.id).id


def _cmd_diff(args, meta) -> int:
    from ..pfs.history import InvalidVersion
    from ..pfs.model import NoSuchBranch, NoSuchCommit
    from ..s3.wire.errors import S3Error
    from ..s3.wire.names import parse_bucket
    if len(args.refs) not in (2, 3):
        return _fail("usage: s3gw diff [<branch>.<repo>] OLD NEW")
    *bucket, old, new = args.refs
    try:
        ref = parse_bucket(bucket[0]) if bucket else None
        old_id, new_id = _resolve(meta, old, ref), _resolve(meta, new, ref)
        entries = meta.history.diff(old_id, new_id)
    except S3Error as exc:
        return _fail(exc.message)
    except InvalidVersion as exc:
        return _fail(f"not a commit expression: {exc} (a commit id, <commit>^, HEAD, HEAD^2, ...)")
    except ValueError as exc:
        return _fail(str(exc))
    except NoSuchBranch as exc:
        return _fail(f"no such branch: {exc}")
    except NoSuchCommit as exc:
        return _fail(f"no such commit (or not the same repo): {exc}")
    for e in entries:
        print(f"{e.status}\t/{e.path}")
    return 0


COMMANDS = {"log": _cmd_log, "branch": _cmd_branch, "diff": _cmd_diff}
