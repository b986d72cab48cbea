"""The pure parts of pipelines: specs, datums, the job lifecycle table, job views."""

from __future__ import annotations

import pytest

from s3gw.pps.datums import glob_pieces, plan_datums
from s3gw.pps.jobs import (InvalidTransition, JobState, JobView, ViewBucket, next_state,
                           settlement, staging_repo)
from s3gw.pps.sqlstore import TRUNCATED, cut
from s3gw.pps.spec import (CrossInput, PfsInput, SpecError, check_names, parse_duration,
                           parse_spec)
from s3gw.s3.wire.endpoints import by_name
from s3gw.s3.wire.errors import S3Error
from s3gw.s3.jobviews import check_output_write, check_view_request
from s3gw.s3.wire.names import parse_bucket

SEED = {
    "pipeline": {"name": "copy"},
    "input": {"pfs": {"repo": "labresults", "glob": "/", "s3": True}},
    "transform": {"cmd": ["sh"], "stdin": ["echo hi"]},
    "s3_out": True,
}


def spec_with(**changes):
    doc = {k: (dict(v) if isinstance(v, dict) else v) for k, v in SEED.items()}
    doc.update(changes)
    return doc


# -- specs ------------------------------------------------------------------------------
def test_seed_spec_parses_with_pachyderm_defaults():
    spec = parse_spec(SEED)
    assert spec.name == "copy"
    assert spec.input == PfsInput(name="labresults", repo="labresults", branch="master",
                                  glob="/", s3=True)
    assert spec.transform.cmd == ("sh",) and spec.transform.stdin == ("echo hi",)
    assert spec.output_branch == "master" and spec.s3_out


def test_yaml_spec_parses_like_json():
    text = """
pipeline:
  name: copy
input:
  pfs: {repo: labresults, glob: /, s3: true}
transform:
  cmd: [sh]
  stdin: [echo hi]
s3_out: true
"""
    assert parse_spec(text) == parse_spec(SEED)


def test_image_and_parallelism_are_accepted_and_reported_as_ignored():
    doc = spec_with(transform={"cmd": ["sh"], "image": "amazon/aws-cli"},
                    parallelism_spec={"constant": 1})
    spec = parse_spec(doc)
    assert spec.transform.image == "amazon/aws-cli"
    assert spec.ignored == ("parallelism_spec", "transform.image")


@pytest.mark.parametrize("change,message", [
    ({"bogus": 1}, "spec.bogus: unknown field"),
    ({"egress": {}}, "a Pachyderm field s3gw does not support"),
    ({"pipeline": {}}, "pipeline.name: required"),
    ({"pipeline": {"name": "bad name"}}, "not a valid name"),
    ({"input": {"pfs": {"glob": "/"}}}, "input.pfs.repo: required"),
    ({"input": {"pfs": {"repo": "r", "glob": "*"}}}, "must start with '/'"),
    ({"input": {"pfs": {"repo": "r", "glob": "/[a"}}}, "unbalanced"),
    ({"input": {"pfs": {"repo": "r", "glob": "/*", "s3": True}}}, "S3 input must have glob"),
    ({"input": {"pfs": {"repo": "r", "s3": "yes"}}}, "expected true or false"),
    ({"input": {"pfs": {"repo": "r", "name": "out"}}}, "reserved"),
    ({"input": {"cross": [{"pfs": {"repo": "r"}}, {"pfs": {"repo": "r"}}]}}, "unique"),
    ({"input": {"union": [{"pfs": {"repo": "r", "s3": True}}]}}, "cannot be inside a union"),
    ({"input": {"group": [{"pfs": {"repo": "r"}}]}}, "group: not supported"),
    ({"input": {"cron": {"spec": "@every 1m"}}}, "cron"),
    ({"input": {"pfs": {"repo": "copy"}}}, "also an input repo"),
    ({"transform": {"stdin": ["x"]}}, "transform.cmd: required"),
    ({"transform": {"cmd": []}}, "must not be empty"),
    ({"transform": {"cmd": ["sh"], "env": {"A": 1}}}, "transform.env"),
    ({"transform": {"cmd": ["sh"], "err_cmd": ["x"]}}, "err_cmd"),
    ({"transform": {"cmd": ["sh"], "timeout": "soon"}}, "not a duration"),
    ({"s3_out": False}, "s3_out: must be true"),
    ({"job_timeout": "-1s"}, "job_timeout"),
])
def test_invalid_specs_name_the_field(change, message):
    with pytest.raises(SpecError) as e:
        parse_spec(spec_with(**change))
    assert message in str(e.value)


