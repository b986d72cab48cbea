"""SigV2 verification against real botocore HmacV1 signatures (in-process)."""

from __future__ import annotations

import datetime as dt
from email.utils import formatdate
from urllib.parse import quote, urlsplit

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from s3gw.http.headers import Headers
from s3gw.s3.auth import sigv2
from s3gw.s3.wire.errors import S3Error, error_xml

AK = "AKIDV2EXAMPLE"
SECRET = "v2/secret+key"
NOW = dt.datetime(2026, 11, 23, 8, 50, 40, tzinfo=dt.timezone.utc).timestamp()
ENDPOINT = "http://127.0.0.1:9000"


def lookup(ak):
    return {AK: SECRET}.get(ak)


class FixedV1(botocore.auth.HmacV1Auth):
    def _get_date(self):
        return formatdate(NOW, usegmt=True)


class FixedV1Query(botocore.auth.HmacV1QueryAuth):
    def _get_date(self):
        return str(int(NOW + int(self._expires)))


def _wire(prep):
    split = urlsplit(prep.url)
    items = [(k, v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in prep.headers.items()]
    items.append(("host", split.netloc))
    return prep.method, split.path, split.query, Headers(items)


def signed(method, path, query="", headers=None, secret=SECRET):
    url = ENDPOINT + path + ("?" + query if query else "")
    req = AWSRequest(method=method, url=url, headers=dict(headers or {}))
    FixedV1(Credentials(AK, secret)).add_auth(req)
    return _wire(req.prepare())


def presigned(method, path, query="", expires=3600, headers=None):
    url = ENDPOINT + path + ("?" + query if query else "")
    req = AWSRequest(method=method, url=url, headers=dict(headers or {}))
    FixedV1Query(Credentials(AK, SECRET), expires=expires).add_auth(req)
    return _wire(req.prepare())


def verify(m, p, q, h, now=NOW, **kw):
    return sigv2.verify_header_auth(m, p, q, h, lookup, now, **kw)


def vp(m, p, q, h, now=NOW + 1, **kw):
    return sigv2.verify_presigned(m, p, q, h, lookup, now, **kw)


def _code(fn, *a, **kw) -> S3Error:
    with pytest.raises(S3Error) as ei:
        fn(*a, **kw)
    return ei.value


def replace_header(h, name, value):
    return Headers([(k, value if k == name else v) for k, v in h])


KEYS = ["plain", "sp ace+plus", "ünï/日本", "bang!star*quote'paren()", "=&?#;:@$,"]


@pytest.mark.parametrize("key", KEYS)
def test_header_auth_verifies(key):
    path = "/bucket/" + quote(key, safe="/~")
    ident = verify(*signed("PUT", path, headers={
        "Content-Type": "text/plain", "Content-MD5": "XrY7u+Ae7tCTyyK7j1rNww==",
        "x-amz-meta-a": "  b   c ", "X-Amz-ACL": "private"}))
    assert ident.access_key == AK and not ident.presigned


@pytest.mark.parametrize(
    "query",
    ["uploads", "acl", "partNumber=2&uploadId=a%2Fb", "versionId=v1&tagging",
     "response-content-disposition=attachment%3B%20filename%3D%22a%20b%22",
     "list-type=2&prefix=x%20y", "delete"],
)
def test_sub_resources_verify(query):
    verify(*signed("GET", "/bucket/key", query))


def test_tampering_fails():
    m, p, q, h = signed("PUT", "/bucket/key", "uploadId=u&partNumber=1",
                        headers={"Content-Type": "text/plain", "x-amz-meta-a": "1"})
    assert _code(verify, "POST", p, q, h).code == "SignatureDoesNotMatch"
    assert _code(verify, m, "/bucket/kez", q, h).code == "SignatureDoesNotMatch"
    assert _code(verify, m, p, "uploadId=u&partNumber=2", h).code == "SignatureDoesNotMatch"
    assert _code(verify, m, p, q, replace_header(h, "content-type", "x/y")).code == "SignatureDoesNotMatch"
    assert _code(verify, m, p, q, replace_header(h, "x-amz-meta-a", "2")).code == "SignatureDoesNotMatch"
    assert _code(verify, m, p, q, Headers(list(h) + [("x-amz-meta-b", "1")])).code == "SignatureDoesNotMatch"
    # a non-signed query parameter may change (SigV2 does not sign it)
    verify(m, p, q + "&x-id=PutObject", h)


def test_mismatch_body_fields():
    m, p, q, h = signed("GET", "/bucket/key")
    err = _code(verify, m, "/bucket/other", q, h)
    assert err.status == 403 and err.string_to_sign.endswith("/bucket/other")
    doc = error_xml(err, "/", "r").decode()
    assert "<StringToSign>" in doc and "<AWSAccessKeyId>" in doc and SECRET not in doc


def test_wrong_secret_and_unknown_key():
    assert _code(verify, *signed("GET", "/b/k", secret="nope")).code == "SignatureDoesNotMatch"
    m, p, q, h = signed("GET", "/b/k")
    assert _code(sigv2.verify_header_auth, m, p, q, h, lambda a: None, NOW).code == "InvalidAccessKeyId"


def test_skew_and_date_change():
    m, p, q, h = signed("GET", "/b/k")
    assert _code(verify, m, p, q, h, now=NOW + 901).code == "RequestTimeTooSkewed"
    assert _code(verify, m, p, q, h, now=NOW - 901).code == "RequestTimeTooSkewed"
    later = formatdate(NOW + 1, usegmt=True)
    assert _code(verify, m, p, q, replace_header(h, "date", later)).code == "SignatureDoesNotMatch"
    no_date = Headers([(k, v) for k, v in h if k.lower() != "date"])
    assert _code(verify, m, p, q, no_date).code == "AccessDenied"


def test_x_amz_date_overrides_date_as_s3cmd_signs():
    amz_date = formatdate(NOW, usegmt=True)
    amz = f"x-amz-date:{amz_date}\n".encode()
    sts = sigv2.string_to_sign("GET", "", "", "", amz, b"/bucket/?location")
    h = Headers([("host", "h"), ("x-amz-date", amz_date),
                 ("authorization", f"AWS {AK}:{sigv2.sign(SECRET, sts)}")])
    verify("GET", "/bucket/", "location", h)
    assert _code(verify, "GET", "/bucket/", "location", h, now=NOW + 3600).code == "RequestTimeTooSkewed"


def test_vhost_bucket_prefixes_resource():
    sts = sigv2.string_to_sign("GET", "", "", formatdate(NOW, usegmt=True), b"", b"/bucket/k")
    h = Headers([("host", "bucket.s3.local"), ("date", formatdate(NOW, usegmt=True)),
                 ("authorization", f"AWS {AK}:{sigv2.sign(SECRET, sts)}")])
    verify("GET", "/k", "", h, vhost_bucket="bucket")
    assert _code(verify, "GET", "/k", "", h).code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("auth", ["", "AWS", "AWS nocolon", "AWS :sig", "AWS4 a:b", "Bearer x"])
def test_malformed_header(auth):
    h = Headers([("authorization", auth), ("date", formatdate(NOW, usegmt=True))])
    assert _code(verify, "GET", "/", "", h).code == "InvalidArgument"


# ---------------------------------------------------------------- presigned

@pytest.mark.parametrize("key", KEYS)
def test_presigned_verifies(key):
    m, p, q, h = presigned("GET", "/bucket/" + quote(key, safe="/~"), "versionId=3")
    ident = vp(m, p, q, h)
    assert ident.presigned and ident.access_key == AK


def test_presigned_with_amz_header_moved_to_query():
    m, p, q, h = presigned("PUT", "/bucket/k", headers={"x-amz-acl": "public-read",
                                                         "Content-Type": "text/plain"})
    assert "x-amz-acl=public-read" in q
    h = Headers([(k, v) for k, v in h if not k.lower().startswith("x-amz-")])
    vp(m, p, q, h)
    assert _code(vp, m, p, q.replace("public-read", "private"), h).code == "SignatureDoesNotMatch"


def test_presigned_tampering_expiry_and_key():
    m, p, q, h = presigned("GET", "/bucket/k", expires=60)
    vp(m, p, q, h, now=NOW + 60)
    err = _code(vp, m, p, q, h, now=NOW + 61)
    assert err.code == "AccessDenied" and err.message == "Request has expired"
    assert _code(vp, "PUT", p, q, h).code == "SignatureDoesNotMatch"
    assert _code(vp, m, p + "x", q, h).code == "SignatureDoesNotMatch"
    exp = str(int(NOW + 60))
    assert _code(vp, m, p, q.replace(exp, str(int(NOW + 6000))), h).code == "SignatureDoesNotMatch"
    assert _code(sigv2.verify_presigned, m, p, q, h, lambda a: None, NOW).code == "InvalidAccessKeyId"
    q2 = "&".join(x for x in q.split("&") if not x.startswith("Signature="))
    assert _code(vp, m, p, q2, h).code == "AccessDenied"


def test_presigned_signature_with_raw_plus():
    m, p, q, h = presigned("GET", "/bucket/k")
    # some clients leave '+' of the base64 signature unescaped
    verify_q = q.replace("%2B", "+")
    vp(m, p, verify_q, h)


def test_canonical_resource_rules():
    assert sigv2.canonical_resource("/b/k", "uploads") == b"/b/k?uploads"
    assert sigv2.canonical_resource("/b/k", "uploadId=x&partNumber=1&foo=2") == b"/b/k?partNumber=1&uploadId=x"
    assert sigv2.canonical_resource("/b/k", "response-content-type=a%2Fb") == b"/b/k?response-content-type=a/b"
    assert sigv2.canonical_resource("/k", "", vhost_bucket="b") == b"/b/k"
