"""HTML building blocks of the console: escaping, links, tables, the page frame.

Theory of operation
-------------------
Pages are plain strings put together from these helpers; nothing here does
I/O or reads a clock (times are formatted from the values given).  The one
rule: **every value that comes from data -- repo, branch and file names,
commit messages, job reasons, file contents -- goes through ``esc``** (or
through ``url``, which percent-quotes and then escapes).  Helpers that take
already-built HTML say so in their names (``*_html``) or their docstrings;
``Html`` marks such strings so a caller cannot pass raw data by mistake into
``table`` cells (a plain ``str`` cell is escaped there).
"""

from __future__ import annotations

import csv
import datetime
import html
import io
import json
from typing import Iterable, Sequence
from urllib.parse import quote, urlencode

__all__ = ["Html", "esc", "url", "link", "table", "page", "size", "when", "short",
           "csv_table", "json_text", "text_lines", "state_badge", "PREVIEW_BYTES"]

PREVIEW_BYTES = 64 * 1024      # of a file shown in a preview (text, CSV, JSON)
CSV_ROWS = 50


class Html(str):
    """A string that is already HTML (built by these helpers): not escaped again."""


def esc(value: object) -> Html:
    """``value`` as HTML text (``&<>"'`` escaped); an ``Html`` value is left as is."""
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def url(path: str, /, **query: object) -> Html:
    """A link target: ``path`` segments percent-quoted (``/`` kept), the query
    url-encoded (None values dropped), the whole escaped for an attribute."""
    q = {k: v for k, v in query.items() if v is not None and v != ""}
    target = quote(path, safe="/")
    if q:
        target += "?" + urlencode(q)
    return esc(target)


def link(href: Html, text: object, cls: str | None = None) -> Html:
    c = f' class="{esc(cls)}"' if cls else ""
    return Html(f'<a href="{href}"{c}>{esc(text)}</a>')


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], cls: str = "grid",
          empty: str = "nothing here") -> Html:
    """A table; ``str`` cells are escaped, ``Html`` cells are put in as they are."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        body = f'<tr><td colspan="{len(headers)}" class="empty">{esc(empty)}</td></tr>'
    return Html(f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>")


def size(n: int | None) -> str:
    """Bytes in a short human form: ``0 B``, ``1.5 KiB``, ``3.2 GiB``."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"   # not reached


def when(ns: int | None) -> Html:
    """A commit or job time, UTC, in a ``<time>`` element (machine-readable too)."""
    if ns is None:
        return Html("-")
    t = datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc)
    return Html(f'<time datetime="{t:%Y-%m-%dT%H:%M:%SZ}">{t:%Y-%m-%d %H:%M:%S}</time>')


def short(commit_id: str | None) -> str:
    """The first 12 hex digits of a commit id (enough to tell them apart by eye)."""
    return "-" if not commit_id else commit_id[:12]


def state_badge(state: str) -> Html:
    return Html(f'<span class="state state-{esc(state.lower())}">{esc(state)}</span>')


def csv_table(data: bytes, rows: int = CSV_ROWS) -> Html:
    """The first ``rows`` rows of CSV data (the first one as the header)."""
    text = data.decode("utf-8", "replace")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    out: list[list[str]] = []
    try:
        for row in reader:
            out.append(row)
            if len(out) > rows:
                break
    except csv.Error:
        pass
    if len(data) >= PREVIEW_BYTES and out:
        out.pop()            # the last row read may be cut off by the preview limit
    if not out:
        return Html('<p class="empty">empty</p>')
    header, body = out[0], out[1:rows + 1]
    return table(header, body, cls="grid csv")


def json_text(data: bytes) -> str:
    """JSON pretty-printed if it parses whole, else the text as it is."""
    text = data.decode("utf-8", "replace")
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def text_lines(data: bytes) -> str:
    return data.decode("utf-8", "replace")


_NAV = (("Repos", "/"), ("Pipelines", "/dag"), ("Jobs", "/jobs"))


def page(title: str, body: Html, *, user: str | None = None, auth: bool = False,
         crumbs: Sequence[tuple[str, Html | None]] = (), live: bool = False) -> bytes:
    """The whole document: header (navigation, who is signed in), breadcrumbs, body.

    ``live``: the page's ``<main>`` is refreshed in place when the store changes
    (``static/console.js`` polls ``/api/version``).
    """
    nav = "".join(f'<a href="{url(href)}">{esc(name)}</a>' for name, href in _NAV)
    who = ""
    if auth and user:
        who = (f'<form method="post" action="/logout" class="who"><span>{esc(user)}</span>'
               f'<button type="submit">Sign out</button></form>')
    trail = ""
    if crumbs:
        parts = [link(href, name) if href else esc(name) for name, href in crumbs]
        trail = '<nav class="crumbs">' + " / ".join(parts) + "</nav>"
    live_attr = ' data-live="1"' if live else ""
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)} · s3gw</title>"
        "<link rel=\"stylesheet\" href=\"/static/console.css\">"
        "<script src=\"/static/console.js\" defer></script></head><body>"
        f"<header><a class=\"brand\" href=\"/\">s3gw</a><nav class=\"main\">{nav}</nav>{who}"
        "</header>"
        f"<main{live_attr}>{trail}<h1>{esc(title)}</h1>{body}</main>"
        "</body></html>").encode("utf-8")
