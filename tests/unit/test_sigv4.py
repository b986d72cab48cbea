"""SigV4 verification against real botocore signatures (in-process, no network)."""

from __future__ import annotations

import datetime as dt
import hashlib
from urllib.parse import quote, urlsplit

import boto3
import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials

from s3gw.http.headers import Headers
from s3gw.s3.auth import sigv4, sigv4_stream
from s3gw.s3.wire.awschunked import AwsChunkedDecoder
from s3gw.s3.wire.errors import S3Error, error_xml

AK = "AKIDEXAMPLE0001"
SECRET = "s3cr3t/with+chars"
KEYS = {AK: SECRET}
FIXED = dt.datetime(2026, 11, 23, 8, 50, 40, tzinfo=dt.timezone.utc)
NOW = FIXED.timestamp()
ENDPOINT = "http://127.0.0.1:9000"


def lookup(ak: str) -> str | None:
    return KEYS.get(ak)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda *a, **k: FIXED.replace(tzinfo=None)
    )


def _wire(prep) -> tuple[str, str, str, Headers]:
    split = urlsplit(prep.url)
    items = [(k, v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in prep.headers.items()]
    if not any(k.lower() == "host" for k, _ in items):
        items.append(("host", split.netloc))
    return prep.method, split.path, split.query, Headers(items)


def signed(method, path, query="", headers=None, body=b"", region="us-east-1", secret=SECRET,
           context=None):
    url = ENDPOINT + path + ("?" + query if query else "")
    req = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=body)
    req.context.update(context or {})
    botocore.auth.S3SigV4Auth(Credentials(AK, secret), "s3", region).add_auth(req)
    return _wire(req.prepare())


def presigned(method, path, query="", expires=3600, region="us-east-1", headers=None):
    url = ENDPOINT + path + ("?" + query if query else "")
    req = AWSRequest(method=method, url=url, headers=dict(headers or {}))
    botocore.auth.S3SigV4QueryAuth(Credentials(AK, SECRET), "s3", region, expires=expires).add_auth(req)
    m, p, q, h = _wire(req.prepare())
    return m, p, q, h


def verify(m, p, q, h, now=NOW, **kw):
    return sigv4.verify_header_auth(m, p, q, h, lookup, now, **kw)


def replace_header(h: Headers, name: str, value: str) -> Headers:
    return Headers([(k, value if k == name else v) for k, v in h])


# ---------------------------------------------------------------- header auth

KEYS_TO_TRY = [
    "plain.txt",
    "with space/and+plus.bin",
    "unicodé/日本語/ключ",
    "bang!star*quote'paren()",
    "tilde~under_dash-dot.",
    "a%20literal%percent",
    "=&?#;:@$,[]",
]


@pytest.mark.parametrize("key", KEYS_TO_TRY)
def test_put_object_keys_verify(key):
    path = "/bucket/" + quote(key, safe="/~")
    ident = verify(*signed("PUT", path, body=b"hello", headers={"Content-Type": "text/plain"}))
    assert ident.access_key == AK
    assert ident.region == "us-east-1"
    assert ident.scope == "20261123/us-east-1/s3/aws4_request"
    assert ident.payload_hash == hashlib.sha256(b"hello").hexdigest()
    assert ident.timestamp == "20261123T085040Z"
    assert not ident.presigned


def test_identity_seed_and_key():
    m, p, q, h = signed("GET", "/bucket/k")
    ident = verify(m, p, q, h)
    assert ident.seed_signature in h.get("authorization")
    assert ident.signing_key == sigv4.signing_key(SECRET, "20261123", "us-east-1")
    assert "signing_key" not in repr(ident)


@pytest.mark.parametrize(
    "query",
    [
        "uploads",
        "uploads=",
        "delete",
        "location",
        "list-type=2&prefix=a%20b%2Bc&delimiter=%2F&max-keys=10",
        "prefix=%E6%97%A5%E6%9C%AC&encoding-type=url",
        "partNumber=3&uploadId=abc%2Fdef%3D%3D",
        "versionId=null&response-content-disposition=attachment%3B%20filename%3D%22x%20y.txt%22",
        "b=2&a=1&a=0",
    ],
)
def test_query_strings_verify(query):
    verify(*signed("GET", "/bucket/key", query))


