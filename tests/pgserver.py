"""A real PostgreSQL server for the tests, in a temporary folder on a loopback port.

Debian's PostgreSQL (``/usr/lib/postgresql/<version>/bin``: initdb, pg_ctl); as root
the server runs as the ``postgres`` user (it refuses root).  ``PgServer.database()``
makes a fresh UTF-8 database (C collation) at the current schema version and
returns its URL.  ``available()`` says why not when the binaries are missing.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

__all__ = ["PgServer", "pg_bin", "available"]


def pg_bin() -> str | None:
    """The newest installed PostgreSQL's bin folder, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[-3]) if p.split("/")[-3].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None


def available() -> str | None:
    """None if a test server can start here, else the reason it cannot."""
    if pg_bin() is None:
        return "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb; apt-get install postgresql)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the server as"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, root: str):
        self.root = root
        self.data = os.path.join(root, "pgdata")
        self.port = _free_port()
        self.bin = pg_bin()
        self._names = itertools.count()
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    @classmethod
    def in_temp_folder(cls) -> "PgServer":
        """In a new folder under the system's temp folder (pytest's is private to root:
        the postgres user could not enter it); ``stop`` removes it."""
        return cls(tempfile.mkdtemp(prefix="s3gw-pg-"))

    def _run(self, *argv: str) -> subprocess.CompletedProcess:
        if os.geteuid() == 0:
            argv = ("runuser", "-u", "postgres", "--", *argv)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}"
                               f"{proc.stderr}")
        return proc

    def start(self, *, durable: bool = False, shared_buffers: str = "32MB") -> "PgServer":
        """``durable``: fsync and full-page writes on, as in production (benchmarks);
        the tests run without them.  ``shared_buffers``: the tests' 32MB is a quarter
        of PostgreSQL's default (128MB); benchmarks of large tables pass that."""
        os.makedirs(self.root, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(f"{self.bin}/initdb", "-D", self.data, "-U", self.user, "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                f"-c unix_socket_directories={self.root} -c max_connections=300 "
                + ("-c fsync=on -c full_page_writes=on -c synchronous_commit=on "
                   if durable else "-c fsync=off -c full_page_writes=off ")
                + f"-c shared_buffers={shared_buffers}")
        self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-l", os.path.join(self.root, "log"),
                  "-o", opts, "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        try:
            self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        except RuntimeError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def database(self, *, migrate: bool = True) -> str:
        """A new empty database (migrated to the current schema unless told not to)."""
        import psycopg
        name = f"s3gw_{os.getpid()}_{next(self._names)}_{int(time.time() * 1000) % 100000}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\' '
                         "LC_COLLATE 'C' LC_CTYPE 'C'")
        url = self.url(name)
        if migrate:
            from s3gw.pfs.postgres import migrate as do_migrate
            do_migrate(url)
        return url

    def drop(self, url: str) -> None:
        import psycopg
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
