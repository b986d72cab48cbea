"""The six real clients, each driven the way a user drives it.

One adapter per client with the same small set of verbs (mb, put, ls, get, copy, move,
sync, rm, rb). Command-line clients (aws cli, s3cmd, rclone) run as subprocesses with a
config file written into the test's tmp dir; library clients (boto3, minio-py, s3fs) are
called in-process. Every client is path-style; against an auth-off server with throwaway
credentials, against an auth-on one (``server.credentials``) with the admin's key pair.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

MiB = 1 << 20
ACCESS_KEY, SECRET_KEY, REGION = "compat-key", "compat-secret", "us-east-1"


class CommandFailed(AssertionError):
    pass


def _tool(name: str) -> str:
    """The console script installed next to this interpreter, else the one on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} is not installed (bash .ci/run installs it)")
    return found


def run(argv: list[str], env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, encoding="utf-8",
                          errors="replace", timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-12:])
        raise CommandFailed(f"`{' '.join(argv[0:1] + argv[1:])}` exited {proc.returncode}: {tail}")
    return proc


def _base_env(home: Path) -> dict:
    env = dict(os.environ)
    for k in list(env):
        if k.startswith(("AWS_", "RCLONE_", "S3CMD")):
            del env[k]
    env.update(HOME=str(home), LC_ALL="C.UTF-8", LANG="C.UTF-8", PYTHONIOENCODING="utf-8")
    return env


class Client:
    name = "?"
    #: why the client has no ``sync`` (None: it has one)
    no_sync: str | None = None
    #: the client downloads large objects with parallel ranged GETs
    ranged_download = False

    def __init__(self, server, workdir: Path):
        self.server = server
        self.endpoint = server.endpoint
        # an auth-on server carries the admin's key pair; otherwise any credentials do
        self.access_key, self.secret_key = getattr(server, "credentials", None) or \
            (ACCESS_KEY, SECRET_KEY)
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.setup()

    def setup(self) -> None:
        pass

    def close(self) -> None:
        pass

    # verbs; keys are object keys, paths are local files
    def version(self) -> str: raise NotImplementedError
    def mb(self, bucket: str) -> None: raise NotImplementedError
    def list_buckets(self) -> set[str]: raise NotImplementedError
    def put(self, local: Path, bucket: str, key: str) -> None: raise NotImplementedError
    def put_large(self, local: Path, bucket: str, key: str) -> None: self.put(local, bucket, key)
    def ls(self, bucket: str, prefix: str = "") -> set[str]:
        """One level under ``prefix``: full keys, and common prefixes ending in '/'."""
        raise NotImplementedError
    def ls_recursive(self, bucket: str) -> set[str]: raise NotImplementedError
    def get(self, bucket: str, key: str, local: Path) -> None: raise NotImplementedError
    def copy(self, bucket: str, src: str, dst: str) -> None: raise NotImplementedError
    def move(self, bucket: str, src: str, dst: str) -> None: raise NotImplementedError
    def sync(self, folder: Path, bucket: str, prefix: str) -> tuple[int, int]:
        """Mirror ``folder`` to ``prefix`` (deleting what is gone): (uploads, deletes)."""
        raise NotImplementedError
    def sync_down(self, bucket: str, prefix: str, folder: Path) -> int:
        """Mirror ``prefix`` into ``folder``: downloads."""
        raise NotImplementedError
    def rm(self, bucket: str, key: str) -> None: raise NotImplementedError
    def rm_many(self, bucket: str, keys: list[str]) -> None: raise NotImplementedError
    def rb(self, bucket: str) -> None: raise NotImplementedError
    # a bucket with history (several versions per key, delete markers):
    def purge_history(self, bucket: str) -> None:
        """Remove the bucket with every version in it, the client's own way."""
        raise NotImplementedError
    def delete_all_versions(self, bucket: str) -> None:
        """Delete every version by id, keeping the bucket."""
        raise NotImplementedError


# --------------------------------------------------------------------------- aws cli

