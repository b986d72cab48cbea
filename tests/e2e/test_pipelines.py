"""S3-enabled pipelines end to end: a real ``s3gw serve``, real jobs, real clients.

Every scenario runs twice, against a gateway with auth off and one with auth on
(the ``gw`` fixture).  Jobs are local processes: the aws cli (the example of
Pachyderm's documentation, unchanged), and Python scripts using boto3.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time

import pytest
from botocore.exceptions import ClientError

from tests.e2e.auth_helpers import server_problems
from tests.e2e.pipeline_helpers import Gateway, python_spec, s3_input, start_gateway

# The spec from Pachyderm's documentation of S3-enabled pipelines, with the input repo
# renamed per test (the image dropped: jobs are local processes here).
SEED_STDIN = ("set -x && mkdir -p /tmp/result && aws --endpoint-url $S3_ENDPOINT s3 ls && "
              "aws --endpoint-url $S3_ENDPOINT s3 cp s3://labresults/ /tmp/result/ --recursive "
              "&& aws --endpoint-url $S3_ENDPOINT s3 cp /tmp/result/ s3://out --recursive")


@pytest.fixture(scope="module", params=["auth-off", "auth-on"])
def gw(request, tmp_path_factory):
    g = start_gateway(tmp_path_factory, auth=request.param == "auth-on")
    try:
        yield g
    finally:
        g.server.stop()
        problems = server_problems(g.server.log())
        assert not problems, "the server answered 5xx or logged errors:\n" + "\n".join(problems)


def _wait_for(marker, gw: Gateway, timeout: float = 60) -> None:
    """Until a job's script has written ``marker`` (it is running)."""
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert time.monotonic() < deadline, gw.server.log()[-2000:]
        time.sleep(0.1)


