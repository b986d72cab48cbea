"""Replay S3 API reference / captured client request lines through the router."""

import pytest

from s3gw.s3.wire.errors import S3Error
from s3gw.s3.wire.router import parse_query, route, split_host

CASES = [
    # (method, target, extra headers, endpoint, bucket, key)
    ("GET", "/", {}, "ListBuckets", None, None),
    ("GET", "/?x-id=ListBuckets", {}, "ListBuckets", None, None),
    ("PUT", "/b", {}, "CreateBucket", "b", None),
    ("PUT", "/b/", {"x-amz-acl": "private"}, "CreateBucket", "b", None),
    ("DELETE", "/b/", {}, "DeleteBucket", "b", None),
    ("HEAD", "/b", {}, "HeadBucket", "b", None),
    ("GET", "/b/?location", {}, "GetBucketLocation", "b", None),
    ("GET", "/b?location=", {}, "GetBucketLocation", "b", None),
    ("GET", "/b?versioning", {}, "GetBucketVersioning", "b", None),
    ("PUT", "/b?versioning", {}, "PutBucketVersioning", "b", None),
    ("GET", "/b?list-type=2&prefix=&delimiter=%2F&encoding-type=url", {}, "ListObjectsV2", "b", None),
    ("GET", "/b?delimiter=%2F&encoding-type=url&list-type=2&max-keys=1000&prefix=", {}, "ListObjectsV2", "b", None),
    ("GET", "/b?list-type=2&fetch-owner=true&metadata=true", {}, "ListObjectsV2", "b", None),
    ("GET", "/b/?delimiter=%2F", {}, "ListObjects", "b", None),
    ("GET", "/b?delimiter=%2F&max-keys=1000&prefix=", {}, "ListObjects", "b", None),
    ("GET", "/b?list-type=1", {}, "ListObjects", "b", None),
    ("GET", "/b?versions&prefix=a", {}, "ListObjectVersions", "b", None),
    ("GET", "/b?uploads", {}, "ListMultipartUploads", "b", None),
    ("POST", "/b?delete", {}, "DeleteObjects", "b", None),
    ("POST", "/b?delete=", {}, "DeleteObjects", "b", None),
    ("POST", "/b/?delete=", {}, "DeleteObjects", "b", None),
    ("GET", "/b?acl", {}, "GetBucketAcl", "b", None),
    ("PUT", "/b?acl", {}, "PutBucketAcl", "b", None),
    ("PUT", "/b/k", {}, "PutObject", "b", "k"),
    ("PUT", "/b/k?x-id=PutObject", {}, "PutObject", "b", "k"),
    ("PUT", "/b/k", {"x-amz-copy-source": "src/k"}, "CopyObject", "b", "k"),
    ("GET", "/b/k", {}, "GetObject", "b", "k"),
    ("GET", "/b/k?versionId=HEAD%5E", {}, "GetObject", "b", "k"),
    ("GET", "/b/k?partNumber=1", {}, "GetObject", "b", "k"),
    ("HEAD", "/b/k", {}, "HeadObject", "b", "k"),
    ("DELETE", "/b/k", {}, "DeleteObject", "b", "k"),
    ("GET", "/b/k?acl", {}, "GetObjectAcl", "b", "k"),
    ("PUT", "/b/k?acl", {}, "PutObjectAcl", "b", "k"),
    ("POST", "/b/k?uploads", {}, "CreateMultipartUpload", "b", "k"),
    ("POST", "/b/k?uploads=", {}, "CreateMultipartUpload", "b", "k"),
    ("PUT", "/b/k?partNumber=1&uploadId=x", {}, "UploadPart", "b", "k"),
    ("PUT", "/b/k?uploadId=x&partNumber=2", {"x-amz-copy-source": "/s/k"}, "UploadPartCopy", "b", "k"),
    ("POST", "/b/k?uploadId=x", {}, "CompleteMultipartUpload", "b", "k"),
    ("DELETE", "/b/k?uploadId=x", {}, "AbortMultipartUpload", "b", "k"),
    ("GET", "/b/k?uploadId=x&max-parts=10", {}, "ListParts", "b", "k"),
    ("GET", "/master.images/a/b/c.csv", {}, "GetObject", "master.images", "a/b/c.csv"),
]