def test_invalid_json_is_a_spec_error():
    with pytest.raises(SpecError, match="invalid JSON"):
        parse_spec('{"pipeline": ')


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("1h30m", 5400), ("1.5m", 90),
                                          ("250ms", 0.25), (3, 3.0)])
def test_go_durations(text, seconds):
    assert parse_duration(text, "t") == pytest.approx(seconds)


def test_check_names_needs_the_input_and_a_free_output_name():
    spec = parse_spec(SEED)
    facts = dict(repos={"labresults"}, branches={("labresults", "master")}, outputs=set())
    check_names(spec, updating=False, **facts)
    with pytest.raises(SpecError, match="does not exist"):
        check_names(spec, updating=False, repos=set(), branches=set(), outputs=set())
    with pytest.raises(SpecError, match="branch 'master' of repo 'labresults' does not exist"):
        check_names(spec, updating=False, repos={"labresults"}, branches=set(), outputs=set())
    with pytest.raises(SpecError, match="exists and is not a pipeline"):
        check_names(spec, updating=False, repos={"labresults", "copy"},
                    branches={("labresults", "master")}, outputs=set())
    with pytest.raises(SpecError, match="exists already"):
        check_names(spec, updating=False, repos={"labresults", "copy"},
                    branches={("labresults", "master")}, outputs={"copy"})
    check_names(spec, updating=True, repos={"labresults", "copy"},
                branches={("labresults", "master")}, outputs={"copy"})


# -- datums -----------------------------------------------------------------------------
FILES = ["a.txt", "b.csv", "dir/c.txt", "dir/sub/d.txt", "other/e.txt"]


def test_glob_root_is_one_piece_with_every_file():
    piece, = glob_pieces("in", "/", FILES)
    assert piece.match == "/" and piece.paths == tuple(FILES)


def test_glob_star_is_one_piece_per_top_level_entry():
    pieces = glob_pieces("in", "/*", FILES)
    assert [(p.match, p.paths) for p in pieces] == [
        ("/a.txt", ("a.txt",)), ("/b.csv", ("b.csv",)),
        ("/dir", ("dir/c.txt", "dir/sub/d.txt")), ("/other", ("other/e.txt",))]


def test_glob_patterns_match_per_component():
    assert [p.match for p in glob_pieces("in", "/*.txt", FILES)] == ["/a.txt"]
    assert [p.match for p in glob_pieces("in", "/dir/*", FILES)] == ["/dir/c.txt", "/dir/sub"]
    assert glob_pieces("in", "/nothing/*", FILES) == []


def test_cross_of_s3_and_glob_gives_one_datum_per_match_with_the_s3_input_whole():
    tree = CrossInput((PfsInput("ref", "ref", s3=True), PfsInput("in", "in", glob="/*")))
    datums = plan_datums(tree, lambda inp: FILES)
    assert len(datums) == 4
    assert all(d.pieces[0].input == "ref" and d.pieces[0].paths == () for d in datums)
    assert [d.pieces[1].match for d in datums] == ["/a.txt", "/b.csv", "/dir", "/other"]
    assert datums[2].id == "ref:/ in:/dir"


def test_cross_of_s3_inputs_is_one_datum_and_reads_no_file_lists():
    tree = CrossInput((PfsInput("a", "a", s3=True), PfsInput("b", "b", s3=True)))

    def never(_):
        raise AssertionError("S3 inputs are not listed")

    datum, = plan_datums(tree, never)
    assert [p.input for p in datum.pieces] == ["a", "b"]


def test_an_empty_glob_match_gives_no_datum():
    assert plan_datums(PfsInput("in", "in", glob="/*"), lambda inp: []) == []
    assert len(plan_datums(PfsInput("in", "in", glob="/"), lambda inp: [])) == 1


# -- the lifecycle table ----------------------------------------------------------------
def test_job_lifecycle_table():
    S = JobState
    assert next_state(S.CREATED, "start") == S.RUNNING
    assert next_state(S.RUNNING, "finish") == S.FINISHING
    assert next_state(S.FINISHING, "commit") == S.SUCCESS
    assert next_state(S.FINISHING, "recover") == S.SUCCESS
    assert next_state(S.RUNNING, "kill") == S.KILLED
    for final in (S.SUCCESS, S.FAILURE, S.KILLED):
        for event in ("start", "finish", "commit", "fail", "kill", "recover"):
            with pytest.raises(InvalidTransition):
                next_state(final, event)
    with pytest.raises(InvalidTransition):
        next_state(S.FINISHING, "kill")          # the commit decides, not a stop


