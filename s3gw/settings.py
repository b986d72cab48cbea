"""Every ``S3GW_*`` environment variable, in one place.

Theory of operation
-------------------
``VARIABLES`` is the table: setting name -> (variable, default, parser).  A
:class:`Settings` is an immutable snapshot made by :func:`from_env` from a
mapping (``os.environ`` unless given), so a test or an embedding program can
build one without touching the process environment.  :func:`current` is the
process's snapshot, read from ``os.environ`` on first use and kept; code that
needs a setting asks it *when it needs it* (a store reads its cache sizes when
it is opened), not when its module is imported.  The one deliberate exception
is ``pure_python``: the hot-path implementation is chosen once, when
``s3gw._native`` is first imported.

Command-line options of ``s3gw serve`` take their defaults from here, so an
option and its variable cannot drift apart (``s3gw serve --help`` names both).

This module imports nothing of s3gw; every layer may import it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping

__all__ = ["Settings", "VARIABLES", "from_env", "current", "reset"]


def _flag(text: str) -> bool:
    return text.strip() == "1"


def _opt(text: str) -> str | None:
    return text or None


# name -> (environment variable, default, parser of the variable's text)
VARIABLES: dict[str, tuple[str, Any, Callable[[str], Any]]] = {
    # where and how `s3gw serve` serves (options of the same names)
    "data": ("S3GW_DATA", "s3gw-data", str),
    "host": ("S3GW_HOST", "127.0.0.1", str),
    "port": ("S3GW_PORT", 30600, int),
    "region": ("S3GW_REGION", "us-east-1", str),
    "domain": ("S3GW_DOMAIN", None, _opt),
    "log_level": ("S3GW_LOG_LEVEL", "INFO", str),
    "log_format": ("S3GW_LOG_FORMAT", "text", str),
    "upload_expiry": ("S3GW_UPLOAD_EXPIRY", "7d", str),   # parsed by the CLI (units)
    "inline_max": ("S3GW_INLINE_MAX", None, _opt),         # None: the store's default
    "max_jobs": ("S3GW_MAX_JOBS", 2, int),
    "workers": ("S3GW_WORKERS", 1, int),
    "job_host": ("S3GW_JOB_HOST", "127.0.0.1", str),
    "console": ("S3GW_CONSOLE", "127.0.0.1:30601", str),
    "meta": ("S3GW_META", None, _opt),
    "chunks": ("S3GW_CHUNKS", None, _opt),
    "metrics_token": ("S3GW_METRICS_TOKEN", None, _opt),
    "body_min_rate": ("S3GW_BODY_MIN_RATE", 1024.0, float),
    "body_rate_grace": ("S3GW_BODY_RATE_GRACE", 20.0, float),
    # tuning
    "sqlite_cache_kib": ("S3GW_SQLITE_CACHE_KIB", 4096, int),
    "sqlite_reader_cache_kib": ("S3GW_SQLITE_READER_CACHE_KIB", 1024, int),
    "upload_memory_mib": ("S3GW_UPLOAD_MEMORY_MIB", 512, int),
    "startup_check_mib": ("S3GW_STARTUP_CHECK_MIB", 512, int),
    # admin commands' progress output
    "progress": ("S3GW_PROGRESS", "auto", lambda t: t.strip().lower()),
    "progress_interval": ("S3GW_PROGRESS_INTERVAL", 10.0, float),
    # the hot path's implementation (read once, at import of s3gw._native)
    "pure_python": ("S3GW_PUREPYTHON", False, _flag),
}


@dataclass(frozen=True)
class Settings:
    data: str = "s3gw-data"
    host: str = "127.0.0.1"
    port: int = 30600
    region: str = "us-east-1"
    domain: str | None = None
    log_level: str = "INFO"
    log_format: str = "text"
    upload_expiry: str = "7d"
    inline_max: str | None = None
    max_jobs: int = 2
    workers: int = 1
    job_host: str = "127.0.0.1"
    console: str = "127.0.0.1:30601"
    meta: str | None = None
    chunks: str | None = None
    metrics_token: str | None = None
    body_min_rate: float = 1024.0
    body_rate_grace: float = 20.0
    sqlite_cache_kib: int = 4096
    sqlite_reader_cache_kib: int = 1024
    upload_memory_mib: int = 512
    startup_check_mib: int = 512
    progress: str = "auto"
    progress_interval: float = 10.0
    pure_python: bool = False

    @staticmethod
    def variable(name: str) -> str:
        """The environment variable of a setting (for help texts)."""
        return VARIABLES[name][0]


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """A snapshot of the settings from ``environ`` (default ``os.environ``).

    Raises:
        ValueError: a variable whose text its parser refuses, naming the variable.
    """
    environ = os.environ if environ is None else environ
    values = {}
    for name, (var, default, parse) in VARIABLES.items():
        text = environ.get(var)
        if text is None:
            values[name] = default
            continue
        try:
            values[name] = parse(text)
        except ValueError:
            raise ValueError(f"{var}={text!r} is not a valid value") from None
    return Settings(**values)


_current: Settings | None = None


def current() -> Settings:
    """The process's settings, read from ``os.environ`` on first use."""
    global _current
    if _current is None:
        _current = from_env()
    return _current


def reset() -> None:
    """Forget the process's snapshot (the next ``current()`` reads the environment
    again); for tests that change variables."""
    global _current
    _current = None


assert {f.name for f in fields(Settings)} == set(VARIABLES), "Settings and VARIABLES differ"