def test_region_us_as_s3cmd_signs():
    ident = verify(*signed("GET", "/bucket/", region="US"))
    assert ident.region == "US" and ident.scope.endswith("/US/s3/aws4_request")


def test_regions_restriction_gives_malformed_with_region():
    with pytest.raises(S3Error) as ei:
        verify(*signed("GET", "/bucket/", region="eu-west-1"), regions=["us-east-1"])
    assert ei.value.code == "AuthorizationHeaderMalformed"
    assert ei.value.region == "us-east-1"
    assert b"<Region>us-east-1</Region>" in error_xml(ei.value, "/bucket/", "r1")


def test_signed_extra_headers_and_whitespace():
    hdrs = {
        "Range": "bytes=0-9",
        "x-amz-meta-note": "  two   spaces\tand tab  ",
        "If-Match": '"abc"',
        "Content-MD5": "XrY7u+Ae7tCTyyK7j1rNww==",
    }
    verify(*signed("GET", "/bucket/k", headers=hdrs))


@pytest.mark.parametrize(
    "context, literal",
    [
        ({"client_config": Config(s3={"payload_signing_enabled": False})}, sigv4.UNSIGNED_PAYLOAD),
        ({"checksum": {"request_algorithm": {"in": "trailer", "name": "crc32"}}},
         sigv4.STREAMING_UNSIGNED_TRAILER),
    ],
)
def test_unsigned_payload_and_streaming_literals(context, literal):
    m, p, q, h = signed("PUT", "/b/k", body=b"abc", context=context)
    assert h.get("x-amz-content-sha256") == literal
    assert verify(m, p, q, h).payload_hash == literal


def _code(fn, *a, **kw) -> S3Error:
    with pytest.raises(S3Error) as ei:
        fn(*a, **kw)
    return ei.value


def test_tampering_fails():
    m, p, q, h = signed("PUT", "/bucket/key", "partNumber=1&uploadId=x", body=b"data",
                        headers={"Content-Type": "text/plain"})
    assert _code(verify, "POST", p, q, h).code == "SignatureDoesNotMatch"
    assert _code(verify, m, "/bucket/kez", q, h).code == "SignatureDoesNotMatch"
    assert _code(verify, m, p, "partNumber=2&uploadId=x", h).code == "SignatureDoesNotMatch"
    assert _code(verify, m, p, q + "&extra=1", h).code == "SignatureDoesNotMatch"
    bad = replace_header(h, "content-type", "text/html")
    assert _code(verify, m, p, q, bad).code == "SignatureDoesNotMatch"
    bad = replace_header(h, "x-amz-content-sha256", hashlib.sha256(b"other").hexdigest())
    assert _code(verify, m, p, q, bad).code == "SignatureDoesNotMatch"
    bad = replace_header(h, "host", "evil:9000")
    assert _code(verify, m, p, q, bad).code == "SignatureDoesNotMatch"


def test_mismatch_carries_string_to_sign_and_canonical_request():
    m, p, q, h = signed("GET", "/bucket/key")
    err = _code(verify, m, "/bucket/other", q, h)
    assert err.status == 403
    assert err.string_to_sign.startswith("AWS4-HMAC-SHA256\n20261123T085040Z\n")
    assert err.canonical_request.startswith("GET\n/bucket/other\n")
    assert err.fields["AWSAccessKeyId"] == AK
    doc = error_xml(err, "/bucket/other", "r").decode()
    assert "<StringToSign>" in doc and "<CanonicalRequest>" in doc and SECRET not in doc


def test_wrong_secret():
    m, p, q, h = signed("GET", "/bucket/key", secret="not-the-secret")
    assert _code(verify, m, p, q, h).code == "SignatureDoesNotMatch"


def test_unknown_or_revoked_key():
    m, p, q, h = signed("GET", "/bucket/key")
    err = _code(sigv4.verify_header_auth, m, p, q, h, lambda ak: None, NOW)
    assert err.code == "InvalidAccessKeyId" and err.status == 403


def test_date_changed_fails():
    m, p, q, h = signed("GET", "/bucket/key")
    bad = replace_header(h, "x-amz-date", "20261123T085041Z")
    assert _code(verify, m, p, q, bad).code == "SignatureDoesNotMatch"
    bad = replace_header(h, "x-amz-date", "20261124T085040Z")
    assert _code(verify, m, p, q, bad).code == "AuthorizationHeaderMalformed"