class AwsCli(Client):
    name = "aws cli"
    ranged_download = True

    def setup(self):
        home = self.workdir / "home"
        (home / ".aws").mkdir(parents=True, exist_ok=True)
        (home / ".aws" / "config").write_text(
            f"[default]\nregion = {REGION}\ns3 =\n    addressing_style = path\n")
        (home / ".aws" / "credentials").write_text(
            f"[default]\naws_access_key_id = {self.access_key}\naws_secret_access_key = {self.secret_key}\n")
        self.env = _base_env(home)
        self.exe = _tool("aws")

    def aws(self, *args) -> str:
        return run([self.exe, "--endpoint-url", self.endpoint, *args], self.env).stdout

    def version(self):
        return _aws_version(self.exe)

    def mb(self, bucket):
        self.aws("s3", "mb", f"s3://{bucket}")

    def list_buckets(self):
        return {line.split()[-1] for line in self.aws("s3", "ls").splitlines() if line.strip()}

    def put(self, local, bucket, key):
        self.aws("s3", "cp", "--no-progress", str(local), f"s3://{bucket}/{key}")

    @staticmethod
    def _parse_ls(out: str, prefix: str = "") -> set[str]:
        names = set()
        for line in out.splitlines():
            s = line.strip()
            if not s:
                continue
            if s.startswith("PRE "):
                names.add(prefix + s[4:])
            else:
                names.add(prefix + line.split(maxsplit=3)[3])
        return names

    def ls(self, bucket, prefix=""):
        return self._parse_ls(self.aws("s3", "ls", f"s3://{bucket}/{prefix}"), prefix)

    def ls_recursive(self, bucket):
        return self._parse_ls(self.aws("s3", "ls", "--recursive", f"s3://{bucket}"))

    def get(self, bucket, key, local):
        self.aws("s3", "cp", "--no-progress", f"s3://{bucket}/{key}", str(local))

    def copy(self, bucket, src, dst):
        self.aws("s3", "cp", "--no-progress", f"s3://{bucket}/{src}", f"s3://{bucket}/{dst}")

    def move(self, bucket, src, dst):
        self.aws("s3", "mv", "--no-progress", f"s3://{bucket}/{src}", f"s3://{bucket}/{dst}")

    def sync(self, folder, bucket, prefix):
        out = self.aws("s3", "sync", "--delete", "--no-progress", str(folder),
                       f"s3://{bucket}/{prefix}").splitlines()
        return (sum(1 for line in out if line.startswith("upload:")),
                sum(1 for line in out if line.startswith("delete:")))

    def sync_down(self, bucket, prefix, folder):
        out = self.aws("s3", "sync", "--no-progress", f"s3://{bucket}/{prefix}", str(folder))
        return sum(1 for line in out.splitlines() if line.startswith("download:"))

    def rm(self, bucket, key):
        self.aws("s3", "rm", f"s3://{bucket}/{key}")

    def rm_many(self, bucket, keys):
        self.aws("s3", "rm", "--recursive", f"s3://{bucket}/")

    def rb(self, bucket):
        self.aws("s3", "rb", f"s3://{bucket}")

    def purge_history(self, bucket):
        self.aws("s3", "rb", "--force", f"s3://{bucket}")


@functools.cache
def _aws_version(exe: str) -> str:
    out = run([exe, "--version"]).stdout or ""
    first = (out.split() or ["aws-cli/?"])[0]          # aws-cli/1.45.11 Python/… botocore/1.43.11
    bc = next((w for w in out.split() if w.startswith("botocore/")), "")
    return first.split("/", 1)[1] + (f" (botocore {bc.split('/', 1)[1]})" if bc else "")


# --------------------------------------------------------------------------- boto3