@pytest.mark.parametrize("state,commit,stopped,events,requeue,outcome", [
    ("RUNNING", None, False, ("fail",), True, "interrupted"),
    ("FINISHING", None, False, ("fail",), True, "interrupted"),
    ("RUNNING", "c", False, ("finish", "recover"), False, "succeeded"),
    ("FINISHING", "c", False, ("recover",), False, "succeeded"),
    ("FINISHING", "c", True, ("recover",), False, "succeeded"),   # the commit wins
    ("RUNNING", None, True, ("kill",), False, "stopped"),
    ("FINISHING", None, True, ("fail",), False, "stopped"),
    ("CREATED", None, True, ("kill",), False, "stopped"),
    ("CREATED", None, False, (), False, "queued"),
    ("SUCCESS", "c", False, (), False, "final"),
    ("FAILURE", None, True, (), False, "final"),
    ("KILLED", None, False, (), False, "final"),
])
def test_settlement_plans(state, commit, stopped, events, requeue, outcome):
    plan = settlement(JobState(state), commit, stopped)
    assert (plan.events, plan.requeue, plan.outcome) == (events, requeue, outcome)
    end = JobState(state)
    for event in plan.events:                   # every plan is a path through the table
        end = next_state(end, event)
    assert end in {JobState(state), JobState.SUCCESS, JobState.FAILURE, JobState.KILLED}


def test_a_log_keeps_what_fits_then_says_it_was_cut_once():
    note = TRUNCATED.format(limit=10).encode()
    assert cut(b"abc", 0, 10) == b"abc" and cut(b"abc", 7, 10) == b"abc"
    assert cut(b"abcdef", 7, 10) == b"abc" + note
    assert cut(b"x", 10, 10) == b"" and cut(b"x", 10 + len(note), 10) == b""


# -- views ------------------------------------------------------------------------------
VIEW = JobView("j1", "AK", "SK", (ViewBucket("data", "labresults", "master", "c" * 32, False),
                                  ViewBucket("out", staging_repo("j1"), "master", None, True)))


class Headers(dict):
    def get(self, name, default=None):
        return super().get(name, default)


def view_error(name: str, bucket: str | None, headers=None) -> str | None:
    try:
        check_view_request(VIEW, by_name(name), bucket, Headers(headers or {}))
    except S3Error as exc:
        return exc.code
    return None


def test_staging_repos_cannot_be_named_by_a_bucket():
    with pytest.raises(S3Error):
        parse_bucket(f"master.{staging_repo('j1')}")


@pytest.mark.parametrize("op,bucket,expected", [
    ("ListBuckets", None, None),
    ("ListObjectsV2", "data", None),
    ("GetObject", "data", None),
    ("PutObject", "data", "AccessDenied"),
    ("DeleteObject", "data", "AccessDenied"),
    ("DeleteObjects", "data", "AccessDenied"),
    ("CreateMultipartUpload", "data", "AccessDenied"),
    ("PutObject", "out", None),
    ("GetObject", "out", None),
    ("DeleteObjects", "out", None),
    ("CompleteMultipartUpload", "out", None),
    ("DeleteBucket", "out", "AccessDenied"),
    ("PutBucketAcl", "out", "AccessDenied"),
    ("CreateBucket", "out", "BucketAlreadyOwnedByYou"),
    ("CreateBucket", "new", "NoSuchBucket"),
    ("GetObject", "master.labresults", "NoSuchBucket"),
    ("ListObjectsV2", "labresults", "NoSuchBucket"),
])
def test_view_decisions(op, bucket, expected):
    assert view_error(op, bucket) == expected


def test_view_copies_only_from_view_buckets():
    assert view_error("CopyObject", "out", {"x-amz-copy-source": "data/a.txt"}) is None
    assert view_error("CopyObject", "out", {"x-amz-copy-source": "master.x/a.txt"}) \
        == "AccessDenied"
    assert view_error("CopyObject", "data", {"x-amz-copy-source": "data/a.txt"}) \
        == "AccessDenied"


def test_output_repos_are_written_by_their_jobs_only():
    outputs = frozenset({"copy"})
    for op in ("PutObject", "DeleteObject", "DeleteObjects", "CopyObject", "UploadPart",
               "CreateMultipartUpload", "CreateBucket", "DeleteBucket"):
        with pytest.raises(S3Error) as e:
            check_output_write(by_name(op), "master.copy", outputs)
        assert e.value.code == "AccessDenied" and "pipeline copy" in e.value.message
    check_output_write(by_name("GetObject"), "master.copy", outputs)
    check_output_write(by_name("PutObject"), "master.other", outputs)
    check_output_write(by_name("PutObject"), "master.copy", frozenset())
