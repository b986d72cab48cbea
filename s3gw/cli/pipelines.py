"""Pipeline and job subcommands: ``s3gw pipeline ...`` and ``s3gw job ...``.

They act on the pipeline store of the data folder's metadata directly
(``pps.backends``: the folder's ``pps.sqlite``, or the PostgreSQL database of
``--meta`` / the folder's ``metadata.url``, shared by every gateway of it), as
``s3gw auth`` does on ``auth.sqlite``: the running runner picks the changes up
within its poll interval (0.2 s), whichever gateway runs it.  ``--json`` prints
machine-readable output.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time

__all__ = ["add_parsers", "run_pipeline", "run_job"]


def add_parsers(sub, data_arg) -> None:
    p = sub.add_parser("pipeline", help="create, update, list, inspect or delete pipelines")
    actions = p.add_subparsers(dest="action", required=True)
    for name, help_ in (("create", "create a pipeline from a spec (JSON or YAML)"),
                        ("update", "replace a pipeline's spec (a new spec version)")):
        c = actions.add_parser(name, help=help_)
        data_arg(c)
        c.add_argument("-f", "--file", required=True, help="the spec file ('-': stdin)")
        if name == "update":
            c.add_argument("--reprocess", action="store_true",
                           help="run a job with the new spec for the inputs' current heads")
    c = actions.add_parser("list", help="every pipeline with its state and latest job")
    data_arg(c)
    c.add_argument("--json", action="store_true")
    c = actions.add_parser("inspect", help="a pipeline's spec, version and jobs")
    data_arg(c)
    c.add_argument("name")
    c.add_argument("--json", action="store_true")
    c = actions.add_parser("delete", help="delete a pipeline (its output repo stays)")
    data_arg(c)
    c.add_argument("name")
    c.add_argument("--delete-output", action="store_true",
                   help="also delete the output repo and its history")

    p = sub.add_parser("job", help="list, inspect, show logs of or stop pipeline jobs")
    actions = p.add_subparsers(dest="action", required=True)
    c = actions.add_parser("list", help="jobs, newest first")
    data_arg(c)
    c.add_argument("--pipeline", "-p", help="only this pipeline's jobs")
    c.add_argument("-n", type=int, default=50, help="at most this many (default 50)")
    c.add_argument("--json", action="store_true")
    c = actions.add_parser("inspect", help="a job's state, inputs, output commit and reason")
    data_arg(c)
    c.add_argument("job")
    c.add_argument("--json", action="store_true")
    c = actions.add_parser("logs", help="a job's stdout and stderr")
    data_arg(c)
    c.add_argument("job")
    c.add_argument("-f", "--follow", action="store_true", help="until the job ends")
    c = actions.add_parser("stop", help="stop a job (it ends KILLED; nothing is committed)")
    data_arg(c)
    c.add_argument("job")


def _fail(msg: str, code: int = 1) -> int:
    print(f"s3gw: {msg}", file=sys.stderr)
    return code


def _time(ns: int | None) -> str:
    if ns is None:
        return "-"
    t = datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc)
    return f"{t:%Y-%m-%d %H:%M:%S}"


def _open(args):
    from ..pfs.backends import is_postgres_url, remembered
    from ..pps.backends import open_pps_store
    from .metastore import meta_error, open_meta
    if not is_postgres_url(getattr(args, "meta", None) or remembered(args.data)) and \
            not os.path.exists(os.path.join(args.data, "meta.sqlite")):
        raise SystemExit(_fail(f"no data folder at {args.data} (start s3gw serve --data "
                               f"{args.data} once, or pass --data)", 2))
    meta = open_meta(args)
    try:
        return meta, open_pps_store(args.data, getattr(args, "meta", None))
    except Exception as exc:
        reason = meta_error(exc)
        if reason is None:
            raise
        raise SystemExit(_fail(reason)) from None


def job_dict(job) -> dict:
    return {"id": job.id, "pipeline": job.pipeline, "spec_version": job.spec_version,
            "state": job.state.value, "created": _time(job.created_ns),
            "started": _time(job.started_ns), "finished": _time(job.finished_ns),
            "duration_s": job.duration_s, "datums": job.datums,
            "inputs": [{"name": i.name, "repo": i.repo, "branch": i.branch,
                        "commit": i.commit, "s3": i.s3} for i in job.inputs],
            "output_commit": job.output_commit, "reason": job.reason,
            "restart_of": job.restart_of}


# -- pipelines ----------------------------------------------------------------------------
def _read_spec(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    with open(path, encoding="utf-8") as f:
        return f.read()


def _upstream(pipelines: dict[str, set[str]], repos: set[str]) -> set[str]:
    """Every repo the given repos are computed from, through pipelines (inclusive)."""
    seen, todo = set(), list(repos)
    while todo:
        r = todo.pop()
        if r in seen:
            continue
        seen.add(r)
        todo.extend(pipelines.get(r, ()))
    return seen


def _put(args, update: bool) -> int:
    from ..pfs.model import BranchExists
    from ..pps.spec import SpecError, check_names, parse_spec
    from ..pps.interface import NoSuchPipeline
    try:
        text = _read_spec(args.file)
    except OSError as exc:
        return _fail(f"cannot read {args.file}: {exc.strerror or exc}", 2)
    try:
        spec = parse_spec(text)
    except SpecError as exc:
        return _fail(f"invalid spec: {exc}", 2)
    meta, pps = _open(args)
    existing = {p.name: p for p in pps.pipelines()}
    try:
        if update and spec.name not in existing:
            raise SpecError(f"pipeline {spec.name!r} does not exist (use pipeline create)")
        check_names(spec, repos={r.name for r in meta.list_repos()},
                    branches={(b.repo, b.name) for b in meta.list_branches()},
                    outputs=set(existing), updating=update)
        graph = {name: {i.repo for i in p.spec.inputs} for name, p in existing.items()}
        if spec.name in _upstream(graph, {i.repo for i in spec.inputs}):
            raise SpecError(f"pipeline {spec.name!r} would read its own output through "
                            "other pipelines (a cycle)")
        version = pps.put_pipeline(spec, time.time_ns(), update=update)
    except SpecError as exc:
        return _fail(f"invalid spec: {exc}", 2)
    except (ValueError, NoSuchPipeline) as exc:
        return _fail(str(exc), 2)
    try:
        meta.create_branch(spec.name, spec.output_branch, time.time_ns())
    except BranchExists:
        pass
    if update and args.reprocess:
        _reprocess(meta, pps, spec, version)
    for field in spec.ignored:
        print(f"s3gw: note: {field} is accepted and has no effect on the local executor",
              file=sys.stderr)
    verb = "updated" if update else "created"
    print(f"pipeline {spec.name} {verb} (spec version {version}); output: "
          f"{spec.output_branch}.{spec.name}")
    return 0


def _reprocess(meta, pps, spec, version: int) -> None:
    from ..pfs.model import NoSuchBranch
    from ..pps.jobs import InputCommit
    inputs = []
    for i in spec.inputs:
        try:
            head = meta.get_branch(i.repo, i.branch).head
        except NoSuchBranch:
            return
        if head is None:
            return
        inputs.append(InputCommit(i.name, i.repo, i.branch, head, i.s3))
    if not any(j.pipeline == spec.name for j in pps.unfinished_jobs()):
        job = pps.create_job(spec.name, version, inputs, time.time_ns())
        print(f"job {job.id} queued for the current inputs")


def _pipeline_rows(pps) -> list[dict]:
    rows = []
    for p in pps.pipelines():
        latest = pps.latest_job(p.name)
        rows.append({"name": p.name, "version": p.version, "created": _time(p.created_ns),
                     "updated": _time(p.updated_ns),
                     "inputs": [f"{i.name}={i.repo}@{i.branch}{' (s3)' if i.s3 else ''}"
                                f"{'' if i.glob == '/' else ' ' + i.glob}"
                                for i in p.spec.inputs],
                     "output": f"{p.spec.output_branch}.{p.name}",
                     "last_job": latest.id if latest else None,
                     "last_state": latest.state.value if latest else None})
    return rows


def run_pipeline(args) -> int:
    if args.action in ("create", "update"):
        return _put(args, update=args.action == "update")
    from ..pps.interface import NoSuchPipeline
    meta, pps = _open(args)
    if args.action == "list":
        rows = _pipeline_rows(pps)
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        print(f"{'NAME':<20} {'VERSION':>7}  {'INPUTS':<40} {'LAST JOB':<32}  STATE")
        for r in rows:
            print(f"{r['name']:<20} {r['version']:>7}  {', '.join(r['inputs']):<40} "
                  f"{r['last_job'] or '-':<32}  {r['last_state'] or '-'}")
        return 0
    try:
        record = pps.pipeline(args.name)
    except NoSuchPipeline:
        return _fail(f"no pipeline {args.name!r}")
    if args.action == "inspect":
        jobs = pps.jobs(args.name, limit=20)
        doc = {"name": record.name, "version": record.version,
               "created": _time(record.created_ns), "updated": _time(record.updated_ns),
               "output": f"{record.spec.output_branch}.{record.name}",
               "spec": json.loads(record.spec.document),
               "ignored_fields": list(record.spec.ignored),
               "jobs": [job_dict(j) for j in jobs]}
        if args.json:
            print(json.dumps(doc, indent=2))
        else:
            print(f"pipeline {record.name} (spec version {record.version}), output "
                  f"{doc['output']}")
            print(json.dumps(doc["spec"], indent=2))
            for j in jobs:
                print(f"  job {j.id}  {j.state.value:<9}  {_time(j.created_ns)}  "
                      f"{j.output_commit or '-'}  {j.reason}")
        return 0
    # delete
    for j in pps.unfinished_jobs():
        if j.pipeline == args.name:
            pps.request_stop(j.id)
    pps.delete_pipeline(args.name)
    print(f"pipeline {args.name} deleted")
    if args.delete_output:
        for b in meta.list_branches(args.name):
            meta.delete_branch(b.repo, b.name)
        print(f"output repo {args.name} deleted")
    else:
        print(f"output repo {args.name} kept (now writable like any repo)")
    return 0


# -- jobs ---------------------------------------------------------------------------------
def run_job(args) -> int:
    from ..pps.interface import NoSuchJob
    from ..pps.jobs import FINAL, JobState
    meta, pps = _open(args)
    if args.action == "list":
        jobs = pps.jobs(args.pipeline, limit=args.n)
        if args.json:
            print(json.dumps([job_dict(j) for j in jobs], indent=2))
            return 0
        print(f"{'ID':<32}  {'PIPELINE':<16} {'STATE':<9}  {'STARTED':<19}  {'DURATION':>8}  "
              f"{'OUTPUT COMMIT':<32}  INPUTS")
        for j in jobs:
            dur = "-" if j.duration_s is None else f"{j.duration_s:.1f}s"
            inputs = ", ".join(f"{i.name}@{(i.commit or '-')[:12]}" for i in j.inputs)
            print(f"{j.id:<32}  {j.pipeline:<16} {j.state.value:<9}  {_time(j.started_ns):<19}  "
                  f"{dur:>8}  {j.output_commit or '-':<32}  {inputs}")
        return 0
    try:
        job = pps.job(args.job)
    except NoSuchJob:
        return _fail(f"no job {args.job!r}")
    if args.action == "inspect":
        doc = job_dict(job)
        if job.output_commit:
            doc["provenance"] = meta.provenance_of(job.output_commit)
        if args.json:
            print(json.dumps(doc, indent=2))
        else:
            width = max(map(len, doc))
            for k, v in doc.items():
                if isinstance(v, (list, dict)):
                    v = json.dumps(v)
                print(f"{k:>{width}}: {v}")
        return 0
    if args.action == "logs":
        return _logs(args, pps, job)
    # stop
    if job.state in FINAL:
        print(f"job {job.id} has ended already ({job.state.value})")
        return 0
    if job.state == JobState.CREATED:
        pps.transition(job.id, "kill", time.time_ns(), reason="stopped by s3gw job stop")
    else:
        pps.request_stop(job.id)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and pps.job(job.id).state not in FINAL:
            time.sleep(0.1)
    job = pps.job(job.id)
    print(f"job {job.id}: {job.state.value}"
          + ("" if job.state in FINAL else " (stop requested; the server ends it)"))
    return 0


def _logs(args, pps, job) -> int:
    """The job's log from the store (whichever gateway's runner wrote it), 1 MiB at a
    time; ``--follow`` polls until the job has ended."""
    from ..pps.jobs import FINAL

    def drain(pos: int) -> int:
        while data := pps.read_log(job.id, pos, 1 << 20):
            sys.stdout.buffer.write(data)
            pos += len(data)
        sys.stdout.flush()
        return pos

    pos = drain(0)
    while args.follow:
        if pps.job(job.id).state in FINAL:
            drain(pos)               # what was written between the read and the check
            break
        time.sleep(0.2)
        pos = drain(pos)
    return 0
