"""The console's pages: values in, HTML out (pure; see ``render`` for escaping).

Each function takes what ``queries`` read and returns the page body as
``Html``; ``server`` wraps it with ``render.page``.  URLs are built here and
only here, with ``render.url`` (quoted, then escaped):

``/repo/<repo>``, ``/repo/<repo>/log/<ref>[?before=]``, ``/repo/<repo>/commit/<id>``,
``/repo/<repo>/files/<ref>?prefix=&after=``, ``/repo/<repo>/file/<ref>?path=``,
``/repo/<repo>/raw/<ref>?path=[&download=1]``, ``/repo/<repo>/diff?from=&to=``,
``/dag``, ``/jobs[?pipeline=]``, ``/job/<id>``, ``/job/<id>/log``.
"""

from __future__ import annotations

import posixpath

from ..pfs.model import CommitInfo, FileInfo
from ..pps.jobs import JobInfo
from . import render as r
from .render import Html, esc, link, size, table, url, when, short

__all__ = ["overview", "repo", "log", "commit", "folder", "file", "diff", "dag", "jobs",
           "job", "login", "error", "preview_kind", "IMAGE_TYPES"]

AUTHOR_NOTE = ("Commits carry no author: s3gw does not record who made a commit yet, so "
               "the console shows none rather than guess one.")

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".gif": "image/gif", ".webp": "image/webp"}
_TEXT_EXT = {".txt", ".md", ".log", ".py", ".yaml", ".yml", ".ini", ".cfg", ".toml", ".sh",
             ".xml", ".html", ".htm", ".js", ".css", ".sql", ".r", ".rst", ".conf"}


def commit_url(repo: str, cid: str) -> Html:
    return url(f"/repo/{repo}/commit/{cid}")


def files_url(repo: str, ref: str, prefix: str = "", after: str | None = None) -> Html:
    return url(f"/repo/{repo}/files/{ref}", prefix=prefix, after=after)


def file_url(repo: str, ref: str, path: str) -> Html:
    return url(f"/repo/{repo}/file/{ref}", path=path)


def _commit_link(repo: str, cid: str | None) -> Html:
    return link(commit_url(repo, cid), short(cid), "commit") if cid else Html("-")


def _saving(logical: int, unique: int) -> str:
    if logical <= 0:
        return "-"
    return f"{size(logical - unique)} ({100 * (logical - unique) / logical:.0f}%)"


def overview(rows) -> Html:
    body = table(
        ["Repo", "Branches", "Last change", "Size (branch heads)", "Stored once",
         "Dedup saving"],
        [[link(url(f"/repo/{row.name}"), row.name, "repo"),
          Html(", ".join(link(url(f"/repo/{row.name}/log/{b.branch.name}"), b.branch.name)
                         for b in row.branches)),
          when(row.last_change), size(row.logical), size(row.unique),
          _saving(row.logical, row.unique)] for row in sorted(rows, key=lambda x: x.name)],
        empty="no repos yet (or none you may read)")
    return Html(body + '<p class="note">Sizes count every branch head\'s files; "stored once" '
                'counts each distinct object once (branches and copies share objects). '
                'Chunk-level deduplication of the whole store: <code>s3gw stats</code>.</p>')


def repo(row) -> Html:
    return table(
        ["Branch", "Head", "Last change", "Message", "Files", "Size", ""],
        [[link(url(f"/repo/{row.name}/log/{b.branch.name}"), b.branch.name, "branch"),
          _commit_link(row.name, b.branch.head), when(b.head.time_ns if b.head else None),
          b.head.message if b.head else "", str(b.files), size(b.bytes),
          link(files_url(row.name, b.branch.name), "browse files")] for b in row.branches])


def log(ref, rows, next_before: str | None) -> Html:
    repo_ = ref.repo
    head = (f'<p class="actions">{link(files_url(repo_, ref.name), "Browse files")} '
            f'{link(url(f"/repo/{repo_}/diff"), "Compare commits")}</p>')
    trs = []
    for row in rows:
        c = row.commit
        prov = ""
        if row.provenance:
            jid = row.provenance.get("job")
            prov = link(url(f"/job/{jid}"), f"job {short(jid)}") if jid else "pipeline"
        trs.append([_commit_link(repo_, c.id), when(c.time_ns), c.message, "—",
                    str(row.changes), Html(prov) if prov else ""])
    more = ""
    if next_before:
        more = (f'<p class="pager">'
                f'{link(url(f"/repo/{repo_}/log/{ref.name}", before=next_before), "Older commits →", "next")}'
                f"</p>")
    return Html(head + table(["Commit", "Time", "Message", "Author", "Files changed",
                              "Provenance"], trs, cls="grid log", empty="no commits yet")
                + more + f'<p class="note">{esc(AUTHOR_NOTE)}</p>')


