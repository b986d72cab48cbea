"""Pipelines (PPS): specs, jobs and their state, the per-job S3 view, executors.

Layering: ``pps`` uses ``pfs`` (and ``store`` to materialise input files);
``s3`` imports the pure view values (``pps.jobs``) to serve a job's endpoint;
``app`` wires a :class:`~s3gw.pps.runner.Runner` into ``s3gw serve``.  State lives
behind ``pps.interface.PipelineStore``: the folder's ``pps.sqlite``
(``pps.store``) or the metadata's PostgreSQL database (``pps.pgstore``), whichever
the metadata backend is (``pps.backends``).
"""

from .jobs import FINAL, InputCommit, JobInfo, JobState, JobView, ViewBucket, is_internal_repo
from .spec import PipelineSpec, SpecError, parse_spec

__all__ = ["FINAL", "InputCommit", "JobInfo", "JobState", "JobView", "ViewBucket",
           "is_internal_repo", "PipelineSpec", "SpecError", "parse_spec"]
