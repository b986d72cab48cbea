"""Helpers for the auth end-to-end tests (tests/e2e/test_auth.py).

Everything here acts the way a user or a real client does:

* :class:`AuthCli` runs ``python -m s3gw auth ...`` as a subprocess against a
  data folder (no imports of s3gw: the CLI is the interface under test).
* :func:`boto3_client` builds a boto3 client for given credentials and
  signature version.
* :func:`sign_v4` signs a raw request with botocore's own ``S3SigV4Auth``
  (optionally with a frozen clock or a chosen payload hash), and
  :func:`streaming_body` frames a body as ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``
  aws-chunks with the chunk signature chain computed here from the AWS
  specification with hmac/hashlib -- deliberately *not* with s3gw's signer,
  so the test and the server cannot share a mistake.
* :func:`http_request` / :func:`raw_request` send requests with urllib and
  over a bare socket.
* :class:`World` and the module-scoped ``world`` fixture: a gateway with auth on, its
  admin, four users (rita, will, olga, nick: roles are granted per test repo) and cached
  boto3 clients; each test module that imports ``world`` gets its own gateway.
"""

from __future__ import annotations

import contextlib
import re
import uuid
import datetime as _dt
import hashlib
import hmac
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from unittest import mock

import pytest

from tests.conftest import ServerProcess
from tests.e2e.rawhttp import read_response

REGION = "us-east-1"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class Creds:
    user: str
    access_key: str
    secret_key: str

    def with_secret(self, secret: str) -> "Creds":
        return Creds(self.user, self.access_key, secret)


class AuthCliError(AssertionError):
    pass