def _wait_gone(pid: int, why: str, timeout: float = 15) -> None:
    """Until process ``pid`` has exited (a zombie counts as gone)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split()[2] == "Z":
                    return
        except FileNotFoundError:
            return
        assert time.monotonic() < deadline, why
        time.sleep(0.1)


def _error(call) -> dict:
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response


def test_seed_example_runs_unchanged_with_the_aws_cli(gw: Gateway):
    shutil.rmtree("/tmp/result", ignore_errors=True)   # the example's own scratch folder
    if gw.s3.list_buckets()["Buckets"] and any(
            b["Name"] == "master.labresults" for b in gw.s3.list_buckets()["Buckets"]):
        pytest.fail("labresults exists already")
    gw.s3.create_bucket(Bucket="master.labresults")
    gw.s3.put_object(Bucket="master.labresults", Key="t1.csv", Body=b"a,b\n1,2\n")
    input_head = gw.s3.put_object(Bucket="master.labresults", Key="deep/t2.csv",
                                  Body=b"c\n3\n")["VersionId"]
    spec = {"pipeline": {"name": "copy"},
            "input": {"pfs": {"repo": "labresults", "glob": "/", "s3": True}},
            "transform": {"cmd": ["sh"], "stdin": [SEED_STDIN]},
            "s3_out": True}
    out = gw.create(spec)
    assert "pipeline copy created" in out.stdout
    job, = gw.wait_jobs("copy")
    assert job["state"] == "SUCCESS", (job, gw.logs(job["id"]))
    listing = gw.aws("s3", "ls", "s3://master.copy/", "--recursive").stdout
    assert "t1.csv" in listing and "deep/t2.csv" in listing
    assert gw.keys("master.copy") == {"t1.csv": b"a,b\n1,2\n", "deep/t2.csv": b"c\n3\n"}
    # the job saw exactly its input and out
    logs = gw.logs(job["id"])
    ls_lines = [ln for ln in logs.splitlines() if ln.endswith((" labresults", " out"))]
    assert sorted(ln.split()[-1] for ln in ls_lines) == ["labresults", "out"], logs
    # provenance: the log, job inspect, and a header on the output objects
    log = gw.cli("log", "master.copy").stdout
    assert f"job {job['id']}" in log and input_head in log and "copy v1" in log
    inspect = json.loads(gw.cli("job", "inspect", job["id"], "--json").stdout)
    assert inspect["output_commit"] == job["output_commit"]
    assert inspect["provenance"]["inputs"] == [
        {"name": "labresults", "repo": "labresults", "branch": "master", "commit": input_head}]
    h = gw.s3.head_object(Bucket="master.copy", Key="t1.csv")
    headers = h["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-s3gw-job"] == job["id"]
    assert headers["x-s3gw-provenance"] == f"labresults=labresults@master/{input_head}"
    assert h["VersionId"] == job["output_commit"]
    # a new input commit starts the next job; its output follows the input
    shutil.rmtree("/tmp/result", ignore_errors=True)
    gw.s3.put_object(Bucket="master.labresults", Key="t3.csv", Body=b"new\n")
    jobs = gw.wait_jobs("copy", 2)
    assert [j["state"] for j in jobs[:2]] == ["SUCCESS", "SUCCESS"]
    assert set(gw.keys("master.copy")) == {"t1.csv", "deep/t2.csv", "t3.csv"}
    # outside writes to the output repo are refused, and change nothing
    r = _error(lambda: gw.s3.put_object(Bucket="master.copy", Key="x", Body=b"x"))
    assert r["Error"]["Code"] == "AccessDenied" and "pipeline copy" in r["Error"]["Message"]
    shutil.rmtree("/tmp/result", ignore_errors=True)


def test_boto3_job_reads_inputs_and_writes_readable_out(gw: Gateway):
    repo = gw.repo({"a.txt": b"alpha", "sub/b.txt": b"bravo"})
    other = gw.repo({"secret.txt": b"nope"}, prefix="other")
    script = gw.script(f"""
        import json, os, boto3
        from botocore.exceptions import ClientError
        s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
        checks = {{}}
        checks["buckets"] = sorted(b["Name"] for b in s3.list_buckets()["Buckets"])
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="data")["Contents"]]
        for k in keys:
            body = s3.get_object(Bucket="data", Key=k)["Body"].read()
            s3.put_object(Bucket="out", Key="upper/" + k, Body=body.upper())
        # multipart into out, then read it back: out is readable
        part = b"x" * (5 * 1024 * 1024)
        up = s3.create_multipart_upload(Bucket="out", Key="big.bin")
        etags = [s3.upload_part(Bucket="out", Key="big.bin", UploadId=up["UploadId"],
                                PartNumber=n, Body=part)["ETag"] for n in (1, 2)]
        s3.complete_multipart_upload(Bucket="out", Key="big.bin", UploadId=up["UploadId"],
            MultipartUpload={{"Parts": [{{"PartNumber": n, "ETag": e}}
                                        for n, e in zip((1, 2), etags)]}})
        checks["big"] = len(s3.get_object(Bucket="out", Key="big.bin")["Body"].read())
        checks["out_keys"] = sorted(o["Key"] for o in
                                    s3.list_objects_v2(Bucket="out")["Contents"])
        def code(fn):
            try:
                fn()
                return "OK"
            except ClientError as e:
                return e.response["Error"]["Code"] + ":" + e.response["Error"].get("Message", "")
        checks["write_input"] = code(lambda: s3.put_object(Bucket="data", Key="x", Body=b"x"))
        checks["delete_input"] = code(lambda: s3.delete_object(Bucket="data", Key="a.txt"))
        checks["other_repo"] = code(lambda: s3.list_objects_v2(Bucket="master.{other}"))
        checks["other_get"] = code(lambda: s3.get_object(Bucket="{other}", Key="secret.txt"))
        checks["copy_from_other"] = code(lambda: s3.copy_object(
            Bucket="out", Key="stolen", CopySource="master.{other}/secret.txt"))
        checks["copy_from_input"] = code(lambda: s3.copy_object(
            Bucket="out", Key="copied.txt", CopySource="data/a.txt"))
        checks["delete_out_bucket"] = code(lambda: s3.delete_bucket(Bucket="out"))
        checks["env"] = {{k: os.environ.get(k) for k in ("PPS_PIPELINE_NAME", "data_COMMIT")}}
        s3.put_object(Bucket="out", Key="checks.json", Body=json.dumps(checks).encode())
    """)
    name = f"up{repo[2:]}"
    gw.create(python_spec(name, s3_input(repo, "data"), script))
    job, = gw.wait_jobs(name)
    assert job["state"] == "SUCCESS", (job, gw.logs(job["id"]))
    out = gw.keys(f"master.{name}")
    checks = json.loads(out["checks.json"])
    assert checks["buckets"] == ["data", "out"]
    assert out["upper/a.txt"] == b"ALPHA" and out["upper/sub/b.txt"] == b"BRAVO"
    assert checks["big"] == 10 * 1024 * 1024 and len(out["big.bin"]) == 10 * 1024 * 1024
    assert checks["write_input"].startswith("AccessDenied:") and "data" in checks["write_input"]
    assert checks["delete_input"].startswith("AccessDenied:")
    assert checks["other_repo"].startswith("NoSuchBucket")
    assert checks["other_get"].startswith("NoSuchBucket")
    assert checks["copy_from_other"].startswith("AccessDenied")
    assert checks["copy_from_input"] == "OK" and out["copied.txt"] == b"alpha"
    assert checks["delete_out_bucket"].startswith("AccessDenied")
    assert checks["env"]["PPS_PIPELINE_NAME"] == name
    assert checks["env"]["data_COMMIT"] == job["inputs"][0]["commit"]
    # the input is untouched
    assert gw.keys(f"master.{repo}") == {"a.txt": b"alpha", "sub/b.txt": b"bravo"}
    assert "stolen" not in out


def test_failing_job_changes_nothing_and_keeps_its_logs(gw: Gateway):
    repo = gw.repo({"a.txt": b"alpha"})
    script = gw.script("""
        import os, sys, boto3
        s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
        s3.put_object(Bucket="out", Key="partial.txt", Body=b"half done")
        print("about to fail, marker-7f3a", flush=True)
        sys.exit(3)
    """)
    name = f"fail{repo[2:]}"
    gw.create(python_spec(name, s3_input(repo), script))
    job, = gw.wait_jobs(name)
    assert job["state"] == "FAILURE"
    assert "exit code 3" in job["reason"]
    assert job["output_commit"] is None
    assert gw.s3.list_objects_v2(Bucket=f"master.{name}")["KeyCount"] == 0
    assert "marker-7f3a" in gw.logs(job["id"])
    # its staging repo is gone, and not listed anywhere
    assert "__job_" not in gw.cli("branch", "list").stdout
    assert all(not b["Name"].startswith("_") for b in gw.s3.list_buckets()["Buckets"])


def test_timeout_fails_the_job(gw: Gateway):
    repo = gw.repo({"a.txt": b"alpha"})
    name = f"slow{repo[2:]}"
    spec = {"pipeline": {"name": name}, "input": s3_input(repo),
            "transform": {"cmd": [sys.executable, "-c", "import time; time.sleep(60)"],
                          "timeout": "1s"}, "s3_out": True}
    gw.create(spec)
    started = time.monotonic()
    job, = gw.wait_jobs(name, timeout=30)
    assert time.monotonic() - started < 25
    assert job["state"] == "FAILURE" and "timed out after 1 s" in job["reason"]


def test_chained_pipelines_carry_a_commit_through_the_dag(gw: Gateway):
    raw = gw.repo({"n.txt": b"1"}, prefix="raw")
    count = gw.script("""
        import os, boto3
        s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="src").get("Contents", [])]
        total = sum(int(s3.get_object(Bucket="src", Key=k)["Body"].read()) for k in keys)
        s3.put_object(Bucket="out", Key="total.txt", Body=str(total).encode())
    """)
    double = gw.script("""
        import os, boto3
        s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
        total = int(s3.get_object(Bucket="src", Key="total.txt")["Body"].read())
        s3.put_object(Bucket="out", Key="double.txt", Body=str(2 * total).encode())
    """)
    first, second = f"sum{raw[3:]}", f"dbl{raw[3:]}"
    gw.create(python_spec(first, s3_input(raw, "src"), count))
    gw.create(python_spec(second, s3_input(first, "src"), double))
    gw.wait_jobs(second)
    assert gw.keys(f"master.{second}") == {"double.txt": b"2"}
    raw_head = gw.s3.put_object(Bucket=f"master.{raw}", Key="m.txt", Body=b"20")["VersionId"]
    j1 = gw.wait_jobs(first, 2)[0]
    j2 = gw.wait_jobs(second, 2)[0]
    assert gw.keys(f"master.{second}") == {"double.txt": b"42"}
    assert j1["inputs"][0]["commit"] == raw_head
    assert j2["inputs"][0]["commit"] == j1["output_commit"]
    prov = json.loads(gw.cli("job", "inspect", j2["id"], "--json").stdout)["provenance"]
    assert prov["inputs"][0] == {"name": "src", "repo": first, "branch": "master",
                                 "commit": j1["output_commit"]}


def test_cross_of_two_s3_inputs(gw: Gateway):
    left = gw.repo({"l.txt": b"L"}, prefix="left")
    right = gw.repo({"r.txt": b"R"}, prefix="right")
    script = gw.script("""
        import os, boto3
        s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
        names = sorted(b["Name"] for b in s3.list_buckets()["Buckets"])
        s3.put_object(Bucket="out", Key="buckets.txt", Body=" ".join(names).encode())
        for b in ("left", "right"):
            for o in s3.list_objects_v2(Bucket=b)["Contents"]:
                body = s3.get_object(Bucket=b, Key=o["Key"])["Body"].read()
                s3.put_object(Bucket="out", Key=f"{b}/{o['Key']}", Body=body)
    """)
    name = f"cross{left[4:]}"
    gw.create(python_spec(name, {"cross": [s3_input(left, "left"), s3_input(right, "right")]},
                          script))
    job, = gw.wait_jobs(name)
    assert job["state"] == "SUCCESS", gw.logs(job["id"])
    assert gw.keys(f"master.{name}") == {"buckets.txt": b"left out right",
                                         "left/l.txt": b"L", "right/r.txt": b"R"}


def test_cross_of_s3_input_and_globbed_files(gw: Gateway):
    ref = gw.repo({"ref.txt": b"REF"}, prefix="ref")
    files = gw.repo({"a.txt": b"A", "b.txt": b"B", "dir/c.txt": b"C", "dir/d.txt": b"D"},
                    prefix="files")
    script = gw.script("""
        import os, boto3
        s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
        ref = s3.get_object(Bucket="ref", Key="ref.txt")["Body"].read()
        root = os.path.join(os.environ["PFS_ROOT"], "files")
        found = []
        for dirpath, _, names in os.walk(root):
            for n in names:
                p = os.path.join(dirpath, n)
                found.append(os.path.relpath(p, root) + "=" + open(p).read())
        datum = os.path.basename(os.environ["files"])
        s3.put_object(Bucket="out", Key=f"{datum}.txt",
                      Body=ref + b" " + " ".join(sorted(found)).encode())
    """)
    name = f"glob{ref[3:]}"
    spec = python_spec(name, {"cross": [s3_input(ref),
                                        {"pfs": {"repo": files, "name": "files", "glob": "/*"}}]},
                       script)
    spec["input"]["cross"][0]["pfs"]["name"] = "ref"
    gw.create(spec)
    job, = gw.wait_jobs(name)
    assert job["state"] == "SUCCESS", gw.logs(job["id"])
    assert job["datums"] == 3
    assert gw.keys(f"master.{name}") == {
        "a.txt.txt": b"REF a.txt=A", "b.txt.txt": b"REF b.txt=B",
        "dir.txt": b"REF dir/c.txt=C dir/d.txt=D"}


def test_jobs_cannot_reach_each_other(gw: Gateway, tmp_path):
    """Two jobs run at once; one tries its key on the other's endpoint, and the other
    job's ``out`` through its own endpoint."""
    repo = gw.repo({"a.txt": b"alpha"})
    rendezvous = tmp_path / "rv"
    rendezvous.mkdir()
    holder = gw.script(f"""
        import os, time, json, pathlib
        rv = pathlib.Path({str(rendezvous)!r})
        (rv / "holder.json").write_text(json.dumps({{"endpoint": os.environ["S3_ENDPOINT"],
            "key": os.environ["AWS_ACCESS_KEY_ID"], "secret": os.environ["AWS_SECRET_ACCESS_KEY"]}}))
        import boto3
        boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"]).put_object(
            Bucket="out", Key="holder.txt", Body=b"mine")
        deadline = time.time() + 60
        while not (rv / "done").exists() and time.time() < deadline:
            time.sleep(0.1)
    """)
    prober = gw.script(f"""
        import os, time, json, pathlib, boto3
        from botocore.config import Config
        from botocore.exceptions import ClientError, EndpointConnectionError
        rv = pathlib.Path({str(rendezvous)!r})
        deadline = time.time() + 60
        while not (rv / "holder.json").exists() and time.time() < deadline:
            time.sleep(0.1)
        other = json.loads((rv / "holder.json").read_text())
        cfg = Config(retries={{"max_attempts": 1}})
        def code(fn):
            try:
                fn()
                return "OK"
            except ClientError as e:
                return e.response["Error"]["Code"]
        mine_on_theirs = boto3.client("s3", endpoint_url=other["endpoint"], config=cfg)
        checks = {{
            "my_key_on_their_endpoint": code(mine_on_theirs.list_buckets),
            "my_key_on_their_out": code(lambda: mine_on_theirs.get_object(Bucket="out",
                                                                          Key="holder.txt")),
        }}
        mine = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], config=cfg)
        checks["their_out_through_mine"] = code(lambda: mine.get_object(Bucket="out",
                                                                         Key="holder.txt"))
        theirs_on_main = boto3.client("s3", endpoint_url={gw.endpoint!r}, config=cfg,
            aws_access_key_id=other["key"], aws_secret_access_key=other["secret"])
        checks["their_key_on_main"] = code(theirs_on_main.list_buckets)
        mine_on_main = boto3.client("s3", endpoint_url={gw.endpoint!r}, config=cfg)
        checks["my_key_on_main"] = code(mine_on_main.list_buckets)
        mine.put_object(Bucket="out", Key="checks.json", Body=json.dumps(checks).encode())
        (rv / "done").write_text("1")
    """)
    hold, probe = f"hold{repo[2:]}", f"probe{repo[2:]}"
    gw.create(python_spec(hold, s3_input(repo), holder))
    gw.create(python_spec(probe, s3_input(repo), prober))
    jp, = gw.wait_jobs(probe)
    jh, = gw.wait_jobs(hold)
    assert jp["state"] == jh["state"] == "SUCCESS", gw.logs(jp["id"])
    checks = json.loads(gw.keys(f"master.{probe}")["checks.json"])
    assert checks["my_key_on_their_endpoint"] == "InvalidAccessKeyId"
    assert checks["my_key_on_their_out"] == "InvalidAccessKeyId"
    assert checks["their_out_through_mine"] == "NoSuchKey"     # my out is my own
    if gw.auth:
        # job keys exist only on their own endpoint; the main port does not know them
        assert checks["their_key_on_main"] == "InvalidAccessKeyId"
        assert checks["my_key_on_main"] == "InvalidAccessKeyId"
    # the job's key is revoked with the job: its endpoint is gone
    assert gw.keys(f"master.{hold}") == {"holder.txt": b"mine"}


