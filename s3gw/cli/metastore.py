"""Opening the metadata store an admin command names (``--data``, ``--meta``)."""

from __future__ import annotations

import sys

__all__ = ["open_meta", "meta_error"]


def meta_error(exc: BaseException) -> str | None:
    """One line for a metadata store that cannot be used (unmigrated, unknown schema,
    unreachable; a folder's own auth.sqlite or pipelines not yet in the database),
    None for any other error."""
    from ..pfs.backends import LocalAuthNotImported
    from ..pfs.model import PfsError
    from ..pps.backends import OldPipelineState
    if isinstance(exc, PfsError) and type(exc).__name__ == "SchemaMismatch":
        return str(exc)
    if isinstance(exc, (LocalAuthNotImported, OldPipelineState)):   # a refused folder
        return str(exc)
    if type(exc).__module__.startswith("psycopg") and type(exc).__name__ == "OperationalError":
        return f"cannot reach the metadata database: {str(exc).strip().splitlines()[0]}"
    return None


def open_meta(args):
    from ..pfs.backends import open_metadata
    try:
        return open_metadata(args.data, getattr(args, "meta", None), must_exist=True)
    except FileNotFoundError:
        print(f"s3gw: no data folder at {args.data}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception as exc:
        reason = meta_error(exc) or (str(exc) if isinstance(exc, ValueError) else None)
        if reason is None:
            raise
        print(f"s3gw: {reason}", file=sys.stderr)
        raise SystemExit(1) from None