def provenance(repo_: str, prov: dict | None, visible) -> Html:
    """The inputs an output commit came from; ``visible(repo)`` hides what the viewer
    may not read."""
    if not prov:
        return Html("")
    jid = prov.get("job")
    rows = []
    for i in prov.get("inputs", ()):
        if visible(i.get("repo", "")):
            rows.append([i.get("name", ""), link(url(f"/repo/{i['repo']}"), i["repo"]),
                         i.get("branch", ""), _commit_link(i["repo"], i.get("commit"))])
        else:
            rows.append([i.get("name", ""), "(a repo you may not read)", "", ""])
    head = (f'<h2>Provenance</h2><p>Made by {link(url(f"/job/{jid}"), f"job {short(jid)}")} '
            f'of pipeline {esc(prov.get("pipeline", ""))} v{esc(prov.get("spec_version", ""))} '
            "from these input commits:</p>") if jid else "<h2>Provenance</h2>"
    return Html(head + table(["Input", "Repo", "Branch", "Commit"], rows, cls="grid provenance"))


def commit(c: CommitInfo, changes, next_after: str | None, count: int, prov_html: Html) -> Html:
    repo_ = c.repo
    facts = [("Commit", Html(f"<code>{esc(c.id)}</code>")), ("Repo", link(url(f"/repo/{repo_}"), repo_)),
             ("Made on branch", link(url(f"/repo/{repo_}/log/{c.branch}"), c.branch)),
             ("Parent", _commit_link(repo_, c.parent)), ("Time", when(c.time_ns)),
             ("Message", c.message), ("Files changed", str(count)),
             ("Author", "not recorded")]
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    actions = [link(files_url(repo_, c.id), "Browse files at this commit")]
    if c.parent:
        actions.append(link(url(f"/repo/{repo_}/diff", **{"from": c.parent, "to": c.id}),
                            "Diff with parent"))
    rows = []
    for path, sz, etag in changes:
        name = link(file_url(repo_, c.id, path), path) if sz is not None else esc(path)
        rows.append(["written" if sz is not None else "deleted", name, size(sz), etag or ""])
    more = ""
    if next_after:
        more = (f'<p class="pager">'
                f'{link(url(f"/repo/{repo_}/commit/{c.id}", after=next_after), "More files →", "next")}</p>')
    return Html(f'<dl class="facts">{dl}</dl><p class="actions">{" ".join(actions)}</p>'
                + prov_html + "<h2>Changes</h2>"
                + table(["Change", "Path", "Size", "ETag"], rows, cls="grid changes") + more)


def _at(ref) -> Html:
    if ref.branch is not None:
        head = ref.commit.id if ref.commit else None
        return Html(f'<p class="at">Branch {link(url(f"/repo/{ref.repo}/log/{ref.branch}"), ref.branch)}'
                    f' at {_commit_link(ref.repo, head)}</p>')
    return Html(f'<p class="at">At commit {_commit_link(ref.repo, ref.commit.id)} '
                f'({when(ref.commit.time_ns)}, branch {esc(ref.commit.branch)})</p>')


def _prefix_crumbs(ref, prefix: str) -> Html:
    parts = [link(files_url(ref.repo, ref.name), ref.repo)]
    acc = ""
    for seg in prefix.split("/")[:-1]:
        acc += seg + "/"
        parts.append(link(files_url(ref.repo, ref.name, acc), seg))
    return Html('<p class="path">' + " / ".join(parts) + "</p>")


