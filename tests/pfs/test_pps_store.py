"""Commit provenance in the metadata store (the pipeline stores themselves:
tests/pfs/test_pps_store_conformance.py)."""

from __future__ import annotations

from s3gw.pfs.metadata import SqliteMetadata
from s3gw.pfs.model import ObjectInfo, Put


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