@pytest.mark.parametrize("delta", [-16 * 60, 16 * 60])
def test_skew(delta):
    m, p, q, h = signed("GET", "/bucket/key")
    err = _code(verify, m, p, q, h, now=NOW + delta)
    assert err.code == "RequestTimeTooSkewed" and err.status == 403
    verify(m, p, q, h, now=NOW + (14 * 60 if delta > 0 else -14 * 60))
    verify(m, p, q, h, now=FIXED + dt.timedelta(minutes=5))


def test_unsigned_amz_header_rejected():
    m, p, q, h = signed("GET", "/bucket/key")
    h2 = Headers(list(h) + [("x-amz-meta-sneaky", "1")])
    err = _code(verify, m, p, q, h2)
    assert err.code == "AccessDenied" and "x-amz-meta-sneaky" in err.headers_not_signed


@pytest.mark.parametrize(
    "auth",
    [
        "",
        "AWS4-HMAC-SHA1 Credential=a/20261123/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=a/20261123/us-east-1/s3/aws4_request, SignedHeaders=host",
        "AWS4-HMAC-SHA256 Credential=a/20261123/us-east-1/s3, SignedHeaders=host, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=a/2026-11-23/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=a/20261123/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=a/20261123/us-east-1/s3/aws4_request, SignedHeaders=Host, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=a/20261123/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=xyz",
    ],
)
def test_malformed_authorization(auth):
    h = Headers([("authorization", auth), ("host", "h"), ("x-amz-date", "20261123T085040Z"),
                 ("x-amz-content-sha256", sigv4.EMPTY_SHA256)])
    err = _code(verify, "GET", "/", "", h)
    assert err.code == "AuthorizationHeaderMalformed" and err.status == 400


def test_missing_content_sha256_and_bad_value():
    m, p, q, h = signed("GET", "/bucket/key")
    h2 = Headers([(k, v) for k, v in h if k != "x-amz-content-sha256"])
    assert _code(verify, m, p, q, h2).code == "InvalidRequest"
    h3 = replace_header(h, "x-amz-content-sha256", "nothex")
    assert _code(verify, m, p, q, h3).code == "InvalidArgument"


def test_date_header_instead_of_x_amz_date():
    # A request whose only date is Date: the signed timestamp is its ISO form.
    key = sigv4.signing_key(SECRET, "20261123", "us-east-1")
    date = "Mon, 23 Nov 2026 08:50:40 GMT"
    h = {"host": "h", "date": date, "x-amz-content-sha256": sigv4.UNSIGNED_PAYLOAD}
    cr = sigv4.canonical_request("GET", "/b/k", "", h, ["date", "host", "x-amz-content-sha256"],
                                 sigv4.UNSIGNED_PAYLOAD)
    sts = sigv4.string_to_sign("20261123T085040Z", "20261123/us-east-1/s3/aws4_request", cr)
    h["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={AK}/20261123/us-east-1/s3/aws4_request,"
        f"SignedHeaders=date;host;x-amz-content-sha256,Signature={sigv4.sign(key, sts)}"
    )
    assert verify("GET", "/b/k", "", h).timestamp == "20261123T085040Z"
    h.pop("date")
    assert _code(verify, "GET", "/b/k", "", h).code == "AccessDenied"


def test_canonical_query_rules():
    assert sigv4.canonical_query("uploads") == "uploads="
    assert sigv4.canonical_query("uploads=") == "uploads="
    assert sigv4.canonical_query("b=2&a=z&a=y") == "a=y&a=z&b=2"
    assert sigv4.canonical_query("p=a+b%2b~%7e*") == "p=a%20b%2B~~%2A"
    assert sigv4.canonical_query("x=1&X-Amz-Signature=s", exclude=["X-Amz-Signature"]) == "x=1"


def test_raw_path_is_not_reencoded_but_lenient_alternative_works():
    # botocore escapes everything but '/~'; a client sending '!' raw but
    # signing '%21' is still accepted (same object), not the other way round.
    m, p, q, h = signed("GET", "/bucket/" + quote("a!b", safe="/~"))
    assert p == "/bucket/a%21b"
    verify(m, "/bucket/a!b", q, h)


