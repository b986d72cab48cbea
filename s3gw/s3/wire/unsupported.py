"""Request headers that ask for something s3gw does not do: refuse, never ignore.

Theory of operation
-------------------
An S3 request may carry headers that change what a write means: encrypt the
object (SSE-S3, SSE-KMS, SSE-C), tag it, lock it, append to it.  s3gw stores
objects unencrypted, keeps no tags, has no object lock and never appends.
Accepting such a request and dropping the header would be a silent success
(DESIGN: "never a silent success"): a client that sent an SSE-C key believes
nobody can read the object without it, and a client that appended at an
offset would find its object replaced.  So :func:`check` refuses them, with
the answer AWS gives where one applies:

* SSE-S3 / SSE-KMS (``x-amz-server-side-encryption`` and its ``-aws-kms-*``,
  ``-context`` and ``-bucket-key-enabled`` companions) on a write:
  ``NotImplemented``; an unknown algorithm name: ``InvalidArgument``, as AWS;
* SSE-C (``x-amz-server-side-encryption-customer-*``) on a write:
  ``NotImplemented``; on a read, or naming a copy source's key
  (``x-amz-copy-source-server-side-encryption-customer-*``): ``InvalidRequest``,
  AWS's answer for an object that is not encrypted -- and no s3gw object is;
* ``x-amz-object-lock-*`` on a write: ``InvalidRequest`` "Bucket is missing
  Object Lock Configuration", AWS's answer for a bucket without object lock;
* a non-empty ``x-amz-tagging`` on a write: ``NotImplemented`` (the tagging
  operations are not implemented either);
* ``x-amz-write-offset-bytes`` (append): ``NotImplemented``;
* ``x-amz-storage-class``: any class AWS defines is accepted and stored as
  ``STANDARD`` (every object is kept the same way and readable at once); an
  unknown one is ``InvalidStorageClass``, as AWS.

The check is pure (headers and the operation's name in, an ``S3Error`` out)
and cheap when no such header is present: the caller first asks
``Headers.has_any(HEADERS)``, one set lookup per header of the request.
"""

from __future__ import annotations

from .errors import S3Error

__all__ = ["HEADERS", "check"]

# Operations that write an object's content or its stored attributes.
_WRITES = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload"})
# Operations whose request may carry the SSE-C key of the object written or read.
_SSE_C_WRITES = _WRITES | {"UploadPart", "UploadPartCopy"}
_READS = frozenset({"GetObject", "HeadObject"})
_COPIES = frozenset({"CopyObject", "UploadPartCopy"})

_SSE = ("x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id",
        "x-amz-server-side-encryption-context", "x-amz-server-side-encryption-bucket-key-enabled")
_SSE_C = ("x-amz-server-side-encryption-customer-algorithm",
          "x-amz-server-side-encryption-customer-key",
          "x-amz-server-side-encryption-customer-key-md5")
_COPY_SSE_C = tuple("x-amz-copy-source-" + name[len("x-amz-"):] for name in _SSE_C)
_LOCK = ("x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date",
         "x-amz-object-lock-legal-hold")
_TAGGING = "x-amz-tagging"
_APPEND = "x-amz-write-offset-bytes"
_STORAGE_CLASS = "x-amz-storage-class"

#: Every header name this module looks at (lowercase).
HEADERS = frozenset(_SSE + _SSE_C + _COPY_SSE_C + _LOCK
                    + (_TAGGING, _APPEND, _STORAGE_CLASS))

SSE_ALGORITHMS = frozenset({"AES256", "aws:kms", "aws:kms:dsse", "aws:fsx"})
STORAGE_CLASSES = frozenset({
    "STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
    "GLACIER", "DEEP_ARCHIVE", "OUTPOSTS", "GLACIER_IR", "SNOW", "EXPRESS_ONEZONE",
    "FSX_OPENZFS", "FSX_ONTAP"})

_NOT_ENCRYPTED = "The encryption parameters are not applicable to this object."


def check(operation: str, headers) -> None:
    """Refuse a request whose headers ask for what s3gw does not do (see the module doc).

    Args:
        operation: the AWS operation name (``Endpoint.name``).
        headers: the request's ``Headers`` (lowercase names; ``get`` gives the first value).
    Raises:
        S3Error: ``NotImplemented``, ``InvalidRequest``, ``InvalidArgument`` or
            ``InvalidStorageClass``.  Returns None when the request may proceed.
    """
    get = headers.get
    if operation in _SSE_C_WRITES and any(get(name) is not None for name in _SSE_C):
        raise S3Error("NotImplemented", "s3gw does not encrypt objects: server-side encryption "
                      "with customer-provided keys (SSE-C) is not supported.")
    if operation in _READS and any(get(name) is not None for name in _SSE_C):
        raise S3Error("InvalidRequest", _NOT_ENCRYPTED)
    if operation in _COPIES and any(get(name) is not None for name in _COPY_SSE_C):
        raise S3Error("InvalidRequest", _NOT_ENCRYPTED)
    if operation not in _WRITES:
        return
    sse = get("x-amz-server-side-encryption")
    if sse is not None and sse not in SSE_ALGORITHMS:
        raise S3Error("InvalidArgument", "The encryption method specified is not supported",
                      argument_name="x-amz-server-side-encryption", argument_value=sse)
    if any(get(name) is not None for name in _SSE):
        raise S3Error("NotImplemented", "s3gw does not encrypt objects at rest: server-side "
                      f"encryption ({sse or 'x-amz-server-side-encryption-*'}) is not supported.")
    if any(get(name) is not None for name in _LOCK):
        raise S3Error("InvalidRequest", "Bucket is missing Object Lock Configuration")
    if get(_TAGGING):
        raise S3Error("NotImplemented", "s3gw does not keep object tags (x-amz-tagging).")
    if get(_APPEND) is not None:
        raise S3Error("NotImplemented", "s3gw does not append to objects "
                      "(x-amz-write-offset-bytes).")
    storage_class = get(_STORAGE_CLASS)
    if storage_class is not None and storage_class not in STORAGE_CLASSES:
        raise S3Error("InvalidStorageClass", storage_class_requested=storage_class)
