"""Pipelines with three gateways on one PostgreSQL database, each with a data folder of
its own: the pipeline state is the database's, one gateway runs the jobs.

Real ``s3gw serve`` processes (``--meta`` on the test PostgreSQL; each folder keeps
its own chunks, so every object here is small enough to live in the metadata: up to
8 KiB, ``--inline-max``), real boto3 job scripts, the CLI run on each gateway's folder
as a user would:

* a pipeline created through gateway 1's folder runs once per input commit, whichever
  gateway took the commit; its output commits are visible through all three; ``s3gw
  job list|logs|inspect`` from another gateway's folder show the jobs and their logs;
* ``s3gw job stop`` from a folder whose gateway does not run the job stops it;
* SIGKILL of the gateway that runs the jobs, mid-job: another takes the runner over,
  fails the interrupted job and runs it again once, and exactly one output commit
  lands;
* the runner's lock session killed by the database while its gateway lives: that
  gateway stops its jobs, a runner is elected again, the job is re-run once, one
  output commit;
* a folder that still holds pipelines in its own pps.sqlite is refused in one line
  until ``s3gw migrate --pipelines`` copies them into the database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from s3gw.pps.jobs import InputCommit
from s3gw.pps.spec import parse_spec
from s3gw.pps.store import PpsStore
from tests.conftest import ServerProcess
from tests.e2e.auth_helpers import Creds, server_problems
from tests.e2e.pipeline_helpers import Gateway, python_spec, s3_input

RUNS = "this gateway runs the pipeline jobs"


def s3gw(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "s3gw", *args], capture_output=True,
                          text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"s3gw {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def _wait(what: str, ok, timeout: float = 60, gateways=()) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        assert time.monotonic() < deadline, what + "\n" + "\n".join(
            g.server.log()[-2000:] for g in gateways if g.server.proc is not None)
        time.sleep(0.1)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] == "Z"
    except FileNotFoundError:
        return True


@pytest.fixture(scope="module")
def cluster(pg_server, tmp_path_factory):
    url = pg_server.database()
    root = tmp_path_factory.mktemp("pps-gateways")
    scripts = root / "scripts"
    scripts.mkdir()
    gateways = []
    for i in range(3):
        data = root / f"gw{i + 1}"
        srv = ServerProcess(str(data), extra_args=["--meta", url]).start()
        _wait("the gateway opened its stores", lambda s=srv: "s3gw listening on" in s.log())
        gateways.append(Gateway(srv, str(data), False, Creds("anyone", "test", "test"),
                                str(scripts)))
    try:
        _wait("one gateway runs the pipeline jobs",
              lambda: sum(RUNS in g.server.log() for g in gateways) == 1, gateways=gateways)
        yield url, gateways
    finally:
        for g in gateways:
            g.server.stop()
        for g in gateways:
            problems = server_problems(g.server.log())
            assert not problems, "\n".join(problems)
        pg_server.drop(url)


def output_commits(g: Gateway, name: str) -> list[tuple[str, str]]:
    """(commit id, message) of the output branch, newest first, from ``s3gw log``."""
    lines = g.cli("log", f"master.{name}").stdout.splitlines()
    return [(line.split()[0], line.split("  ", 2)[2]) for line in lines
            if line and not line.startswith(" ")]


def runner_of(gateways) -> Gateway:
    """The live gateway that runs the jobs now (its last election line is its latest)."""
    live = [g for g in gateways if g.server.proc is not None]
    holders = [g for g in live if g.server.log().count(RUNS) > g.server.log().count("lost the "
                                                                                    "pipeline")]
    assert len(holders) == 1, [g.data for g in holders]
    return holders[0]


COPY = """
    import os, boto3
    s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
    for o in s3.list_objects_v2(Bucket="src").get("Contents", []):
        body = s3.get_object(Bucket="src", Key=o["Key"])["Body"].read()
        s3.put_object(Bucket="out", Key=o["Key"], Body=body.upper())
        print("copied", o["Key"], flush=True)