# ---------------------------------------------------------------- boto3 client

def _signed_time(amz_date: str) -> float:
    # boto3 signs with awscrt when it is installed, which reads its own clock.
    return dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc).timestamp()


class _Raw:
    def stream(self, **_):
        yield b""


def _capture_client(region="us-east-1", **cfg):
    client = boto3.client(
        "s3", endpoint_url=ENDPOINT, region_name=region,
        aws_access_key_id=AK, aws_secret_access_key=SECRET,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, **cfg),
    )
    seen = []

    def before_send(request, **_):
        seen.append(request)
        return AWSResponse(request.url, 200, {}, _Raw())

    client.meta.events.register("before-send", before_send)
    return client, seen


@pytest.mark.parametrize(
    "op, kwargs",
    [
        ("put_object", {"Bucket": "b", "Key": "dir/a b+c!*'().txt", "Body": b"x" * 100,
                        "Metadata": {"mtime": "123"}, "ContentType": "text/plain"}),
        ("get_object", {"Bucket": "b", "Key": "ünï/ß", "Range": "bytes=0-1"}),
        ("list_objects_v2", {"Bucket": "b", "Prefix": "a b/", "Delimiter": "/"}),
        ("create_multipart_upload", {"Bucket": "b", "Key": "k"}),
        ("delete_objects", {"Bucket": "b", "Delete": {"Objects": [{"Key": "x"}]}}),
        ("copy_object", {"Bucket": "b", "Key": "k2", "CopySource": {"Bucket": "b", "Key": "a b"}}),
        ("head_object", {"Bucket": "b", "Key": "k", "IfMatch": '"e"'}),
        ("get_bucket_location", {"Bucket": "b"}),
    ],
)
def test_boto3_operations_verify(op, kwargs):
    client, seen = _capture_client()
    try:
        getattr(client, op)(**kwargs)
    except Exception:  # parsing the empty fake response may fail; the request was sent
        pass
    assert seen
    prep = seen[-1]
    m, p, q, h = _wire(prep)
    now = _signed_time(h.get("x-amz-date"))
    ident = verify(m, p, q, h, now=now)
    assert ident.access_key == AK
    assert _code(verify, m, p + "x", q, h, now=now).code == "SignatureDoesNotMatch"


def test_boto3_presigned_url_verifies():
    client, _ = _capture_client()
    url = client.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "a b/ü+!"},
                                        ExpiresIn=600)
    s = urlsplit(url)
    date = next(x.split("=")[1] for x in s.query.split("&") if x.startswith("X-Amz-Date="))
    ident = sigv4.verify_presigned("GET", s.path, s.query, Headers([("host", s.netloc)]),
                                   lookup, _signed_time(date) + 10)
    assert ident.presigned and ident.payload_hash == sigv4.UNSIGNED_PAYLOAD


# ---------------------------------------------------------------- presigned

def vp(m, p, q, h, now=NOW + 1):
    return sigv4.verify_presigned(m, p, q, h, lookup, now)


def test_presigned_verifies_and_tampering_fails():
    m, p, q, h = presigned("GET", "/bucket/" + quote("k e y+ü", safe="/~"), "versionId=3")
    ident = vp(m, p, q, h)
    assert ident.presigned and ident.access_key == AK
    assert _code(vp, "PUT", p, q, h).code == "SignatureDoesNotMatch"
    assert _code(vp, m, p + "x", q, h).code == "SignatureDoesNotMatch"
    assert _code(vp, m, p, q.replace("versionId=3", "versionId=4"), h).code == "SignatureDoesNotMatch"
    assert _code(vp, m, p, q.replace("X-Amz-Expires=3600", "X-Amz-Expires=3601"), h).code == "SignatureDoesNotMatch"


def test_presigned_expired_and_limits():
    m, p, q, h = presigned("GET", "/bucket/k", expires=60)
    vp(m, p, q, h, now=NOW + 60)
    err = _code(vp, m, p, q, h, now=NOW + 61)
    assert err.code == "AccessDenied" and err.message == "Request has expired"
    assert err.fields["X-Amz-Expires"] == "60"
    err = _code(vp, m, p, q, h, now=NOW - 3600)
    assert err.code == "RequestTimeTooSkewed"
    m, p, q, h = presigned("GET", "/bucket/k", expires=604801)
    assert _code(vp, m, p, q, h).code == "AuthorizationQueryParametersError"
    m, p, q, h = presigned("GET", "/bucket/k", expires=604800)
    vp(m, p, q, h, now=NOW + 604800)