def test_outside_writes_to_an_output_repo_are_refused(gw: Gateway):
    repo = gw.repo({"a.txt": b"alpha"})
    script = gw.script("""
        import os, boto3
        s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
        s3.put_object(Bucket="out", Key="result.txt", Body=b"ok")
    """)
    name = f"guard{repo[2:]}"
    gw.create(python_spec(name, s3_input(repo), script))
    gw.wait_jobs(name)
    bucket = f"master.{name}"
    before = gw.cli("log", bucket).stdout
    attempts = {
        "put": lambda: gw.s3.put_object(Bucket=bucket, Key="x.txt", Body=b"x"),
        "delete": lambda: gw.s3.delete_object(Bucket=bucket, Key="result.txt"),
        "delete_many": lambda: gw.s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": "result.txt"}]}),
        "copy_in": lambda: gw.s3.copy_object(Bucket=bucket, Key="c.txt",
                                             CopySource=f"master.{repo}/a.txt"),
        "multipart": lambda: gw.s3.create_multipart_upload(Bucket=bucket, Key="m.bin"),
        "new_branch": lambda: gw.s3.create_bucket(Bucket=f"dev.{name}"),
        "delete_bucket": lambda: gw.s3.delete_bucket(Bucket=bucket),
    }
    for what, call in attempts.items():
        r = _error(call)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 403, what
        assert r["Error"]["Code"] == "AccessDenied", what
        assert f"pipeline {name}" in r["Error"]["Message"], what
    assert gw.aws("s3", "cp", "-", f"s3://{bucket}/y.txt", check=False).returncode != 0
    assert gw.keys(bucket) == {"result.txt": b"ok"}
    assert gw.cli("log", bucket).stdout == before
    # reads work as for any repo
    assert gw.s3.get_object(Bucket=bucket, Key="result.txt")["Body"].read() == b"ok"
    # deleting the pipeline keeps the repo, which becomes an ordinary one
    gw.cli("pipeline", "delete", name)
    deadline = time.monotonic() + 5
    while True:
        try:
            gw.s3.put_object(Bucket=bucket, Key="after.txt", Body=b"free")
            break
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert set(gw.keys(bucket)) == {"result.txt", "after.txt"}


