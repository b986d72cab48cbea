"""pps.sqlite (pipelines and jobs) and commit provenance in the metadata store."""

from __future__ import annotations

import pytest

from s3gw.pfs.metadata import SqliteMetadata
from s3gw.pfs.model import ObjectInfo, Put
from s3gw.pps.jobs import InputCommit, InvalidTransition, JobState
from s3gw.pps.spec import parse_spec
from s3gw.pps.store import NoSuchJob, PpsStore

SPEC = parse_spec({"pipeline": {"name": "copy"},
                   "input": {"pfs": {"repo": "labresults", "s3": True}},
                   "transform": {"cmd": ["true"]}, "s3_out": True})


def test_pipelines_versions_and_output_repos_seen_by_another_connection(tmp_path):
    server, cli = PpsStore(str(tmp_path)), PpsStore(str(tmp_path))
    assert server.output_repos() == frozenset()
    assert cli.put_pipeline(SPEC, 1, update=False) == 1
    assert server.output_repos() == {"copy"}           # a change made by another process
    with pytest.raises(ValueError):
        cli.put_pipeline(SPEC, 2, update=False)
    assert cli.put_pipeline(SPEC, 3, update=True) == 2
    record = server.pipeline("copy")
    assert record.version == 2 and record.spec == SPEC
    cli.delete_pipeline("copy")
    assert server.output_repos() == frozenset()


def test_jobs_move_only_through_the_table(tmp_path):
    pps = PpsStore(str(tmp_path))
    pps.put_pipeline(SPEC, 1, update=False)
    inputs = [InputCommit("labresults", "labresults", "master", "c" * 32, True)]
    job = pps.create_job("copy", 1, inputs, 10)
    assert job.state == JobState.CREATED and job.inputs == tuple(inputs)
    job = pps.transition(job.id, "start", 20)
    assert job.state == JobState.RUNNING and job.started_ns == 20
    with pytest.raises(InvalidTransition):
        pps.transition(job.id, "commit", 30)
    pps.transition(job.id, "finish", 30, datums=1)
    job = pps.transition(job.id, "commit", 40, output_commit="d" * 32)
    assert (job.state, job.finished_ns, job.output_commit, job.datums) == \
        (JobState.SUCCESS, 40, "d" * 32, 1)
    assert job.duration_s == pytest.approx(20e-9)
    assert pps.job(job.id[:8]).id == job.id            # a unique prefix names a job
    assert pps.unfinished_jobs() == []
    with pytest.raises(NoSuchJob):
        pps.job("nope")


def test_commit_provenance_is_recorded_with_the_commit(tmp_path):
    meta = SqliteMetadata(str(tmp_path / "meta.sqlite"))
    meta.create_branch("copy", "master", 1)
    obj = ObjectInfo(size=0, etag="d41d8cd98f00b204e9800998ecf8427e", manifest=b"")
    prov = {"job": "j1", "pipeline": "copy", "spec_version": 1, "inputs": []}
    c = meta.commit("copy", "master", [Put("a", obj)], "job j1", 2, provenance=prov)
    assert meta.provenance_of(c.id) == prov and meta.commit_of_job("j1") == c.id
    # an output identical to the last one still makes a commit that records its provenance
    empty = meta.commit("copy", "master", [], "job j2", 3, provenance={"job": "j2"},
                        allow_empty=True)
    assert empty is not None and empty.parent == c.id
    assert meta.commit("copy", "master", [], "nothing", 4) is None
    meta.delete_branch("copy", "master")
    assert meta.provenance_of(c.id) is None and meta.commit_of_job("j2") is None
