"""Request authentication and per-repo authorisation (pure), with real botocore signatures."""

from __future__ import annotations

import datetime as dt
from email.utils import formatdate
from urllib.parse import urlsplit

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from s3gw.http.headers import Headers
from s3gw.pfs.auth import AuthSnapshot, Role
from s3gw.s3.auth import access as auth
from s3gw.s3.wire.endpoints import by_name
from s3gw.s3.wire.errors import S3Error

FIXED = dt.datetime(2026, 11, 23, 8, 50, 40, tzinfo=dt.timezone.utc)
NOW = FIXED.timestamp()
ENDPOINT = "http://127.0.0.1:9000"
KEYS = {"AKADMIN": ("admin-secret", "admin"), "AKALICE": ("alice-secret", "alice"),
        "AKBOB": ("bob-secret", "bob")}


def snapshot(grants=None, enabled=True) -> AuthSnapshot:
    grants = grants or {}
    return AuthSnapshot(enabled, dict(KEYS), {}, frozenset({"admin"}),
                        frozenset({"admin", "alice", "bob"}), grants)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(botocore.auth, "get_current_datetime",
                        lambda *a, **k: FIXED.replace(tzinfo=None))


def _wire(prep):
    split = urlsplit(prep.url)
    items = [(k, v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in prep.headers.items()]
    if not any(k.lower() == "host" for k, _ in items):
        items.append(("host", split.netloc))
    return prep.method, split.path, split.query, Headers(items)


def request(signer, ak, secret, method="GET", path="/master.images/k", headers=None, **kw):
    req = AWSRequest(method=method, url=ENDPOINT + path, headers=dict(headers or {}))
    signer(Credentials(ak, secret), **kw).add_auth(req)
    return _wire(req.prepare())


def v4(ak="AKALICE", secret="alice-secret", **kw):
    return request(lambda c: botocore.auth.S3SigV4Auth(c, "s3", "us-east-1"), ak, secret, **kw)


def v4_query(ak="AKALICE", secret="alice-secret", **kw):
    return request(lambda c: botocore.auth.S3SigV4QueryAuth(c, "s3", "us-east-1", expires=60),
                   ak, secret, **kw)


class FixedV1(botocore.auth.HmacV1Auth):       # botocore's SigV2 reads the clock itself
    def _get_date(self):
        return formatdate(NOW, usegmt=True)


class FixedV1Query(botocore.auth.HmacV1QueryAuth):
    def _get_date(self):
        return str(int(NOW + int(self._expires)))


def v2(ak="AKALICE", secret="alice-secret", **kw):
    return request(lambda c: FixedV1(c), ak, secret, **kw)


def v2_query(ak="AKALICE", secret="alice-secret", **kw):
    return request(lambda c: FixedV1Query(c, expires=60), ak, secret, **kw)


SIGNERS = {"v4": v4, "v4-query": v4_query, "v2": v2, "v2-query": v2_query}


@pytest.mark.parametrize("scheme", SIGNERS)
def test_each_scheme_authenticates(scheme):
    m, p, q, h = SIGNERS[scheme]()
    principal = auth.authenticate(m, p, q, h, snapshot(), NOW)
    assert (principal.user, principal.admin, principal.access_key) == ("alice", False, "AKALICE")
    assert (principal.sigv4 is not None) == (scheme == "v4")


@pytest.mark.parametrize("scheme", SIGNERS)
def test_wrong_secret(scheme):
    m, p, q, h = SIGNERS[scheme](secret="guess")
    with pytest.raises(S3Error) as e:
        auth.authenticate(m, p, q, h, snapshot(), NOW)
    assert e.value.code == "SignatureDoesNotMatch" and e.value.status == 403


@pytest.mark.parametrize("scheme", SIGNERS)
def test_unknown_key(scheme):
    m, p, q, h = SIGNERS[scheme](ak="AKNOBODY")
    with pytest.raises(S3Error) as e:
        auth.authenticate(m, p, q, h, snapshot(), NOW)
    assert e.value.code == "InvalidAccessKeyId"


@pytest.mark.parametrize("scheme", ["v4-query", "v2-query"])
def test_presigned_expiry(scheme):
    m, p, q, h = SIGNERS[scheme]()
    with pytest.raises(S3Error) as e:
        auth.authenticate(m, p, q, h, snapshot(), NOW + 120)
    assert e.value.code == "AccessDenied" and "expired" in e.value.message


@pytest.mark.parametrize("scheme", ["v4", "v2"])
def test_clock_skew(scheme):
    m, p, q, h = SIGNERS[scheme]()
    with pytest.raises(S3Error) as e:
        auth.authenticate(m, p, q, h, snapshot(), NOW + 16 * 60)
    assert e.value.code == "RequestTimeTooSkewed" and e.value.status == 403


def test_anonymous_is_refused():
    with pytest.raises(S3Error) as e:
        auth.authenticate("GET", "/master.images/k", "", Headers([("host", "x")]), snapshot(), NOW)
    assert e.value.code == "AccessDenied"


def test_token_style_key_authenticates():
    token = "f" * 40
    from s3gw.pfs.roles import token_hash
    snap = AuthSnapshot(True, {}, {token_hash(token): "pachy"}, frozenset(),
                        frozenset({"pachy"}), {})
    m, p, q, h = v4(ak=token, secret=token)
    assert auth.authenticate(m, p, q, h, snap, NOW).user == "pachy"


@pytest.mark.parametrize("name, needed", [
    ("GetObject", Role.READER), ("HeadObject", Role.READER), ("ListObjectsV2", Role.READER),
    ("ListObjectVersions", Role.READER), ("HeadBucket", Role.READER),
    ("PutObject", Role.WRITER), ("DeleteObject", Role.WRITER), ("DeleteObjects", Role.WRITER),
    ("CreateMultipartUpload", Role.WRITER), ("UploadPart", Role.WRITER),
    ("CompleteMultipartUpload", Role.WRITER), ("CopyObject", Role.WRITER),
    ("DeleteBucket", Role.OWNER), ("PutBucketAcl", Role.OWNER),
    ("ListBuckets", None), ("CreateBucket", None),
])
def test_required_role(name, needed):
    assert auth.required_role(by_name(name)) == needed


def principal(user="alice"):
    return auth.Principal(user, user == "admin", "AK", auth.HEADER_V4)


@pytest.mark.parametrize("role, allowed", [
    (None, set()),
    (Role.READER, {"GetObject", "ListObjectsV2"}),
    (Role.WRITER, {"GetObject", "ListObjectsV2", "PutObject", "DeleteObjects"}),
    (Role.OWNER, {"GetObject", "ListObjectsV2", "PutObject", "DeleteObjects", "DeleteBucket"}),
])
def test_authorize_by_role(role, allowed):
    grants = {} if role is None else {("alice", "images"): role}
    snap = snapshot(grants)
    for name in ("GetObject", "ListObjectsV2", "PutObject", "DeleteObjects", "DeleteBucket"):
        ep = by_name(name)
        if name in allowed:
            auth.authorize(principal(), snap, ep, "master.images", Headers([]))
        else:
            with pytest.raises(S3Error) as e:
                auth.authorize(principal(), snap, ep, "master.images", Headers([]))
            assert e.value.code == "AccessDenied"
        auth.authorize(principal("admin"), snap, ep, "master.images", Headers([]))


def test_bare_and_pinned_buckets_name_the_repo():
    snap = snapshot({("alice", "images"): Role.READER})
    for bucket in ("images", "dev.images", "0123456789abcdef0123456789abcdef.master.images"):
        auth.authorize(principal(), snap, by_name("GetObject"), bucket, Headers([]))
    with pytest.raises(S3Error):
        auth.authorize(principal(), snap, by_name("GetObject"), "master.other", Headers([]))


def test_copy_needs_read_on_the_source():
    copy = by_name("CopyObject")
    src = Headers([("x-amz-copy-source", "/master.secret/k")])
    snap = snapshot({("alice", "images"): Role.WRITER})
    with pytest.raises(S3Error):
        auth.authorize(principal(), snap, copy, "master.images", src)
    snap = snapshot({("alice", "images"): Role.WRITER, ("alice", "secret"): Role.READER})
    auth.authorize(principal(), snap, copy, "master.images", src)


def test_create_and_list_rules():
    snap = snapshot({("alice", "images"): Role.READER})
    assert auth.may_create_branch(principal(), snap, "newrepo", repo_exists=False)
    assert not auth.may_create_branch(principal(), snap, "images", repo_exists=True)
    assert auth.may_create_branch(principal("admin"), snap, "images", repo_exists=True)
    assert auth.may_read(principal(), snap, "images")
    assert not auth.may_read(principal(), snap, "other")


def test_grant_headers():
    assert auth.grant_headers(Headers([("x-amz-acl", "private")])) is None
    h = Headers([("x-amz-grant-read", 'id="bob", id=carol'),
                 ("x-amz-grant-full-control", 'id="bob"'), ("x-amz-grant-write", "id=dave")])
    assert auth.grant_headers(h) == {"bob": Role.OWNER, "carol": Role.READER, "dave": Role.WRITER}
    for bad in [("x-amz-grant-read", 'emailAddress="x@example.com"'),
                ("x-amz-grant-read", "uri=http://acs.amazonaws.com/groups/global/AllUsers"),
                ("x-amz-grant-read-acp", 'id="bob"')]:
        with pytest.raises(S3Error) as e:
            auth.grant_headers(Headers([bad]))
        assert e.value.code == "InvalidArgument"


def test_acl_grants_render_roles():
    from s3gw.pfs.auth import Grant
    grants = [Grant("a", "r", Role.OWNER), Grant("b", "r", Role.WRITER), Grant("c", "r", Role.READER)]
    assert auth.acl_grants(grants) == [("a", "FULL_CONTROL"), ("b", "WRITE"), ("c", "READ")]