def test_job_stop_kills_the_job_and_commits_nothing(gw: Gateway, tmp_path):
    repo = gw.repo({"a.txt": b"alpha"})
    marker = tmp_path / "started"
    script = gw.script(f"""
        import os, time, pathlib, boto3
        boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"]).put_object(
            Bucket="out", Key="partial", Body=b"p")
        pathlib.Path({str(marker)!r}).write_text(str(os.getpid()))
        time.sleep(120)
    """)
    name = f"stop{repo[2:]}"
    gw.create(python_spec(name, s3_input(repo), script))
    _wait_for(marker, gw)
    job = gw.jobs(name)[0]
    out = gw.cli("job", "stop", job["id"]).stdout
    assert "KILLED" in out
    job, = gw.wait_jobs(name)
    assert job["state"] == "KILLED" and "stop" in job["reason"]
    _wait_gone(int(marker.read_text()), "the job's process is still running")
    assert gw.s3.list_objects_v2(Bucket=f"master.{name}")["KeyCount"] == 0


def test_cli_lists_and_inspects(gw: Gateway):
    repo = gw.repo({"a.txt": b"alpha"})
    script = gw.script("""
        import os, boto3
        boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"]).put_object(
            Bucket="out", Key="x", Body=b"x")
    """)
    name = f"cli{repo[2:]}"
    gw.create(python_spec(name, s3_input(repo), script))
    job, = gw.wait_jobs(name)
    rows = json.loads(gw.cli("pipeline", "list", "--json").stdout)
    row, = [r for r in rows if r["name"] == name]
    assert row["version"] == 1 and row["last_state"] == "SUCCESS"
    assert name in gw.cli("pipeline", "list").stdout
    doc = json.loads(gw.cli("pipeline", "inspect", name, "--json").stdout)
    assert doc["spec"]["pipeline"]["name"] == name and doc["jobs"][0]["id"] == job["id"]
    text = gw.cli("job", "list").stdout
    assert job["id"] in text and "SUCCESS" in text
    # update makes a new spec version; --reprocess runs it on the current heads
    spec = python_spec(name, s3_input(repo), script)
    proc = gw.cli("pipeline", "update", "-f", "-", "--reprocess", stdin=json.dumps(spec))
    assert "spec version 2" in proc.stdout
    jobs = gw.wait_jobs(name, 2)
    assert jobs[0]["spec_version"] == 2 and jobs[0]["state"] == "SUCCESS"