class Boto3(Client):
    name = "boto3"
    ranged_download = True
    no_sync = "boto3 has no sync (aws s3 sync is the botocore one, tested in the aws cli column)"

    def setup(self):
        import boto3
        self.c = boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name=REGION)

    def close(self):
        self.c.close()

    def version(self):
        import boto3
        import s3transfer
        return f"{boto3.__version__} (s3transfer {s3transfer.__version__})"

    def mb(self, bucket):
        self.c.create_bucket(Bucket=bucket)

    def list_buckets(self):
        return {b["Name"] for b in self.c.list_buckets()["Buckets"]}

    def put(self, local, bucket, key):
        self.c.upload_file(str(local), bucket, key)

    def ls(self, bucket, prefix=""):
        names = set()
        for page in self.c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Delimiter="/",
                                                                     Prefix=prefix):
            names |= {p["Prefix"] for p in page.get("CommonPrefixes", [])}
            names |= {o["Key"] for o in page.get("Contents", [])}
        return names

    def ls_recursive(self, bucket):
        return {o["Key"] for page in self.c.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                for o in page.get("Contents", [])}

    def get(self, bucket, key, local):
        self.c.download_file(bucket, key, str(local))

    def copy(self, bucket, src, dst):
        self.c.copy({"Bucket": bucket, "Key": src}, bucket, dst)

    def move(self, bucket, src, dst):
        self.copy(bucket, src, dst)
        self.c.delete_object(Bucket=bucket, Key=src)

    def rm(self, bucket, key):
        self.c.delete_object(Bucket=bucket, Key=key)

    def rm_many(self, bucket, keys):
        resp = self.c.delete_objects(Bucket=bucket,
                                     Delete={"Objects": [{"Key": k} for k in keys]})
        assert not resp.get("Errors"), f"DeleteObjects errors: {resp['Errors']}"

    def rb(self, bucket):
        self.c.delete_bucket(Bucket=bucket)

    def delete_all_versions(self, bucket):
        import boto3
        res = boto3.resource("s3", endpoint_url=self.c.meta.endpoint_url,
                             aws_access_key_id=self.access_key,
                             aws_secret_access_key=self.secret_key, region_name=REGION)
        res.Bucket(bucket).object_versions.delete()     # the documented clean-up


# --------------------------------------------------------------------------- s3cmd

class S3cmd(Client):
    name = "s3cmd"

    def setup(self):
        host = f"127.0.0.1:{self.server.port}"
        self.cfg = self.workdir / "s3cfg"
        self.cfg.write_text("\n".join([
            "[default]",
            f"access_key = {self.access_key}",
            f"secret_key = {self.secret_key}",
            f"host_base = {host}",
            f"host_bucket = {host}",          # no %(bucket)s: path style
            "use_https = False",
            f"bucket_location = {REGION}",
            "signature_v2 = False",
            "max_retries = 2",
            "",
        ]))
        self.env = _base_env(self.workdir)
        self.exe = _tool("s3cmd")

    def s3cmd(self, *args) -> str:
        return run([self.exe, "-c", str(self.cfg), "--no-progress", *args], self.env).stdout

    def version(self):
        return run([self.exe, "--version"], self.env).stdout.split()[-1]

    def mb(self, bucket):
        self.s3cmd("mb", f"s3://{bucket}")

    def list_buckets(self):
        return {line.split("s3://", 1)[1].rstrip("/") for line in self.s3cmd("ls").splitlines()
                if "s3://" in line}

    def put(self, local, bucket, key):
        self.s3cmd("put", str(local), f"s3://{bucket}/{key}")

    def put_large(self, local, bucket, key):
        self.s3cmd("put", "--multipart-chunk-size-mb=5", str(local), f"s3://{bucket}/{key}")

    def _parse_ls(self, out, bucket):
        mark = f"s3://{bucket}/"
        return {line.split(mark, 1)[1] for line in out.splitlines() if mark in line}

    def ls(self, bucket, prefix=""):
        return self._parse_ls(self.s3cmd("ls", f"s3://{bucket}/{prefix}"), bucket)

    def ls_recursive(self, bucket):
        return self._parse_ls(self.s3cmd("ls", "--recursive", f"s3://{bucket}/"), bucket)

    def get(self, bucket, key, local):
        self.s3cmd("get", "--force", f"s3://{bucket}/{key}", str(local))

    def copy(self, bucket, src, dst):
        self.s3cmd("cp", f"s3://{bucket}/{src}", f"s3://{bucket}/{dst}")

    def move(self, bucket, src, dst):
        self.s3cmd("mv", f"s3://{bucket}/{src}", f"s3://{bucket}/{dst}")

    def sync(self, folder, bucket, prefix):
        out = self.s3cmd("sync", "--delete-removed", f"{folder}/",
                         f"s3://{bucket}/{prefix}").splitlines()
        return (sum(1 for line in out if line.startswith("upload:")),
                sum(1 for line in out if line.startswith("delete:")))

    def sync_down(self, bucket, prefix, folder):
        out = self.s3cmd("sync", f"s3://{bucket}/{prefix}", f"{folder}/")
        return sum(1 for line in out.splitlines() if line.startswith("download:"))

    def rm(self, bucket, key):
        self.s3cmd("del", f"s3://{bucket}/{key}")

    def rm_many(self, bucket, keys):
        self.s3cmd("del", "--recursive", "--force", f"s3://{bucket}/")

    def rb(self, bucket):
        self.s3cmd("rb", f"s3://{bucket}")


