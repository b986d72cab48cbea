"""The pipeline-store conformance suite: every ``PipelineStore`` implementation (the
folder's SQLite, PostgreSQL on a real server) passes the same cases.  Several handles
on one store stand for several processes (the CLI beside a server, or gateways)."""

from __future__ import annotations

import threading

import pytest

from s3gw.pfs.model import ObjectInfo, Put
from s3gw.pps.interface import (JobFenced, NoSuchJob, NoSuchPipeline, PipelineConflict,
                                PipelineStore, RunnerLock)
from s3gw.pps.jobs import InputCommit, InvalidTransition, JobState
from s3gw.pps.spec import parse_spec
from s3gw.pps.sqlstore import TRUNCATED

SPEC = parse_spec({"pipeline": {"name": "copy"},
                   "input": {"pfs": {"repo": "labresults", "s3": True}},
                   "transform": {"cmd": ["true"]}, "s3_out": True})
SPEC2 = parse_spec({"pipeline": {"name": "copy"},
                    "input": {"pfs": {"repo": "labresults", "s3": True}},
                    "transform": {"cmd": ["false"]}, "s3_out": True})
INPUTS = [InputCommit("labresults", "labresults", "master", "c" * 32, True)]
LIMIT = 300_000       # a small log limit, to reach it


def spec(name: str, repo: str = "labresults") -> object:
    return parse_spec({"pipeline": {"name": name}, "input": {"pfs": {"repo": repo, "s3": True}},
                       "transform": {"cmd": ["true"]}, "s3_out": True})


class Backend:
    """Handles on one fresh store, and the metadata store beside it."""

    def __init__(self, kind: str, tmp_path, pg_server):
        self.kind, self.tmp_path, self.pg_server = kind, tmp_path, pg_server
        self.url = pg_server.database() if pg_server is not None else None
        self.urls = [self.url]
        self.opened: list = []

    def pps(self, where: str | None = None) -> PipelineStore:
        """A handle on this store (``where``: on another store of this kind)."""
        if self.kind == "sqlite":
            from s3gw.pps.store import PpsStore
            store = PpsStore(str(self.tmp_path if where is None else where), log_limit=LIMIT)
        else:
            from s3gw.pps.pgstore import PostgresPpsStore
            store = PostgresPpsStore(self.url if where is None else where, log_limit=LIMIT)
        self.opened.append(store)
        return store

    def another(self) -> str:
        """A new empty store of this kind (a folder, or a database)."""
        if self.kind == "sqlite":
            folder = self.tmp_path / f"another{len(self.opened)}"
            folder.mkdir()
            return str(folder)
        self.urls.append(self.pg_server.database())
        return self.urls[-1]

    def meta(self):
        if self.kind == "sqlite":
            from s3gw.pfs.metadata import SqliteMetadata
            meta = SqliteMetadata(str(self.tmp_path / "meta.sqlite"))
        else:
            from s3gw.pfs.postgres import PostgresMetadata
            meta = PostgresMetadata(self.url)
        self.opened.append(meta)
        return meta


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    pg = request.getfixturevalue("pg_server") if request.param == "postgres" else None
    b = Backend(request.param, tmp_path, pg)
    yield b
    for handle in b.opened:
        handle.close()
    if pg is not None:
        for url in b.urls:
            pg.drop(url)


@pytest.fixture
def pps(backend):
    return backend.pps()


def _running(pps, now=20):
    pps.put_pipeline(SPEC, 1, update=False)
    job = pps.create_job("copy", 1, INPUTS, 10)
    return pps.transition(job.id, "start", now)


def test_implements_the_protocol(pps):
    assert isinstance(pps, PipelineStore)
    missing = [name for name in dir(PipelineStore) if not name.startswith("_")
               and not hasattr(pps, name)]
    assert not missing
    assert isinstance(pps.runner_lock(), RunnerLock)