BAD_SPECS = [
    ({"pipeline": {"name": "p1"}, "input": {"pfs": {"repo": "REPO", "glob": "/"}},
      "transform": {"cmd": ["true"]}, "s3_out": True, "bogus": 1}, "spec.bogus: unknown field"),
    ({"pipeline": {"name": "p2"}, "input": {"pfs": {"repo": "nosuchrepo", "glob": "/"}},
      "transform": {"cmd": ["true"]}, "s3_out": True}, "does not exist"),
    ({"pipeline": {"name": "REPO"}, "input": {"pfs": {"repo": "OTHER", "glob": "/"}},
      "transform": {"cmd": ["true"]}, "s3_out": True}, "exists and is not a pipeline"),
    ({"pipeline": {"name": "p3"}, "input": {"pfs": {"repo": "REPO", "glob": "*"}},
      "transform": {"cmd": ["true"]}, "s3_out": True}, "must start with '/'"),
    ({"pipeline": {"name": "p4"}, "input": {"pfs": {"repo": "REPO", "glob": "/*", "s3": True}},
      "transform": {"cmd": ["true"]}, "s3_out": True}, "S3 input must have glob"),
    ({"pipeline": {"name": "p5"}, "input": {"union": [{"pfs": {"repo": "REPO", "s3": True}}]},
      "transform": {"cmd": ["true"]}, "s3_out": True}, "cannot be inside a union"),
    ({"pipeline": {"name": "p6"}, "input": {"join": [{"pfs": {"repo": "REPO", "s3": True}}]},
      "transform": {"cmd": ["true"]}, "s3_out": True}, "cannot be inside a join"),
    ({"pipeline": {"name": "p7"}, "input": {"pfs": {"repo": "REPO"}},
      "transform": {"cmd": "true"}, "s3_out": True}, "transform.cmd"),
]