def test_presigned_missing_param_and_unknown_key():
    m, p, q, h = presigned("GET", "/bucket/k")
    q2 = "&".join(x for x in q.split("&") if not x.startswith("X-Amz-Date="))
    assert _code(vp, m, p, q2, h).code == "AuthorizationQueryParametersError"
    err = _code(sigv4.verify_presigned, m, p, q, h, lambda ak: None, NOW)
    assert err.code == "InvalidAccessKeyId"


def test_presigned_with_signed_header():
    m, p, q, h = presigned("PUT", "/bucket/k", headers={"Content-Type": "image/png"})
    assert "content-type" in q.lower()
    vp(m, p, q, h)
    assert _code(vp, m, p, q, replace_header(h, "content-type", "text/plain")).code == "SignatureDoesNotMatch"


# ---------------------------------------------------------------- streaming (AWS example)

# Values from the AWS S3 API reference, "Signature Calculations for the
# Authorization Header: Transferring Payload in Multiple Chunks", Example: PUT Object.
AWS_AK = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
AWS_CHUNK_SIGS = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
]
AWS_HEADERS = Headers([
    ("host", "s3.amazonaws.com"),
    ("x-amz-date", "20130524T000000Z"),
    ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
    ("authorization",
     f"AWS4-HMAC-SHA256 Credential={AWS_AK}/20130524/us-east-1/s3/aws4_request,"
     "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
     f"x-amz-decoded-content-length;x-amz-storage-class,Signature={AWS_SEED}"),
    ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
    ("content-encoding", "aws-chunked"),
    ("x-amz-decoded-content-length", "66560"),
    ("content-length", "66824"),
])
AWS_NOW = dt.datetime(2013, 5, 24, 0, 1, tzinfo=dt.timezone.utc)


def _aws_body(sigs=AWS_CHUNK_SIGS) -> bytes:
    return (
        f"10000;chunk-signature={sigs[0]}\r\n".encode() + b"a" * 65536 + b"\r\n"
        + f"400;chunk-signature={sigs[1]}\r\n".encode() + b"a" * 1024 + b"\r\n"
        + f"0;chunk-signature={sigs[2]}\r\n\r\n".encode()
    )


def _aws_identity():
    return sigv4.verify_header_auth(
        "PUT", "/examplebucket/chunkObject.txt", "", AWS_HEADERS,
        {AWS_AK: AWS_SECRET}.get, AWS_NOW,
    )


def test_aws_example_seed_signature():
    ident = _aws_identity()
    assert ident.seed_signature == AWS_SEED
    assert ident.payload_hash == sigv4.STREAMING_PAYLOAD


def test_aws_example_first_chunk_string_to_sign():
    ident = _aws_identity()
    sts = sigv4.chunk_string_to_sign(AWS_SEED, ident.timestamp, ident.scope,
                                     hashlib.sha256(b"a" * 65536).hexdigest())
    assert sigv4.sign(ident.signing_key, sts) == AWS_CHUNK_SIGS[0]


@pytest.mark.parametrize("piece", [1, 7, 4096, 65536, 70000, 1 << 20])
def test_aws_example_chunks_via_decoder(piece):
    ident = _aws_identity()
    dec = AwsChunkedDecoder(True, False, decoded_length=66560)
    v = sigv4_stream.ChunkVerifier(ident.signing_key, ident.timestamp, ident.scope, ident.seed_signature)
    body = _aws_body()
    out = bytearray()
    for i in range(0, len(body), piece):
        slices = dec.feed(body[i:i + piece])
        v.add_signatures(dec.take_signatures())
        for s in slices:
            v.feed(s)
            out += s
    dec.finish()
    v.finish()
    assert v.done and v.chunks == 3 and bytes(out) == b"a" * 66560