def test_pipelines_versions_and_output_repos_seen_by_another_handle(backend):
    server, cli = backend.pps(), backend.pps()
    assert server.output_repos() == frozenset()
    before = server.data_version()
    assert cli.put_pipeline(SPEC, 1, update=False) == 1
    assert server.data_version() != before           # a change made by another process
    server.refresh_outputs()
    assert server.output_repos(0.05) == {"copy"}
    with pytest.raises(ValueError):
        cli.put_pipeline(SPEC, 2, update=False)
    with pytest.raises(NoSuchPipeline):
        cli.put_pipeline(spec("nope"), 2, update=True)
    with pytest.raises(NoSuchPipeline):
        cli.delete_pipeline("nope")
    assert cli.put_pipeline(SPEC2, 3, update=True) == 2
    record = server.pipeline("copy")
    assert record.version == 2 and record.spec == SPEC2 and record.created_ns == 1
    assert record.updated_ns == 3
    assert server.spec_document("copy", 1) == SPEC.document
    assert [p.name for p in server.pipelines()] == ["copy"]
    cli.delete_pipeline("copy")
    server.refresh_outputs()
    assert server.output_repos() == frozenset()
    with pytest.raises(NoSuchPipeline):
        server.pipeline("copy")
    with pytest.raises(NoSuchPipeline):
        server.spec_document("copy", 1)