# --------------------------------------------------------------------------- rclone

class Rclone(Client):
    name = "rclone"

    def setup(self):
        self.cfg = self.workdir / "rclone.conf"
        self.cfg.write_text("\n".join([
            "[s3gw]",
            "type = s3",
            "provider = Other",
            f"access_key_id = {self.access_key}",
            f"secret_access_key = {self.secret_key}",
            f"endpoint = {self.endpoint}",
            f"region = {REGION}",
            "force_path_style = true",
            "",
        ]))
        self.env = _base_env(self.workdir)
        self.exe = _tool("rclone")

    def rclone(self, *args) -> subprocess.CompletedProcess:
        # --retries 1: fail at the first failure instead of re-running the whole command 3x
        return run([self.exe, "--config", str(self.cfg), "--retries", "1",
                    "--low-level-retries", "2", *args], self.env)

    def version(self):
        out = run([self.exe, "version"], self.env).stdout.split()
        return out[1].lstrip("v") if len(out) > 1 else "?"

    def mb(self, bucket):
        self.rclone("mkdir", f"s3gw:{bucket}")

    def list_buckets(self):
        return {line.rstrip("/") for line in self.rclone("lsf", "s3gw:").stdout.splitlines() if line}

    def put(self, local, bucket, key):
        self.rclone("copyto", str(local), f"s3gw:{bucket}/{key}")

    def put_large(self, local, bucket, key):
        self.rclone("copyto", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M",
                    str(local), f"s3gw:{bucket}/{key}")

    def ls(self, bucket, prefix=""):
        out = self.rclone("lsf", f"s3gw:{bucket}/{prefix}").stdout
        return {prefix + line for line in out.splitlines() if line}

    def ls_recursive(self, bucket):
        return {line for line in self.rclone("lsf", "-R", "--files-only",
                                             f"s3gw:{bucket}").stdout.splitlines() if line}

    def get(self, bucket, key, local):
        self.rclone("copyto", f"s3gw:{bucket}/{key}", str(local))

    def copy(self, bucket, src, dst):
        # -v: rclone says "Copied (server-side copy)" when it did not stream the bytes
        out = self.rclone("copyto", "-v", f"s3gw:{bucket}/{src}", f"s3gw:{bucket}/{dst}").stderr
        assert "server-side copy" in out, f"rclone did not copy server-side: {out[-500:]}"

    def move(self, bucket, src, dst):
        self.rclone("moveto", f"s3gw:{bucket}/{src}", f"s3gw:{bucket}/{dst}")

    def sync(self, folder, bucket, prefix):
        err = self.rclone("sync", "-v", str(folder), f"s3gw:{bucket}/{prefix}").stderr
        lines = err.splitlines()
        return (sum(1 for line in lines if ": Copied" in line),
                sum(1 for line in lines if ": Deleted" in line))

    def sync_down(self, bucket, prefix, folder):
        err = self.rclone("sync", "-v", f"s3gw:{bucket}/{prefix}", str(folder)).stderr
        return sum(1 for line in err.splitlines() if ": Copied" in line)

    def rm(self, bucket, key):
        self.rclone("deletefile", f"s3gw:{bucket}/{key}")

    def rm_many(self, bucket, keys):
        self.rclone("delete", f"s3gw:{bucket}")

    def purge_history(self, bucket):
        self.rclone("purge", f"s3gw:{bucket}")

    def delete_all_versions(self, bucket):
        self.rclone("delete", "--s3-versions", f"s3gw:{bucket}")

    def rb(self, bucket):
        self.rclone("rmdir", f"s3gw:{bucket}")


# --------------------------------------------------------------------------- minio-py