"""


def test_a_pipeline_runs_once_per_input_commit_across_three_gateways(cluster):
    _url, (g1, g2, g3) = cluster
    repo = g3.repo({"a.txt": b"alpha"})
    name = f"up{repo[2:]}"
    g1.create(python_spec(name, s3_input(repo, "src"), g1.script(COPY)))   # gateway 1's folder
    first, = g2.wait_jobs(name)
    assert first["state"] == "SUCCESS", first
    g3.s3.put_object(Bucket=f"master.{repo}", Key="b.txt", Body=b"beta")   # through gateway 3
    jobs = g2.wait_jobs(name, 2)
    head = g1.s3.head_object(Bucket=f"master.{repo}", Key="b.txt")["VersionId"]
    assert jobs[0]["state"] == "SUCCESS" and jobs[0]["inputs"][0]["commit"] == head
    time.sleep(2.5)             # more than a runner's poll and an election's: no second run
    jobs = g3.jobs(name)
    assert [j["id"] for j in jobs] == [jobs[0]["id"], first["id"]], jobs
    # the output commits, through every gateway and from every folder
    for g in (g1, g2, g3):
        assert g.keys(f"master.{name}") == {"a.txt": b"ALPHA", "b.txt": b"BETA"}
        assert output_commits(g, name) == [
            (jobs[0]["output_commit"], f"job {jobs[0]['id']} of pipeline {name}"),
            (first["output_commit"], f"job {first['id']} of pipeline {name}")]
    # the logs, written by whichever gateway ran the job, read from another's folder
    for g in (g1, g2, g3):
        text = g.logs(jobs[0]["id"])
        assert "copied a.txt" in text and "copied b.txt" in text, text
        assert f"s3gw: job succeeded: output commit {jobs[0]['output_commit']}" in text
    doc = json.loads(g3.cli("job", "inspect", jobs[0]["id"][:12], "--json").stdout)
    assert doc["provenance"]["job"] == jobs[0]["id"]
    assert doc["provenance"]["inputs"][0]["commit"] == head
    assert name in g2.cli("pipeline", "list").stdout
    for g in (g1, g2, g3):      # no pipeline state in any folder
        assert not os.path.exists(os.path.join(g.data, "pps.sqlite"))
    # an output repo is read-only through every gateway (each refreshes the pipelines)
    for g in (g1, g2, g3):
        with pytest.raises(Exception) as e:
            g.s3.put_object(Bucket=f"master.{name}", Key="x", Body=b"x")
        assert e.value.response["Error"]["Code"] == "AccessDenied"


def test_job_stop_from_another_gateways_folder_reaches_the_runner(cluster, tmp_path):
    _url, gateways = cluster
    runner = runner_of(gateways)
    other = next(g for g in gateways if g is not runner)
    repo = other.repo({"a.txt": b"alpha"})
    marker = tmp_path / "running"
    script = other.script(f"""
        import os, time, pathlib
        pathlib.Path({str(marker)!r}).write_text(str(os.getpid()))
        print("waiting", flush=True)
        time.sleep(120)
    """)
    name = f"stop{repo[2:]}"
    other.create(python_spec(name, s3_input(repo), script))
    _wait("the job runs", marker.exists, gateways=gateways)
    job = other.jobs(name)[0]
    out = other.cli("job", "stop", job["id"]).stdout
    assert "KILLED" in out, out
    _wait("the job's process is gone", lambda: _gone(int(marker.read_text())))
    job, = other.wait_jobs(name)
    assert job["state"] == "KILLED" and "stop" in job["reason"]
    assert "waiting" in other.logs(job["id"])
    assert other.s3.list_objects_v2(Bucket=f"master.{name}")["KeyCount"] == 0


TWO_RUNS = """
    import os, time, pathlib, boto3
    s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
    s3.put_object(Bucket="out", Key="part1.txt", Body=b"one")
    m = pathlib.Path({marker!r})
    if not m.exists():
        m.write_text(str(os.getpid()))
        print("first run, waiting", flush=True)
        time.sleep(120)          # its runner goes away meanwhile
    s3.put_object(Bucket="out", Key="part2.txt", Body=b"two")
