"""The S3 operations (async): one function per AWS operation, registered by name."""

from .service import OPERATIONS, S3Service
from . import buckets, copy, listing, multipart, objects, versions  # noqa: E402,F401  (registration)

__all__ = ["OPERATIONS", "S3Service"]