def folder(ref, prefix: str, f) -> Html:
    rows = []
    for kind, e in f.entries:
        if kind == "dir":
            name = e[len(prefix):]
            rows.append([link(files_url(ref.repo, ref.name, e), name, "dir"), "", "", "", "", ""])
        else:
            info: FileInfo = e
            name = info.path[len(prefix):] or "(folder marker)"
            rows.append([link(file_url(ref.repo, ref.name, info.path), name, "file"),
                         size(info.object.size), info.object.etag,
                         info.object.headers.get("content-type", "binary/octet-stream"),
                         Html(f"{_commit_link(ref.repo, info.commit_id)} {when(info.time_ns)}"),
                         link(url(f"/repo/{ref.repo}/raw/{ref.name}", path=info.path,
                                  download="1"), "download")])
    more = ""
    if f.next_after:
        more = (f'<p class="pager">'
                f'{link(files_url(ref.repo, ref.name, prefix, f.next_after), "Next page →", "next")}</p>')
    return Html(_at(ref) + _prefix_crumbs(ref, prefix)
                + table(["Name", "Size", "ETag", "Content type", "Last changed", ""], rows,
                        cls="grid files", empty="empty folder") + more)


def preview_kind(path: str, content_type: str, head: bytes) -> str:
    """``image``, ``csv``, ``json``, ``text`` or ``binary``."""
    ext = posixpath.splitext(path.lower())[1]
    ct = content_type.split(";")[0].strip().lower()
    if ext in IMAGE_TYPES:
        return "image"
    if ext in (".csv", ".tsv") or ct in ("text/csv", "text/tab-separated-values"):
        return "csv"
    if ext in (".json", ".jsonl", ".geojson") or ct == "application/json":
        return "json"
    if ext in _TEXT_EXT or ct.startswith("text/"):
        return "text"
    if b"\0" not in head[:8192]:
        try:
            head[:8192].decode("utf-8")
            return "text"
        except UnicodeDecodeError:
            pass
    return "binary"


def file(ref, info: FileInfo, kind: str, head: bytes) -> Html:
    obj = info.object
    raw = url(f"/repo/{ref.repo}/raw/{ref.name}", path=info.path)
    download = url(f"/repo/{ref.repo}/raw/{ref.name}", path=info.path, download="1")
    facts = [("Path", info.path), ("Size", f"{size(obj.size)} ({obj.size} bytes)"),
             ("ETag", obj.etag), ("Content type", obj.headers.get("content-type", "binary/octet-stream")),
             ("Last changed", Html(f"{_commit_link(ref.repo, info.commit_id)} {when(info.time_ns)}")),
             ("History", link(url(f"/repo/{ref.repo}/log/{ref.name}"), "commit log"))]
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    cut = len(head) < obj.size
    note = (f'<p class="note">Preview of the first {size(len(head))}.</p>'
            if cut and kind != "image" else "")
    if kind == "image":
        body = f'<img class="preview" src="{raw}" alt="{esc(info.path)}">'
    elif kind == "csv":
        body = r.csv_table(head)
    elif kind == "json":
        body = f'<pre class="preview">{esc(r.json_text(head) if not cut else r.text_lines(head))}</pre>'
    elif kind == "text":
        body = f'<pre class="preview">{esc(r.text_lines(head))}</pre>'
    else:
        body = '<p class="empty">No preview for binary content.</p>'
    return Html(_at(ref) + _prefix_crumbs(ref, info.path) + f'<dl class="facts">{dl}</dl>'
                + f'<p class="actions"><a class="button" href="{download}">Download</a></p>'
                + f'<h2>Preview</h2>{note}<div class="preview-box">{body}</div>')


def diff(repo_: str, old: str, new: str, rows, total: int, error: str = "") -> Html:
    form = (f'<form method="get" action="{url(f"/repo/{repo_}/diff")}" class="diffform">'
            f'<label>From <input name="from" size="34" value="{esc(old)}"></label> '
            f'<label>To <input name="to" size="34" value="{esc(new)}"></label> '
            '<button type="submit">Compare</button></form>')
    if error:
        return Html(form + f'<p class="error">{esc(error)}</p>')
    if not old or not new:
        return Html(form + '<p class="note">Give two commit ids of this repo (any branches).</p>')
    labels = {"A": "added", "M": "changed", "D": "deleted"}
    counts = {k: sum(1 for x in rows if x.status == k) for k in labels}
    summary = (f'<p class="summary">{_commit_link(repo_, old)} → {_commit_link(repo_, new)}: '
               f'{total} paths: {counts["A"]} added, {counts["M"]} changed, '
               f'{counts["D"]} deleted{" (first rows shown)" if total > len(rows) else ""}</p>')
    trs = [[Html(f'<span class="st st-{s.status}">{labels[s.status]}</span>'),
            link(file_url(repo_, new if s.status != "D" else old, s.path), s.path),
            size(s.old_size), size(s.new_size)] for s in rows]
    return Html(form + summary + table(["Change", "Path", "Old size", "New size"], trs,
                                       cls="grid diff", empty="no differences"))


