"""Compiled extensions built from ``_native/*.pyx`` (see setup.py).

The rest of s3gw does not import them directly: ``s3gw.store.chunker``,
``s3gw.store.hashing`` and ``s3gw.pfs.sqlbatch`` each pick the compiled module
or its pure-Python twin with ``select``.
"""

from __future__ import annotations

import importlib
import logging

from .. import settings


def select(name: str, twin, api_version: int, what: str, check=None):
    """``(module, "cython" | "python", why the twin or None)``: the compiled
    ``s3gw._native.<name>``, unless ``S3GW_PUREPYTHON=1``, it was not built, its
    ``API_VERSION`` is not ``api_version``, or ``check(module)`` returns a reason.
    Falling back for any reason but the environment variable logs a warning
    naming ``what``."""
    if settings.current().pure_python:      # chosen once, at import (s3gw.settings)
        return twin, "python", "S3GW_PUREPYTHON=1"
    try:
        native = importlib.import_module(f"s3gw._native.{name}")
    except ImportError as exc:
        reason = f"native {name} not built ({exc})"
    else:
        version = getattr(native, "API_VERSION", None)
        if version != api_version:
            reason = (f"native {name} API_VERSION {version} != {api_version}; rebuild it "
                      "(python setup.py build_ext --inplace)")
        else:
            reason = check(native) if check is not None else None
            if reason is None:
                return native, "cython", None
    logging.getLogger(f"s3gw.{name}").warning("using the pure-Python %s: %s", what, reason)
    return twin, "python", reason