@pytest.mark.parametrize("method,target,hdrs,name,bucket,key", CASES)
def test_replay(method, target, hdrs, name, bucket, key):
    path, _, query = target.partition("?")
    r = route(method, path, query, hdrs)
    assert r.endpoint.name == name
    assert r.endpoint.implemented
    assert (r.bucket, r.key) == (bucket, key)


def test_query_values():
    r = route("GET", "/b", "list-type=2&prefix=&delimiter=%2F&encoding-type=url", {})
    assert r.query == {"list-type": "2", "prefix": "", "delimiter": "/", "encoding-type": "url"}
    assert route("POST", "/b/k", "uploads", {}).query == {"uploads": ""}


@pytest.mark.parametrize(
    "method,target,name",
    [
        ("GET", "/b?cors", "GetBucketCors"),
        ("PUT", "/b?cors", "PutBucketCors"),
        ("DELETE", "/b?cors", "DeleteBucketCors"),
        ("GET", "/b?policy", "GetBucketPolicy"),
        ("GET", "/b?policyStatus", "GetBucketPolicyStatus"),
        ("GET", "/b?tagging", "GetBucketTagging"),
        ("PUT", "/b/k?tagging", "PutObjectTagging"),
        ("GET", "/b?lifecycle", "GetBucketLifecycleConfiguration"),
        ("GET", "/b?website", "GetBucketWebsite"),
        ("GET", "/b?logging", "GetBucketLogging"),
        ("GET", "/b?notification", "GetBucketNotificationConfiguration"),
        ("GET", "/b?replication", "GetBucketReplication"),
        ("GET", "/b?encryption", "GetBucketEncryption"),
        ("GET", "/b?requestPayment", "GetBucketRequestPayment"),
        ("GET", "/b?ownershipControls", "GetBucketOwnershipControls"),
        ("GET", "/b?publicAccessBlock", "GetPublicAccessBlock"),
        ("GET", "/b?object-lock", "GetObjectLockConfiguration"),
        ("GET", "/b/k?retention", "GetObjectRetention"),
        ("PUT", "/b/k?legal-hold", "PutObjectLegalHold"),
        ("GET", "/b/k?torrent", "GetObjectTorrent"),
        ("POST", "/b/k?restore", "RestoreObject"),
        ("POST", "/b/k?select&select-type=2", "SelectObjectContent"),
        ("GET", "/b?accelerate", "GetBucketAccelerateConfiguration"),
        ("GET", "/b?analytics&id=x", "GetBucketAnalyticsConfiguration"),
        ("GET", "/b?metrics&id=x", "GetBucketMetricsConfiguration"),
        ("GET", "/b?inventory&id=x", "GetBucketInventoryConfiguration"),
        ("GET", "/b?intelligent-tiering&id=x", "GetBucketIntelligentTieringConfiguration"),
        ("POST", "/b", "PostObject"),
    ],
)
def test_unsupported_are_routed_but_not_implemented(method, target, name):
    path, _, query = target.partition("?")
    r = route(method, path, query, {})
    assert r.endpoint.name == name
    assert not r.endpoint.implemented


@pytest.mark.parametrize(
    "method,target",
    [
        ("PUT", "/"),
        ("DELETE", "/"),
        ("POST", "/"),
        ("POST", "/b/k"),
        ("POST", "/b?location"),
        ("HEAD", "/b?acl"),
        ("PATCH", "/b/k"),
        ("PUT", "/b/k?uploads"),
        ("POST", "/b/k?cors"),
    ],
)
def test_method_not_allowed(method, target):
    path, _, query = target.partition("?")
    with pytest.raises(S3Error) as ei:
        route(method, path, query, {})
    assert ei.value.code == "MethodNotAllowed"
    assert ei.value.status == 405
    assert ei.value.method == method


