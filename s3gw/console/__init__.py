"""s3gw.console: a read-only web console (repos, commits, files, diffs, provenance, jobs).

Served by ``s3gw serve`` on a port of its own (``--console``, default
127.0.0.1:30601; ``--console off`` disables it).  Layers: it reads through
``pfs``, ``pps`` and ``store`` and serves with ``http``; ``s3`` never imports
it, ``app`` and ``cli`` wire it.  See docs/console.md.

Modules: ``render`` (escaping, tables, the page frame), ``pages`` (each page's
HTML from values), ``dag`` (layered layout, SVG), ``sessions`` (sign-in and
server-side sessions), ``queries`` (the blocking reads, bounded per page) and
``server`` (routing, worker threads, responses).
"""

from .server import DEFAULT_CONSOLE_PORT, Console

__all__ = ["Console", "DEFAULT_CONSOLE_PORT"]