@pytest.mark.parametrize("bad", [0, 1, 2])
def test_aws_example_bad_chunk_fails_at_that_chunk(bad):
    ident = _aws_identity()
    sigs = list(AWS_CHUNK_SIGS)
    sigs[bad] = "0" * 64
    dec = AwsChunkedDecoder(True, False, decoded_length=66560)
    v = sigv4_stream.ChunkVerifier(ident.signing_key, ident.timestamp, ident.scope, ident.seed_signature)
    with pytest.raises(S3Error) as ei:
        slices = dec.feed(_aws_body(sigs))
        v.add_signatures(dec.take_signatures())
        for s in slices:
            v.feed(s)
    assert ei.value.code == "SignatureDoesNotMatch"
    assert v.chunks == bad
    assert ei.value.string_to_sign.startswith("AWS4-HMAC-SHA256-PAYLOAD\n")


def test_tampered_chunk_data_fails():
    ident = _aws_identity()
    v = sigv4_stream.ChunkVerifier(ident.signing_key, ident.timestamp, ident.scope, ident.seed_signature)
    v.add_signature(AWS_CHUNK_SIGS[0], 65536)
    with pytest.raises(S3Error) as ei:
        v.feed(b"a" * 65535 + b"b")
    assert ei.value.code == "SignatureDoesNotMatch"


def test_chunks_out_of_order_and_incomplete():
    ident = _aws_identity()
    v = sigv4_stream.ChunkVerifier(ident.signing_key, ident.timestamp, ident.scope, ident.seed_signature)
    v.add_signature(AWS_CHUNK_SIGS[1], 1024)  # second chunk first: chain breaks
    with pytest.raises(S3Error):
        v.feed(b"a" * 1024)
    v = sigv4_stream.ChunkVerifier(ident.signing_key, ident.timestamp, ident.scope, ident.seed_signature)
    v.add_signature(AWS_CHUNK_SIGS[0], 65536)
    v.feed(b"a" * 65536)
    with pytest.raises(S3Error) as ei:
        v.finish()
    assert ei.value.code == "IncompleteBody"
    with pytest.raises(S3Error):
        v.feed(b"x" * 2000)  # more than the announced chunks


def test_signed_trailer_chain():
    key = sigv4.signing_key(SECRET, "20261123", "us-east-1")
    ts, scope, seed = "20261123T085040Z", "20261123/us-east-1/s3/aws4_request", "ab" * 32
    data = b"hello world"
    s1 = sigv4.sign(key, sigv4.chunk_string_to_sign(seed, ts, scope, hashlib.sha256(data).hexdigest()))
    s0 = sigv4.sign(key, sigv4.chunk_string_to_sign(s1, ts, scope, sigv4.EMPTY_SHA256))
    trailer = b"x-amz-checksum-crc32:DUoRhQ==\n"
    assert sigv4.trailer_string_to_sign(s0, ts, scope, "h").startswith("AWS4-HMAC-SHA256-TRAILER\n")
    st = sigv4.sign(key, sigv4.trailer_string_to_sign(s0, ts, scope, hashlib.sha256(trailer).hexdigest()))
    body = (
        f"b;chunk-signature={s1}\r\n".encode() + data + b"\r\n"
        + f"0;chunk-signature={s0}\r\n".encode()
        + b"x-amz-checksum-crc32:DUoRhQ==\r\n"
        + f"x-amz-trailer-signature:{st}\r\n\r\n".encode()
    )
    dec = AwsChunkedDecoder(True, True, decoded_length=len(data))
    v = sigv4_stream.ChunkVerifier(key, ts, scope, seed)
    for _ in dec.feed(body):
        pass
    v.add_signatures(dec.take_signatures())
    v.feed(data)
    trailers = dec.finish()
    v.finish(trailers)
    bad = dict(trailers, **{"x-amz-checksum-crc32": "AAAAAA=="})
    v2 = sigv4_stream.ChunkVerifier(key, ts, scope, seed)
    v2.add_signature(s1, len(data))
    v2.feed(data)
    v2.add_signature(s0, 0)
    with pytest.raises(S3Error) as ei:
        v2.finish(bad)
    assert ei.value.code == "SignatureDoesNotMatch"
    v3 = sigv4_stream.ChunkVerifier(key, ts, scope, seed)
    v3.add_signatures([(s1, len(data)), (s0, 0)])
    v3.feed(data)
    with pytest.raises(S3Error):
        v3.finish({"x-amz-checksum-crc32": "DUoRhQ=="})  # no trailer signature