@pytest.mark.parametrize(
    "raw,key",
    [
        ("/b/a%20b%2Bc+d", "a b+c+d"),  # + in a path is a plus
        ("/b/%C3%BCber", "\u00fcber"),
        ("/b//x", "/x"),
        ("/b/a/../b", "a/../b"),
        ("/b/a//", "a//"),
        ("/b/100%", "100%"),  # lone % kept
        ("/b/%21%2A%27%28%29", "!*'()"),
        ("/b/a%2Fb", "a/b"),
    ],
)
def test_key_decoding(raw, key):
    assert route("GET", raw, "", {}).key == key


def test_bucket_split_before_decoding():
    r = route("GET", "/a%2Fb/k", "", {})
    assert (r.bucket, r.key) == ("a/b", "k")


def test_bytes_and_latin1_paths():
    assert route("GET", b"/b/%C3%BC", b"", {}).key == "\u00fc"
    # a raw UTF-8 byte sequence handed over as latin-1 text
    assert route("GET", "/b/\u00c3\u00bc", "", {}).key == "\u00fc"


@pytest.mark.parametrize("raw", ["/b/%FF", "/b/%C3", "/%FF/k"])
def test_invalid_utf8_path(raw):
    with pytest.raises(S3Error) as ei:
        route("GET", raw, "", {})
    assert ei.value.code == "InvalidURI" and ei.value.status == 400


def test_path_must_be_absolute():
    with pytest.raises(S3Error) as ei:
        route("GET", "b/k", "", {})
    assert ei.value.code == "InvalidURI"


def test_empty_bucket_with_key():
    with pytest.raises(S3Error) as ei:
        route("GET", "//k", "", {})
    assert ei.value.code == "InvalidBucketName"


def test_query_decoding():
    assert parse_query("prefix=a+b") == {"prefix": "a b"}
    assert parse_query("prefix=a%2Bb&prefix=second") == {"prefix": "a+b"}
    assert parse_query("delete&&x=") == {"delete": "", "x": ""}
    assert parse_query("p=%C3%BC") == {"p": "\u00fc"}
    with pytest.raises(S3Error) as ei:
        parse_query("prefix=%FF")
    assert ei.value.code == "InvalidArgument"


def test_list_type_invalid():
    with pytest.raises(S3Error) as ei:
        route("GET", "/b", "list-type=3", {})
    assert ei.value.code == "InvalidArgument"


def test_upload_part_requires_part_number():
    with pytest.raises(S3Error) as ei:
        route("PUT", "/b/k", "uploadId=x", {})
    assert ei.value.code == "InvalidArgument"


@pytest.mark.parametrize(
    "host,path,bucket,key,vhost",
    [
        ("master.images.s3.local:30600", "/a/b", "master.images", "a/b", True),
        ("Images.S3.Local", "/", "images", None, True),
        ("images.s3.local", "", "images", None, False),  # path must be absolute: checked below
        ("s3.local:30600", "/images/k", "images", "k", False),
        ("127.0.0.1:30600", "/images/k", "images", "k", False),
        ("[::1]:30600", "/images/k", "images", "k", False),
    ],
)
def test_virtual_host(host, path, bucket, key, vhost):
    if not path:
        with pytest.raises(S3Error):
            route("GET", path, "", {"host": host}, domain="s3.local")
        return
    r = route("GET", path, "", {"host": host}, domain="s3.local")
    assert (r.bucket, r.key, r.virtual_host) == (bucket, key, vhost)


def test_virtual_host_needs_domain():
    r = route("GET", "/x/k", "", {"host": "images.s3.local"})
    assert (r.bucket, r.key) == ("x", "k")
    r = route("GET", "/k", "", {}, domain="s3.local", host="b.s3.local")
    assert (r.bucket, r.key) == ("b", "k")
    assert split_host("s3.local", "s3.local") is None
    assert split_host("x.s3.local.", "s3.local") == "x"