@pytest.mark.parametrize("spec,message", BAD_SPECS)
def test_invalid_specs_are_refused_and_create_nothing(gw: Gateway, spec, message):
    repo = gw.repo({"a.txt": b"a"})
    other = gw.repo({"b.txt": b"b"})
    text = json.dumps(spec).replace("REPO", repo).replace("OTHER", other)
    proc = gw.cli("pipeline", "create", "-f", "-", stdin=text, check=False)
    assert proc.returncode == 2, proc
    assert message in proc.stderr, proc.stderr
    name = json.loads(text)["pipeline"]["name"]
    assert name not in [r["name"] for r in json.loads(gw.cli("pipeline", "list",
                                                             "--json").stdout)]
    if name != repo:
        assert f"master.{name}" not in [b["Name"] for b in gw.s3.list_buckets()["Buckets"]]


def test_restart_during_a_job_leaves_nothing_partial_and_no_job_running(tmp_path_factory,
                                                                        tmp_path):
    g = start_gateway(tmp_path_factory, auth=False, name="pps-restart")
    try:
        repo = g.repo({"a.txt": b"alpha"})
        marker = tmp_path / "first-run"
        script = g.script(f"""
            import os, time, pathlib, boto3
            s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
            s3.put_object(Bucket="out", Key="part1.txt", Body=b"one")
            m = pathlib.Path({str(marker)!r})
            if not m.exists():
                import subprocess, sys
                helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
                m.write_text(f"{{os.getpid()}} {{helper.pid}}")
                time.sleep(120)          # the server is killed meanwhile
            s3.put_object(Bucket="out", Key="part2.txt", Body=b"two")
        """)
        g.create(python_spec("crashy", s3_input(repo), script))
        _wait_for(marker, g)
        g.server.stop(signal.SIGKILL)
        g.server.start()
        # the crashed server's job command and what it started are not left running
        for pid in map(int, marker.read_text().split()):
            _wait_gone(pid, f"process {pid} of the interrupted job still runs")
        # no partial output is ever visible; the interrupted job is failed, a re-run runs
        assert g.s3.list_objects_v2(Bucket="master.crashy")["KeyCount"] in (0, 2)
        jobs = g.wait_jobs("crashy", 2)
        first, rerun = jobs[1], jobs[0]
        assert first["state"] == "FAILURE" and "interrupted" in first["reason"]
        assert rerun["state"] == "SUCCESS" and rerun["restart_of"] == first["id"]
        assert g.keys("master.crashy") == {"part1.txt": b"one", "part2.txt": b"two"}
        assert "__job_" not in g.cli("branch", "list").stdout
        # a clean stop (SIGTERM) mid-job: the same outcome
        marker.unlink()
        g.s3.put_object(Bucket=f"master.{repo}", Key="b.txt", Body=b"b")
        _wait_for(marker, g)
        g.server.stop()
        g.server.start()
        jobs = g.wait_jobs("crashy", 4)
        assert jobs[1]["state"] == "FAILURE" and "interrupted" in jobs[1]["reason"]
        assert jobs[0]["state"] == "SUCCESS"
        fsck = g.cli("fsck", check=False)
        assert fsck.returncode == 0, fsck.stdout
    finally:
        g.server.stop()