class AuthCli:
    """``s3gw auth`` on one data folder, run as a user runs it."""

    def __init__(self, data_dir: str, env: dict | None = None):
        self.data_dir = data_dir
        self.env = env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "s3gw", "auth", *args, "--data", self.data_dir]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=self.env,
                              stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AuthCliError(f"`s3gw auth {' '.join(args)}` exited {proc.returncode}:\n"
                               f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    @staticmethod
    def _creds(proc: subprocess.CompletedProcess) -> Creds:
        try:
            doc = json.loads(proc.stdout)
        except ValueError:
            raise AuthCliError(f"--json did not print one JSON object: {proc.stdout!r}") from None
        assert set(doc) >= {"user", "access_key", "secret_key"}, doc
        return Creds(doc["user"], doc["access_key"], doc["secret_key"])

    def enable(self) -> Creds:
        return self._creds(self.run("enable", "--json"))

    def disable(self) -> None:
        self.run("disable")

    def status(self) -> str:
        return self.run("status").stdout.strip()

    def key_create(self, user: str, admin: bool = False, token: bool = False) -> Creds:
        args = ["key", "create", "--user", user, "--json"]
        if admin:
            args.append("--admin")
        if token:
            args.append("--token")
        return self._creds(self.run(*args))

    def key_list(self, user: str | None = None) -> list[dict]:
        args = ["key", "list", "--json"] + (["--user", user] if user else [])
        return json.loads(self.run(*args).stdout)

    def key_revoke(self, access_key: str) -> None:
        self.run("key", "revoke", access_key)

    def grant(self, user: str, repo: str, role: str) -> None:
        self.run("grant", "--user", user, "--repo", repo, "--role", role)

    def revoke(self, user: str, repo: str) -> None:
        self.run("revoke", "--user", user, "--repo", repo)

    def grants(self, user: str | None = None, repo: str | None = None) -> list[dict]:
        args = ["grants", "--json"] + (["--user", user] if user else []) + (["--repo", repo] if repo else [])
        return json.loads(self.run(*args).stdout)


# --------------------------------------------------------------------------- boto3

def boto3_client(endpoint: str, creds: Creds | None, signature_version: str = "s3v4",
                 region: str = REGION):
    """A path-style boto3 client; ``creds=None`` sends unsigned (anonymous) requests."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config
    cfg = Config(signature_version=UNSIGNED if creds is None else signature_version,
                 s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    kwargs = {}
    if creds is not None:
        kwargs = dict(aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key)
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=region,
                                          config=cfg, **kwargs)


@contextlib.contextmanager
def frozen_botocore_clock(when: _dt.datetime):
    """Make botocore's signers believe it is ``when`` (naive UTC): SigV4 header and query
    signing, in Python and in awscrt (botocore uses the CRT signers when awscrt is
    installed), and SigV2 header and query signing."""
    from email.utils import formatdate

    import botocore.auth
    aware = when.replace(tzinfo=_dt.timezone.utc)
    epoch = aware.timestamp()

    def fake_now(remove_tzinfo=True):
        return when if remove_tzinfo else aware

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(botocore.auth, "get_current_datetime", fake_now))
        try:
            import botocore.crt.auth
        except ImportError:
            pass
        else:
            stack.enter_context(mock.patch.object(botocore.crt.auth, "get_current_datetime", fake_now))
        stack.enter_context(mock.patch.object(botocore.auth.HmacV1Auth, "_get_date",
                                              lambda self: formatdate(epoch, usegmt=True)))
        stack.enter_context(mock.patch.object(botocore.auth.HmacV1QueryAuth, "_get_date",
                                              lambda self: str(int(epoch + int(self._expires)))))
        yield


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


# --------------------------------------------------------------------------- raw SigV4

def sign_v4(creds: Creds, method: str, url: str, headers: dict, body: bytes = b"",
            payload_hash: str | None = None, when: _dt.datetime | None = None,
            region: str = REGION) -> dict:
    """Sign with botocore's ``S3SigV4Auth``; return the headers to send (Host included).

    ``payload_hash`` replaces the x-amz-content-sha256 value botocore would compute
    (a streaming marker, or a deliberately wrong hash); ``when`` freezes the clock.
    """
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    class Signer(S3SigV4Auth):
        def payload(self, request):
            return payload_hash if payload_hash is not None else super().payload(request)

    req = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    signer = Signer(Credentials(creds.access_key, creds.secret_key), "s3", region)
    with frozen_botocore_clock(when) if when else contextlib.nullcontext():
        signer.add_auth(req)
    out = {k: v for k, v in req.headers.items()}
    out["Host"] = url.split("://", 1)[1].split("/", 1)[0]
    return out


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str = REGION, service: str = "s3") -> bytes:
    """The SigV4 signing key, per the AWS specification."""
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def chunk_signatures(secret: str, timestamp: str, region: str, seed: str,
                     chunks: list[bytes]) -> list[str]:
    """The chain of chunk signatures of STREAMING-AWS4-HMAC-SHA256-PAYLOAD (the last chunk
    in ``chunks`` should be ``b""``)."""
    key = signing_key(secret, timestamp[:8], region)
    scope = f"{timestamp[:8]}/{region}/s3/aws4_request"
    prev, out = seed, []
    for chunk in chunks:
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", timestamp, scope, prev, EMPTY_SHA256,
                         hashlib.sha256(chunk).hexdigest()])
        prev = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        out.append(prev)
    return out


def trailer_signature(secret: str, timestamp: str, region: str, prev: str, trailer: bytes) -> str:
    """Signature of the trailing headers (``AWS4-HMAC-SHA256-TRAILER``); ``trailer`` is the
    canonical ``name:value\\n`` lines."""
    key = signing_key(secret, timestamp[:8], region)
    scope = f"{timestamp[:8]}/{region}/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", timestamp, scope, prev,
                     hashlib.sha256(trailer).hexdigest()])
    return hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()


def split_chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)] + [b""]


def streaming_length(chunks: list[bytes], trailer: bytes | None = None) -> int:
    """Encoded length of a signed aws-chunked body (every signature is 64 hex digits)."""
    n = sum(len(f"{len(c):x};chunk-signature=") + 64 + 2 + len(c) + 2 for c in chunks)
    if trailer is not None:
        # the zero chunk has no data CRLF; the trailer lines, the signature line, CRLF
        n -= 2
        n += len(trailer.replace(b"\n", b"\r\n")) + len("x-amz-trailer-signature:") + 64 + 2 + 2
    return n


def streaming_body(chunks: list[bytes], signatures: list[str], trailer: bytes | None = None,
                   trailer_sig: str | None = None) -> bytes:
    out = []
    for chunk, sig in zip(chunks, signatures):
        out.append(f"{len(chunk):x};chunk-signature={sig}\r\n".encode() + chunk)
        if chunk or trailer is None:
            out.append(b"\r\n")
    if trailer is not None:
        out.append(trailer.replace(b"\n", b"\r\n"))
        out.append(f"x-amz-trailer-signature:{trailer_sig}\r\n".encode())
        out.append(b"\r\n")
    return b"".join(out)


def seed_signature(headers: dict) -> str:
    return headers["Authorization"].rsplit("Signature=", 1)[1].strip()


# --------------------------------------------------------------------------- sending

def http_request(url: str, method: str = "GET", body: bytes | None = None,
                 headers: dict | None = None) -> tuple[int, bytes]:
    """urllib (as a user with a presigned URL would): (status, body) -- errors included."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read()


def raw_request(port: int, method: str, path: str, headers: dict,
                body: bytes = b"") -> tuple[int, dict, bytes]:
    """One request over a fresh socket, headers exactly as given (Host must be in them)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        s.sendall(head.encode("latin-1") + body)
        return read_response(s)


def error_code(body: bytes) -> str | None:
    import re
    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else None


# --------------------------------------------------------------------------- raw SigV2

def sign_v2(creds: Creds, method: str, resource: str, headers: dict) -> str:
    """The ``Authorization: AWS key:signature`` value of a SigV2 request, per the AWS
    specification (as s3cmd computes it): ``headers`` are those to send; ``resource`` is
    the CanonicalizedResource (``/bucket/key`` plus any sub-resource)."""
    import base64
    lower = {k.lower(): v.strip() for k, v in headers.items()}
    amz = "".join(f"{k}:{lower[k]}\n" for k in sorted(lower) if k.startswith("x-amz-"))
    date = "" if "x-amz-date" in lower else lower.get("date", "")
    sts = f"{method}\n{lower.get('content-md5', '')}\n{lower.get('content-type', '')}\n{date}\n{amz}{resource}"
    sig = base64.b64encode(hmac.new(creds.secret_key.encode(), sts.encode(), hashlib.sha1).digest()).decode()
    return f"AWS {creds.access_key}:{sig}"


def sign_v4_raw(creds: Creds, method: str, raw_path: str, query: str, headers: dict,
                signed: list[str], payload_hash: str, when: _dt.datetime | None = None,
                region: str = REGION) -> dict:
    """SigV4 by hand, per the AWS specification, over exactly ``raw_path`` (no
    normalisation), ``query`` (already canonical) and the header names in ``signed``; for
    requests botocore will not build (dot segments, deliberately unsigned headers)."""
    when = when or utcnow()
    ts = when.strftime("%Y%m%dT%H%M%SZ")
    out = dict(headers)
    out["x-amz-date"] = ts
    out["x-amz-content-sha256"] = payload_hash
    lower = {k.lower(): " ".join(str(v).split()) for k, v in out.items()}
    names = sorted(n.lower() for n in signed)
    canonical = "\n".join([method, raw_path, query, "".join(f"{n}:{lower[n]}\n" for n in names),
                           ";".join(names), payload_hash])
    scope = f"{ts[:8]}/{region}/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", ts, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    sig = hmac.new(signing_key(creds.secret_key, ts[:8], region), sts.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
                            f"SignedHeaders={';'.join(names)}, Signature={sig}")
    return out


# --------------------------------------------------------------------------- the gateway

@dataclass
class World:
    server: ServerProcess
    cli: AuthCli
    admin: Creds
    users: dict[str, Creds] = field(default_factory=dict)
    _clients: dict = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def client(self, creds: Creds | None, signature_version: str = "s3v4", region: str = "us-east-1"):
        key = (creds, signature_version, region)
        if key not in self._clients:
            self._clients[key] = boto3_client(self.endpoint, creds, signature_version, region)
        return self._clients[key]

    @property
    def s3(self):
        """The admin's boto3 client."""
        return self.client(self.admin)

    def repo(self, objects: dict[str, bytes] | None = None, **grants: str) -> str:
        """A new repo with ``master.<repo>`` made by the admin, seeded, and roles granted
        (``rita="reader"``: user name -> role)."""
        repo = f"r{uuid.uuid4().hex[:10]}"
        self.s3.create_bucket(Bucket=f"master.{repo}")
        for key, body in (objects if objects is not None else {"a.txt": b"alpha", "b.txt": b"bravo"}).items():
            self.s3.put_object(Bucket=f"master.{repo}", Key=key, Body=body)
        for user, role in grants.items():
            self.cli.grant(user, repo, role)
        return repo

    def state(self, repo: str) -> dict:
        """What the admin sees of ``repo``: every bucket name on the server, and for the
        repo's buckets each object's content and the multipart uploads in progress."""
        names = sorted(b["Name"] for b in self.s3.list_buckets()["Buckets"])
        out: dict = {"buckets": names}
        for b in names:
            if b.endswith("." + repo):
                objs = {}
                for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=b):
                    for o in page.get("Contents", []):
                        objs[o["Key"]] = self.s3.get_object(Bucket=b, Key=o["Key"])["Body"].read()
                out[b] = objs
                uploads = self.s3.list_multipart_uploads(Bucket=b).get("Uploads", [])
                out[b + "?uploads"] = sorted(u["Key"] for u in uploads)
        return out


