"""Helpers for the pipeline end-to-end tests: a gateway (auth off or on) and its CLI.

Everything acts as a user does: ``s3gw pipeline ...`` / ``s3gw job ...`` run as
subprocesses with ``--json``, data goes in and out with boto3 and the aws cli.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass, field

from tests.conftest import ServerProcess
from tests.e2e.auth_helpers import AuthCli, Creds, boto3_client

FINAL = {"SUCCESS", "FAILURE", "KILLED"}


@dataclass
class Gateway:
    server: ServerProcess
    data: str
    auth: bool
    creds: Creds
    scripts: str
    _s3: object = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    @property
    def s3(self):
        if self._s3 is None:
            self._s3 = boto3_client(self.endpoint, self.creds)
        return self._s3

    def aws_env(self) -> dict:
        env = dict(os.environ, AWS_ACCESS_KEY_ID=self.creds.access_key,
                   AWS_SECRET_ACCESS_KEY=self.creds.secret_key, AWS_DEFAULT_REGION="us-east-1")
        env.pop("AWS_PROFILE", None)
        return env

    def aws(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["aws", "--endpoint-url", self.endpoint, *args],
                              env=self.aws_env(), capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"aws {args} failed: {proc.stdout}\n{proc.stderr}")
        return proc

    def cli(self, *args: str, check: bool = True, stdin: str | None = None,
            ) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "s3gw", *args, "--data", self.data],
                              capture_output=True, text=True, timeout=120, input=stdin)
        if check and proc.returncode != 0:
            raise AssertionError(f"s3gw {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def repo(self, objects: dict[str, bytes] | None = None, prefix: str = "in") -> str:
        repo = f"{prefix}{uuid.uuid4().hex[:8]}"
        self.s3.create_bucket(Bucket=f"master.{repo}")
        for key, body in (objects or {}).items():
            self.s3.put_object(Bucket=f"master.{repo}", Key=key, Body=body)
        return repo

    def script(self, source: str) -> str:
        """A Python job script file (run with this interpreter)."""
        path = os.path.join(self.scripts, f"job-{uuid.uuid4().hex[:8]}.py")
        with open(path, "w") as f:
            f.write(textwrap.dedent(source))
        return path

    def create(self, spec: dict, check: bool = True) -> subprocess.CompletedProcess:
        return self.cli("pipeline", "create", "-f", "-", stdin=json.dumps(spec), check=check)

    def jobs(self, pipeline: str | None = None) -> list[dict]:
        args = ["job", "list", "--json"] + (["--pipeline", pipeline] if pipeline else [])
        return json.loads(self.cli(*args).stdout)

    def wait_jobs(self, pipeline: str, count: int = 1, timeout: float = 90,
                  states=FINAL) -> list[dict]:
        """Wait until the pipeline has ``count`` jobs, all in ``states``; newest first."""
        deadline = time.monotonic() + timeout
        jobs: list[dict] = []
        while time.monotonic() < deadline:
            jobs = self.jobs(pipeline)
            if len(jobs) >= count and all(j["state"] in states for j in jobs[:count]):
                return jobs
            time.sleep(0.3)
        raise AssertionError(f"jobs of {pipeline} did not reach {states}: {jobs}\n"
                             f"{self.server.log()[-3000:]}")

    def logs(self, job_id: str) -> str:
        return self.cli("job", "logs", job_id).stdout

    def keys(self, bucket: str) -> dict[str, bytes]:
        out = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", ()):
                out[o["Key"]] = self.s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        return out


def start_gateway(tmp_path_factory, auth: bool, name: str = "pps") -> Gateway:
    root = tmp_path_factory.mktemp(name)
    data = root / "data"
    data.mkdir()
    scripts = root / "scripts"
    scripts.mkdir()
    srv = ServerProcess(str(data))
    if auth:      # S3GW_TEST_META=postgres: in the database the server will serve
        creds = AuthCli(str(data), env=srv.meta_env()).enable()
    else:
        creds = Creds("anyone", "test", "test")
    srv.start()
    return Gateway(srv, str(data), auth, creds, str(scripts))


def python_spec(name: str, input_: dict, script: str, **extra) -> dict:
    spec = {"pipeline": {"name": name}, "input": input_,
            "transform": {"cmd": [sys.executable, script]}, "s3_out": True}
    spec.update(extra)
    return spec


def s3_input(repo: str, name: str | None = None) -> dict:
    d = {"repo": repo, "glob": "/", "s3": True}
    if name:
        d["name"] = name
    return {"pfs": d}