def test_two_creates_of_one_pipeline_at_once_make_one(backend):
    handles = [backend.pps() for _ in range(4)]
    results: list = []

    def create(h):
        try:
            results.append(h.put_pipeline(SPEC, 1, update=False))
        except ValueError as exc:
            results.append(exc)

    threads = [threading.Thread(target=create, args=(h,)) for h in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(r for r in results if isinstance(r, int)) == [1]
    assert sum(isinstance(r, ValueError) for r in results) == 3


def test_jobs_move_only_through_the_table(pps):
    pps.put_pipeline(SPEC, 1, update=False)
    job = pps.create_job("copy", 1, INPUTS, 10)
    assert job.state == JobState.CREATED and job.inputs == tuple(INPUTS)
    assert pps.latest_job("copy") == job and pps.unfinished_jobs() == [job]
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
    with pytest.raises(NoSuchJob):
        pps.transition("nope", "start", 1)
    with pytest.raises(NoSuchPipeline):
        pps.create_job("gone", 1, INPUTS, 1)
    counts = pps.job_counts()
    assert counts["SUCCESS"] == 1 and set(counts) == {s.value for s in JobState}
    assert sum(counts.values()) == 1


def test_jobs_are_listed_newest_first_and_all_when_asked(pps):
    pps.put_pipeline(SPEC, 1, update=False)
    ids = [pps.create_job("copy", 1, INPUTS, 10 + n).id for n in range(5)]
    assert [j.id for j in pps.jobs("copy")] == ids[::-1]
    assert [j.id for j in pps.jobs(None, limit=2)] == ids[:2:-1]
    assert len(pps.jobs(None, limit=None)) == 5 and pps.jobs("other") == []


def test_racing_transitions_have_one_winner(backend):
    """Compare-and-set: of eight handles starting one CREATED job at once, one wins."""
    first = backend.pps()
    first.put_pipeline(SPEC, 1, update=False)
    job = first.create_job("copy", 1, INPUTS, 10)
    handles = [backend.pps() for _ in range(8)]
    outcomes: list = []
    barrier = threading.Barrier(len(handles))

    def start(h):
        barrier.wait(10)
        try:
            h.transition(job.id, "start", 20)
            outcomes.append("won")
        except InvalidTransition:
            outcomes.append("lost")

    threads = [threading.Thread(target=start, args=(h,)) for h in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    assert first.job(job.id).state == JobState.RUNNING


def test_stop_requests(pps):
    job = _running(pps)
    assert pps.stop_requested() == set()
    assert pps.request_stop(job.id[:10]).stop_requested
    assert pps.stop_requested() == {job.id}
    pps.transition(job.id, "kill", 30, reason="stopped")
    assert pps.stop_requested() == set()               # only unfinished jobs are asked


@pytest.mark.parametrize("state,commit,stopped,expect,rerun", [
    ("RUNNING", None, False, JobState.FAILURE, True),
    ("FINISHING", None, False, JobState.FAILURE, True),
    ("RUNNING", "e" * 32, False, JobState.SUCCESS, False),
    ("FINISHING", "e" * 32, True, JobState.SUCCESS, False),
    ("RUNNING", None, True, JobState.KILLED, False),
    ("FINISHING", None, True, JobState.FAILURE, False),
])
def test_settle_applies_the_plan_in_one_transaction(pps, state, commit, stopped, expect, rerun):
    job = _running(pps)
    if state == "FINISHING":
        pps.transition(job.id, "finish", 25)
    asked = []

    def commit_of_job(jid):
        asked.append(jid)
        return commit

    done = pps.settle(job.id, 30, commit_of_job, stopped=stopped, reason="interrupted: x")
    assert asked == [job.id]
    assert done.job.state == expect and done.job.finished_ns == 30
    if expect == JobState.SUCCESS:
        assert done.outcome == "succeeded" and done.job.output_commit == commit
        assert done.job.reason == ""
    if rerun:
        assert done.outcome == "interrupted" and done.rerun is not None
        assert done.rerun.state == JobState.CREATED and done.rerun.restart_of == job.id
        assert done.rerun.inputs == job.inputs and done.rerun.spec_version == 1
        assert done.job.reason == f"interrupted: x; re-run as job {done.rerun.id}"
    else:
        assert done.rerun is None
    again = pps.settle(job.id, 40, commit_of_job, stopped=stopped, reason="again")
    assert again.outcome == "final" and again.job == done.job and again.rerun is None
    assert len(pps.jobs("copy")) == (2 if rerun else 1)


def test_settle_leaves_queued_jobs_and_knows_deleted_ones(pps):
    pps.put_pipeline(SPEC, 1, update=False)
    job = pps.create_job("copy", 1, INPUTS, 10)
    done = pps.settle(job.id, 20, lambda _: None, stopped=False, reason="x")
    assert done.outcome == "queued" and done.job.state == JobState.CREATED
    done = pps.settle(job.id, 20, lambda _: None, stopped=True, reason="stopped")
    assert done.outcome == "stopped" and done.job.state == JobState.KILLED
    with pytest.raises(NoSuchJob):
        pps.settle("nope", 20, lambda _: None, stopped=False, reason="x")


def test_settle_without_the_pipeline_queues_no_rerun(backend):
    server, cli = backend.pps(), backend.pps()
    job = _running(server)
    # the pipeline's rows go, but this job's row is still there (a race the runner meets)
    cli.put_pipeline(spec("other"), 1, update=False)
    table = "pipelines" if backend.kind == "sqlite" else "pps_pipelines"
    server._tx(lambda c: c.execute(f"DELETE FROM {table} WHERE name='copy'"))
    done = server.settle(job.id, 30, lambda _: None, stopped=False, reason="interrupted")
    assert done.job.state == JobState.FAILURE and done.rerun is None
    assert "no re-run" in done.job.reason


def test_two_runners_settling_one_job_queue_one_rerun(backend):
    """A runner stopping and the one taking over settle the same job at once."""
    first = backend.pps()
    job = _running(first)
    handles = [backend.pps() for _ in range(6)]
    barrier = threading.Barrier(len(handles))
    done: list = []

    def settle(h):
        barrier.wait(10)
        done.append(h.settle(job.id, 30, lambda _: None, stopped=False, reason="interrupted"))

    threads = [threading.Thread(target=settle, args=(h,)) for h in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(d.outcome for d in done) == ["final"] * 5 + ["interrupted"]
    jobs = first.jobs("copy")
    assert len(jobs) == 2 and jobs[0].restart_of == job.id


def test_delete_pipeline_takes_its_jobs_and_logs(backend):
    pps = backend.pps()
    job = _running(pps)
    pps.append_log(job.id, b"hello\n")
    pps.delete_pipeline("copy")
    with pytest.raises(NoSuchJob):
        pps.job(job.id)
    assert pps.jobs() == [] and pps.unfinished_jobs() == []
    with pytest.raises(NoSuchPipeline):
        pps.delete_pipeline("copy")
    pps.put_pipeline(SPEC, 2, update=False)            # the name is free again, from v1
    assert pps.pipeline("copy").version == 1
    if backend.kind == "postgres":
        assert pps._read("SELECT count(*) FROM pps_job_logs")[0][0] == 0


def test_logs_append_read_and_stop_at_the_limit(backend):
    writer, reader = backend.pps(), backend.pps()
    job = _running(writer)
    assert reader.log_size(job.id) == 0 and reader.read_log(job.id) == b""
    assert writer.append_log(job.id, b"line one\n") == 9
    big = bytes(range(256)) * 800                      # 204,800 bytes: several pieces
    assert writer.append_log(job.id, big) == len(big)
    whole = b"line one\n" + big
    assert reader.log_size(job.id) == len(whole)
    assert reader.read_log(job.id) == whole
    for offset, limit in ((0, 5), (5, 70_000), (65_530, 12), (131_070, 100_000),
                          (len(whole) - 3, 10), (len(whole), 10)):
        assert reader.read_log(job.id, offset, limit) == whole[offset:offset + limit]
    # the limit: what fits, then one line saying so; then nothing more
    kept = writer.append_log(job.id, b"x" * 200_000)
    note = TRUNCATED.format(limit=LIMIT).encode()
    assert kept == LIMIT - len(whole) + len(note)
    log = reader.read_log(job.id, 0, 1 << 20)
    assert log.endswith(note) and len(log) == LIMIT + len(note)
    assert writer.append_log(job.id, b"after") == 0
    assert reader.log_size(job.id) == len(log)
    assert writer.append_log("nope", b"lost") == 0 and reader.read_log("nope") == b""


def test_the_runner_lock_has_one_holder_and_passes_on(backend):
    a, b = backend.pps().runner_lock(), backend.pps().runner_lock()
    try:
        assert a.try_acquire() and a.held()
        assert not b.try_acquire() and not b.held()
        assert a.try_acquire()                         # idempotent for its holder
        a.release()
        assert not a.held()
        assert b.try_acquire() and b.held()
        assert not a.try_acquire()
    finally:
        a.release()
        b.release()


def test_the_runner_lock_goes_with_its_session(backend, pg_server):
    """PostgreSQL: a holder whose session ends (the process died, or the server killed
    it) has lost the lock, and says so; another takes it."""
    if backend.kind != "postgres":
        pytest.skip("an flock cannot be lost while its process lives")
    import psycopg
    a, b = backend.pps().runner_lock(), backend.pps().runner_lock()
    try:
        assert a.try_acquire() and not b.try_acquire()
        with psycopg.connect(backend.url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_locks WHERE locktype = 'advisory' "
                "AND granted AND database = (SELECT oid FROM pg_database "
                "WHERE datname = current_database())").fetchall()
        assert killed == [(True,)]
        assert not a.held()
        assert b.try_acquire() and b.held()
        assert not a.try_acquire()
        b.release()
        assert a.try_acquire()
    finally:
        a.release()
        b.release()


def test_the_output_commit_and_a_settlement_never_cross(backend):
    """The fence: an output commit under ``commit_guard`` lands only while the job is
    FINISHING; a job settled (by another runner) first gets none, and a commit made
    first is what the settlement finds."""
    meta, runner, other = backend.meta(), backend.pps(), backend.pps()
    meta.create_branch("copy", "master", 1)
    obj = ObjectInfo(size=0, etag="d41d8cd98f00b204e9800998ecf8427e", manifest=b"")
    job = _running(runner)
    runner.transition(job.id, "finish", 25)
    guard = runner.commit_guard(job.id)
    if backend.kind == "sqlite":
        assert guard is None                           # one runner per folder: no fence
        return
    # another runner settles it first: the commit is refused, the branch unchanged
    done = other.settle(job.id, 30, meta.commit_of_job, stopped=False, reason="interrupted")
    assert done.job.state == JobState.FAILURE and done.rerun is not None
    with pytest.raises(JobFenced):
        meta.commit("copy", "master", [Put("a", obj)], "job", 40, also=guard,
                    provenance={"job": job.id})
    assert meta.get_branch("copy", "master").head is None
    assert meta.commit_of_job(job.id) is None
    # the re-run commits first: the settlement (of a runner that lost it) finds it
    rerun = runner.transition(done.rerun.id, "start", 50)
    runner.transition(rerun.id, "finish", 55)
    c = meta.commit("copy", "master", [Put("a", obj)], "job", 60,
                    also=runner.commit_guard(rerun.id), provenance={"job": rerun.id})
    settled = other.settle(rerun.id, 70, meta.commit_of_job, stopped=False, reason="x")
    assert settled.outcome == "succeeded" and settled.job.output_commit == c.id


def test_dump_and_load_copy_pipelines_and_jobs_between_stores(backend, tmp_path):
    """What ``s3gw migrate`` does: the pipelines with every spec version and their jobs as
    they are (ids, states, times, flags, logs) into a folder's SQLite store and from there
    into a new store of this kind; a second load adds nothing; another pipeline of the
    same name is refused, a job of an absent pipeline too."""
    from s3gw.pps.store import PpsStore
    src = backend.pps()
    src.put_pipeline(SPEC, 1, update=False)
    src.put_pipeline(SPEC2, 2, update=True)
    src.put_pipeline(spec("stats", "copy"), 3, update=False)
    first = src.create_job("copy", 1, INPUTS, 10)
    src.transition(first.id, "start", 11)
    src.append_log(first.id, b"first log\n" * 10_000)
    src.settle(first.id, 12, lambda _: None, stopped=False, reason="interrupted")
    src.request_stop(src.unfinished_jobs()[0].id)
    folder = tmp_path / "folder"
    folder.mkdir()
    local = PpsStore(str(folder), log_limit=LIMIT)
    copy = backend.pps(backend.another())
    try:
        for a, b in ((src, local), (local, copy)):
            for p in a.dump_pipelines():
                assert b.load_pipeline(p)
            for j in reversed(a.jobs(None, limit=None)):
                assert b.load_job(j, a.read_log(j.id, 0, 1 << 30))
            assert b.dump_pipelines() == a.dump_pipelines()
            assert len(b.dump_pipelines()) == 2 and len(b.dump_pipelines()[0].specs) == 2
            assert b.jobs(None, limit=None) == a.jobs(None, limit=None)
            for j in a.jobs(None, limit=None):
                assert b.read_log(j.id, 0, 1 << 30) == a.read_log(j.id, 0, 1 << 30)
            assert b.log_size(first.id) == 100_000
            assert b.stop_requested() == a.stop_requested() != set()
            assert not any(b.load_pipeline(p) for p in a.dump_pipelines())     # again
            assert not any(b.load_job(j, b"more") for j in a.jobs(None, limit=None))
            assert b.log_size(first.id) == 100_000
        lone = PpsStore(backend.another() if backend.kind == "sqlite" else str(tmp_path))
        lone.put_pipeline(spec("copy", "elsewhere"), 1, update=False)
        with pytest.raises(PipelineConflict):
            copy.load_pipeline(lone.dump_pipelines()[0])
        with pytest.raises(NoSuchPipeline):
            lone.load_job(src.jobs("stats")[0] if src.jobs("stats") else
                          src.create_job("stats", 1, INPUTS, 20), b"")
        lone.close()
    finally:
        local.close()