def test_deleting_pipelines_while_they_run_or_start_never_takes_the_server_down(gw: Gateway,
                                                                                tmp_path):
    repo = gw.repo({"a.txt": b"alpha"})
    marker = tmp_path / "running"
    script = gw.script(f"""
        import os, time, pathlib
        pathlib.Path({str(marker)!r}).write_text(str(os.getpid()))
        time.sleep(120)
    """)
    name = f"del{repo[2:]}"
    gw.create(python_spec(name, s3_input(repo), script))
    _wait_for(marker, gw)
    gw.cli("pipeline", "delete", name, "--delete-output")
    _wait_gone(int(marker.read_text()), "the deleted pipeline's job still runs")
    # create and delete at once, again and again: a job may be triggered for a pipeline
    # that is already gone; the runner must shrug
    quick = gw.script("print('hi')")
    for i in range(5):
        gw.create(python_spec(f"{name}q{i}", s3_input(repo), quick))
        gw.cli("pipeline", "delete", f"{name}q{i}", "--delete-output")
    time.sleep(1)
    assert gw.s3.list_objects_v2(Bucket=f"master.{repo}")["KeyCount"] == 1   # still serving
    names = {b["Name"] for b in gw.s3.list_buckets()["Buckets"]}
    assert not any(n.endswith(f".{name}") or f".{name}q" in n for n in names)
    assert gw.server.proc.poll() is None