def dag(svg: Html, pipelines) -> Html:
    rows = [[link(url("/jobs", pipeline=p.name), p.name), f"v{p.version}",
             ", ".join(sorted({i.repo for i in p.spec.inputs})),
             r.state_badge(state) if state else "no job yet"] for p, state in pipelines]
    return Html(f'<div class="dagbox">{svg}</div><h2>Pipeline specs</h2>'
                + table(["Pipeline", "Spec", "Inputs", "Latest job"], rows,
                        empty="no pipelines (or none you may read)"))


def _duration(j: JobInfo) -> str:
    d = j.duration_s
    return "-" if d is None else f"{d:.1f} s"


def jobs(items: list[JobInfo], pipeline: str | None) -> Html:
    rows = [[link(url(f"/job/{j.id}"), short(j.id), "job"), link(url("/jobs", pipeline=j.pipeline), j.pipeline),
             r.state_badge(j.state.value), when(j.created_ns), _duration(j),
             _commit_link(j.pipeline, j.output_commit),
             ", ".join(f"{i.name}@{short(i.commit)}" for i in j.inputs)] for j in items]
    note = f'<p class="at">Jobs of pipeline {esc(pipeline)}</p>' if pipeline else ""
    return Html(note + table(["Job", "Pipeline", "State", "Created", "Duration", "Output commit",
                              "Inputs"], rows, cls="grid jobs", empty="no jobs"))


def job(j: JobInfo, log_tail: bytes, log_size: int, visible) -> Html:
    facts = [("Job", Html(f"<code>{esc(j.id)}</code>")),
             ("Pipeline", link(url("/jobs", pipeline=j.pipeline), f"{j.pipeline} (spec v{j.spec_version})")),
             ("State", r.state_badge(j.state.value)), ("Reason", j.reason or "-"),
             ("Created", when(j.created_ns)), ("Started", when(j.started_ns)),
             ("Finished", when(j.finished_ns)), ("Duration", _duration(j)),
             ("Datums", f"{j.datums} ({j.datums_failed} failed)"),
             ("Output commit", _commit_link(j.pipeline, j.output_commit))]
    if j.restart_of:
        facts.append(("Re-run of", link(url(f"/job/{j.restart_of}"), short(j.restart_of))))
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    rows = [[i.name, link(url(f"/repo/{i.repo}"), i.repo) if visible(i.repo) else "(hidden)",
             i.branch, _commit_link(i.repo, i.commit) if visible(i.repo) else "",
             "S3 bucket" if i.s3 else "files"] for i in j.inputs]
    shown = (f" (last {size(len(log_tail))} of {size(log_size)}; "
             f'{link(url(f"/job/{j.id}/log"), "whole log")})') if log_size > len(log_tail) else ""
    return Html(f'<dl class="facts">{dl}</dl><h2>Inputs</h2>'
                + table(["Input", "Repo", "Branch", "Commit", "As"], rows, cls="grid inputs")
                + f"<h2>Log{shown}</h2>"
                + f'<pre class="log">{esc(log_tail.decode("utf-8", "replace")) or "(empty)"}</pre>')


def login(error: str = "") -> Html:
    err = f'<p class="error">{esc(error)}</p>' if error else ""
    return Html(
        err + '<form method="post" action="/login" class="login" autocomplete="off">'
        '<label>Access key or token <input name="access_key" id="access_key" required '
        'autocomplete="username"></label>'
        '<label>Secret key <input name="secret_key" id="secret_key" type="password" '
        'autocomplete="current-password"></label>'
        '<p class="note">For a token, put it in the first field and leave the secret empty.</p>'
        '<button type="submit" id="signin">Sign in</button></form>')


def error(message: str) -> Html:
    return Html(f'<p class="error">{esc(message)}</p><p>{link(url("/"), "Back to the repos")}</p>')
