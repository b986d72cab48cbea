"""What a pipeline job may do through its own endpoint, and who may write output repos (pure).

Theory of operation
-------------------
A job's endpoint serves a :class:`~s3gw.pps.jobs.JobView`: its S3 inputs, each
a bucket named by the input and pinned to the job's input commit, and
``out``.  :func:`check_view_request` decides a request on that endpoint
before any operation runs:

* ListBuckets is answered from the view (``view_buckets``), nothing else.
* A bucket that is not in the view does not exist (``NoSuchBucket``): the
  rest of the store is not reachable, not even by name.
* Inputs are read-only: every write endpoint answers ``AccessDenied`` naming
  the bucket.  ``out`` takes object reads and writes (multipart included);
  its bucket-level administration (DeleteBucket, ACLs) is ``AccessDenied``.
  CreateBucket of a view bucket answers ``BucketAlreadyOwnedByYou``
  (``aws s3 mb s3://out`` in a job is harmless).
* A copy source must be a bucket of the view too.

:func:`check_output_write` is the rule of the main port: a repo that is a
pipeline's output is written only by that pipeline's jobs (through their
views); any write endpoint on it from outside answers ``AccessDenied``.
"""

from __future__ import annotations

from ..pps.jobs import JobView, ViewBucket
from .wire.endpoints import BUCKET, SERVICE, WRITE, Endpoint
from .wire.errors import S3Error
from .wire.names import BucketRef, parse_bucket, parse_copy_source

__all__ = ["check_view_request", "check_output_write", "view_ref"]

_COPIES = frozenset({"CopyObject", "UploadPartCopy"})


def view_ref(bucket: ViewBucket) -> BucketRef:
    """Where a view bucket points in the store (pinned inputs are read-only refs)."""
    return BucketRef(bucket.repo, bucket.branch, bucket.commit)


def check_view_request(view: JobView, endpoint: Endpoint, bucket: str | None,
                       headers) -> None:
    """Refuse what the job may not do (see the module docstring).

    Raises:
        S3Error: ``NoSuchBucket``, ``AccessDenied`` or ``BucketAlreadyOwnedByYou``.
    """
    if endpoint.scope == SERVICE:
        return
    target = view.get(bucket)
    if target is None:
        raise S3Error("NoSuchBucket", f"Bucket {bucket} is not part of job {view.job_id}'s "
                      "view (its inputs and out).", bucket_name=bucket or "")
    if endpoint.name == "CreateBucket":
        raise S3Error("BucketAlreadyOwnedByYou", bucket_name=bucket)
    if endpoint.access == WRITE:
        if not target.writable:
            raise S3Error("AccessDenied", f"Bucket {bucket} is a read-only input of job "
                          f"{view.job_id}: write to the out bucket.", bucket_name=bucket)
        if endpoint.scope == BUCKET and endpoint.name != "DeleteObjects":
            raise S3Error("AccessDenied", f"{endpoint.name} is not allowed on {bucket} in a "
                          "job's view.", bucket_name=bucket)
    if endpoint.name in _COPIES:
        source = parse_copy_source(headers.get("x-amz-copy-source") or "")
        if view.get(source.bucket) is None:
            raise S3Error("AccessDenied", f"Copy source bucket {source.bucket} is not part of "
                          f"job {view.job_id}'s view.", bucket_name=source.bucket)


def check_output_write(endpoint: Endpoint, bucket: str | None, outputs: frozenset[str]) -> None:
    """A write endpoint on a pipeline's output repo from the main port is refused.

    Raises:
        S3Error: ``AccessDenied`` (or ``InvalidBucketName`` for a malformed name).
    """
    if endpoint.access != WRITE or not bucket or not outputs:
        return
    repo = parse_bucket(bucket).repo
    if repo in outputs:
        raise S3Error("AccessDenied", f"Repo {repo} is the output of pipeline {repo}: only its "
                      "jobs write to it (read it, or delete the pipeline first).",
                      bucket_name=bucket)