def server_problems(log: str) -> list[str]:
    """500s, tracebacks and ERROR/CRITICAL records: none are expected from these tests
    (every refusal is a 4xx by design)."""
    return [line for line in log.splitlines()
            if re.search(r"s3gw\.access \S+ \S+ 5\d\d ", line) or "Traceback" in line
            or re.search(r" (ERROR|CRITICAL) ", line)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    data = tmp_path_factory.mktemp("s3gw-auth") / "data"
    data.mkdir()
    srv = ServerProcess(str(data))
    cli = AuthCli(str(data), env=srv.meta_env())   # S3GW_TEST_META=postgres: its database
    admin = cli.enable()
    assert admin.user == "admin" and admin.access_key and admin.secret_key
    srv.start()
    w = World(srv, cli, admin)
    # rita reads, will writes, olga owns (per repo, granted in each test); nick has no roles
    for name in ("rita", "will", "olga", "nick"):
        w.users[name] = cli.key_create(name)
    try:
        yield w
    finally:
        for c in w._clients.values():
            c.close()
        srv.stop()
        problems = server_problems(srv.log())
        assert not problems, "the server answered 5xx or logged tracebacks or errors:\n" + "\n".join(problems)


def denied(call, code: str | None = "AccessDenied", status: int = 403) -> dict:
    """Run a boto3 call that must fail with ``status`` (and S3 error ``code`` unless None,
    e.g. for HEAD, whose error has no body)."""
    from botocore.exceptions import ClientError
    with pytest.raises(ClientError) as e:
        call()
    r = e.value.response
    assert r["ResponseMetadata"]["HTTPStatusCode"] == status, r
    if code is not None:
        assert r["Error"]["Code"] == code, r
    return r