class MinioPy(Client):
    name = "minio-py"
    no_sync = "minio-py has no sync/mirror (that is mc mirror, a minio-go program)"

    def setup(self):
        from minio import Minio
        self.c = Minio(f"127.0.0.1:{self.server.port}", access_key=self.access_key,
                       secret_key=self.secret_key, secure=False, region=REGION)

    def version(self):
        import minio
        return minio.__version__

    def mb(self, bucket):
        self.c.make_bucket(bucket)

    def list_buckets(self):
        return {b.name for b in self.c.list_buckets()}

    def put(self, local, bucket, key):
        self.c.fput_object(bucket, key, str(local))

    def ls(self, bucket, prefix=""):
        return {o.object_name for o in self.c.list_objects(bucket, prefix=prefix or None)}

    def ls_recursive(self, bucket):
        return {o.object_name for o in self.c.list_objects(bucket, recursive=True)}

    def get(self, bucket, key, local):
        self.c.fget_object(bucket, key, str(local))

    def copy(self, bucket, src, dst):
        from minio.commonconfig import CopySource
        self.c.copy_object(bucket, dst, CopySource(bucket, src))

    def move(self, bucket, src, dst):  # minio-py has no move: copy + remove, as mc mv does
        self.copy(bucket, src, dst)
        self.c.remove_object(bucket, src)

    def rm(self, bucket, key):
        self.c.remove_object(bucket, key)

    def rm_many(self, bucket, keys):
        from minio.deleteobjects import DeleteObject
        errors = list(self.c.remove_objects(bucket, [DeleteObject(k) for k in keys]))
        assert not errors, f"remove_objects errors: {errors}"

    def rb(self, bucket):
        self.c.remove_bucket(bucket)


# --------------------------------------------------------------------------- s3fs

class S3fs(Client):
    name = "s3fs"
    no_sync = "s3fs/fsspec has no sync (put(recursive=True) always re-uploads)"

    def setup(self):
        import s3fs
        self.fs = s3fs.S3FileSystem(
            key=self.access_key, secret=self.secret_key,
            client_kwargs={"endpoint_url": self.endpoint, "region_name": REGION},
            config_kwargs={"s3": {"addressing_style": "path"}},
            use_listings_cache=False, skip_instance_cache=True)

    def close(self):
        self.fs.clear_instance_cache()

    def version(self):
        import aiobotocore
        import s3fs
        return f"{s3fs.__version__} (aiobotocore {aiobotocore.__version__})"

    def mb(self, bucket):
        self.fs.mkdir(bucket)

    def list_buckets(self):
        self.fs.invalidate_cache()
        return {p.rstrip("/") for p in self.fs.ls("", detail=False)}

    def put(self, local, bucket, key):
        self.fs.put_file(str(local), f"{bucket}/{key}")

    def put_large(self, local, bucket, key):
        # s3fs only goes multipart at 2 x chunksize (100 MiB by default): lower the chunk
        self.fs.put_file(str(local), f"{bucket}/{key}", chunksize=5 * MiB)

    def ls(self, bucket, prefix=""):
        self.fs.invalidate_cache()
        out = set()
        for e in self.fs.ls(f"{bucket}/{prefix}".rstrip("/"), detail=True):
            rel = e["name"].split("/", 1)[1]
            out.add(rel + "/" if e["type"] == "directory" else rel)
        return out

    def ls_recursive(self, bucket):
        self.fs.invalidate_cache()
        return {p.split("/", 1)[1] for p in self.fs.find(bucket)}

    def get(self, bucket, key, local):
        self.fs.get_file(f"{bucket}/{key}", str(local))

    def copy(self, bucket, src, dst):
        self.fs.copy(f"{bucket}/{src}", f"{bucket}/{dst}")

    def move(self, bucket, src, dst):
        self.fs.mv(f"{bucket}/{src}", f"{bucket}/{dst}")

    def rm(self, bucket, key):
        self.fs.rm(f"{bucket}/{key}")

    def rm_many(self, bucket, keys):
        self.fs.rm([f"{bucket}/{k}" for k in keys])

    def rb(self, bucket):
        self.fs.rmdir(bucket)


CLIENTS = {c.name: c for c in (AwsCli, Boto3, S3cmd, Rclone, MinioPy, S3fs)}