"""


def test_a_runner_whose_lock_session_ends_stops_its_jobs(cluster, tmp_path):
    url, gateways = cluster
    holder = runner_of(gateways)
    lost = holder.server.log().count("lost the pipeline runner's lock")
    g = gateways[0]
    repo = g.repo({"a.txt": b"alpha"})
    marker = tmp_path / "first-run"
    name = f"fence{repo[2:]}"
    g.create(python_spec(name, s3_input(repo), g.script(TWO_RUNS.format(marker=str(marker)))))
    _wait("the job runs", marker.exists, gateways=gateways)
    import psycopg
    with psycopg.connect(url, autocommit=True) as admin:   # the database ends the session
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_locks WHERE locktype = 'advisory' "
            "AND granted AND database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database())").fetchall()
    assert killed == [(True,)]
    _wait("the holder noticed", lambda: holder.server.log().count(
        "lost the pipeline runner's lock") == lost + 1, gateways=gateways)
    _wait("the first run's command is stopped", lambda: _gone(int(marker.read_text())))
    jobs = g.wait_jobs(name, 2)
    rerun, first = jobs[0], jobs[1]
    assert first["state"] == "FAILURE" and "interrupted" in first["reason"], first
    assert rerun["state"] == "SUCCESS" and rerun["restart_of"] == first["id"], rerun
    time.sleep(2.5)                                        # no second re-run
    assert len(g.jobs(name)) == 2
    assert output_commits(g, name) == [(rerun["output_commit"],
                                        f"job {rerun['id']} of pipeline {name}")]
    runner_of(gateways)                                    # one runner again


def test_sigkill_of_the_runners_gateway_mid_job_hands_it_over(cluster, tmp_path):
    _url, gateways = cluster
    victim = runner_of(gateways)
    survivors = [g for g in gateways if g is not victim]
    repo = survivors[0].repo({"a.txt": b"alpha"})
    marker = tmp_path / "first-run"
    script = survivors[0].script(TWO_RUNS.format(marker=str(marker)))
    name = f"kill{repo[2:]}"
    survivors[1].create(python_spec(name, s3_input(repo), script))
    _wait("the job runs", marker.exists, gateways=gateways)
    first = survivors[0].jobs(name)[0]
    _wait("the job's first output line reached the database",
          lambda: "first run, waiting" in survivors[0].logs(first["id"]), gateways=gateways)
    victim.server.kill()                                   # SIGKILL, mid-job
    _wait("the job's command died with its gateway", lambda: _gone(int(marker.read_text())))
    _wait("another gateway runs the pipeline jobs",
          lambda: any(RUNS in g.server.log() for g in survivors), gateways=survivors)
    jobs = survivors[0].wait_jobs(name, 2)
    rerun, first = jobs[0], jobs[1]
    assert first["state"] == "FAILURE" and "interrupted" in first["reason"], first
    assert first["output_commit"] is None
    assert rerun["state"] == "SUCCESS" and rerun["restart_of"] == first["id"], rerun
    time.sleep(2.5)                                        # no second re-run
    assert len(survivors[1].jobs(name)) == 2
    for g in survivors:
        assert g.keys(f"master.{name}") == {"part1.txt": b"one", "part2.txt": b"two"}
    assert output_commits(survivors[1], name) == [       # one output commit: the re-run's
        (rerun["output_commit"], f"job {rerun['id']} of pipeline {name}")]
    text = survivors[1].logs(first["id"])
    assert "first run, waiting" in text and "s3gw: at start-up: job interrupted" in text
    assert "__job_" not in survivors[0].cli("branch", "list").stdout
    # the killed gateway comes back as one of the others, and runs nothing again
    victim.server.start()
    _wait("it serves", lambda: "s3gw listening on" in victim.server.log().rsplit(RUNS, 1)[-1])
    time.sleep(2.5)
    assert len(victim.jobs(name)) == 2
    assert victim.keys(f"master.{name}") == {"part1.txt": b"one", "part2.txt": b"two"}


def test_a_folder_with_pipelines_of_its_own_is_refused_until_they_are_copied_in(cluster,
                                                                                  tmp_path):
    url, gateways = cluster
    folder = tmp_path / "old"
    folder.mkdir()
    old = PpsStore(str(folder))               # the per-folder layout of earlier versions
    spec = parse_spec({"pipeline": {"name": "legacy"},
                       "input": {"pfs": {"repo": "nosuchrepo", "s3": True}},
                       "transform": {"cmd": ["true"]}, "s3_out": True})
    old.put_pipeline(spec, 1, update=False)
    job = old.create_job("legacy", 1, [InputCommit("nosuchrepo", "nosuchrepo", "master",
                                                   "c" * 32, True)], 2)
    old.transition(job.id, "start", 3)
    old.append_log(job.id, b"an old job's log\n")
    old.transition(job.id, "fail", 4, reason="exit code 1")
    old.close()
    line = (f"s3gw: {folder}/pps.sqlite holds 1 pipeline(s) and 1 job(s) of this folder, and "
            f"pipelines now live in the database: copy them in with `s3gw migrate --pipelines "
            f"--from {folder}` (or move the file away to drop them)")
    proc = s3gw("serve", "--data", str(folder), "--meta", url, "--port", "0",
                "--console", "off", check=False)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1] == line, proc.stderr
    proc = s3gw("pipeline", "list", "--data", str(folder), "--meta", url, check=False)
    assert proc.returncode == 1 and proc.stderr.strip() == line, proc.stderr
    out = s3gw("migrate", "--pipelines", "--from", str(folder), "--meta", url).stdout
    assert "1 pipeline(s) and 1 job(s) copied into the database" in out, out
    assert not (folder / "pps.sqlite").exists()
    assert [p.name for p in folder.iterdir() if p.name.startswith("pps.sqlite.in-database")]
    again = s3gw("migrate", "--pipelines", "--from", str(folder), "--meta", url).stdout
    assert "nothing to copy" in again
    g = gateways[1]
    assert "legacy" in g.cli("pipeline", "list").stdout          # every gateway has it now
    assert g.cli("job", "logs", job.id).stdout == "an old job's log\n"
    gw = ServerProcess(str(folder), extra_args=["--meta", url]).start()   # and it serves
    try:
        _wait("it serves", lambda: "s3gw listening on" in gw.log())
    finally:
        gw.stop()
    assert not server_problems(gw.log())
    g.cli("pipeline", "delete", "legacy")
