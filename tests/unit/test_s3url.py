"""The chunk-store URL parser (store/s3url.py): a pure function."""

from __future__ import annotations

import pytest

from s3gw.store.s3url import S3Location, S3UrlError, is_s3_url, parse_s3_url


def test_full_form():
    loc = parse_s3_url("s3://chunk-bucket/some/prefix?endpoint=http://127.0.0.1:8333&region=eu-west-1&grace=120")
    assert loc == S3Location(bucket="chunk-bucket", prefix="some/prefix/", endpoint="http://127.0.0.1:8333",
                             region="eu-west-1", virtual_hosted=False, grace_s=120.0)


def test_defaults_aws():
    loc = parse_s3_url("s3://bucket")
    assert loc == S3Location(bucket="bucket", prefix="", endpoint=None, region="us-east-1",
                             virtual_hosted=True)
    assert parse_s3_url("s3://bucket/").prefix == ""


def test_addressing_and_profile():
    loc = parse_s3_url("s3://bucket/p/?endpoint=https://minio.example:9000/&addressing=virtual&profile=ops")
    assert loc.endpoint == "https://minio.example:9000"
    assert loc.virtual_hosted and loc.profile == "ops" and loc.prefix == "p/"


@pytest.mark.parametrize("url", [
    "s3://bucket/p/?endpoint=http://127.0.0.1:8333&grace=60",
    "s3://bucket",
    "s3://bucket/a/b/?region=eu-central-1&addressing=path&profile=x",
])
def test_round_trip(url):
    loc = parse_s3_url(url)
    assert parse_s3_url(loc.url()) == loc


@pytest.mark.parametrize("url, words", [
    ("http://bucket/x", "not an s3://"),
    ("s3:///x", "no bucket"),
    ("s3://Bucket_Upper/x", "not a bucket name"),
    ("s3://key:secret@bucket/x", "credentials"),
    ("s3://bucket/x?endpoint=http://u:p@host:1", "credentials"),
    ("s3://bucket/x?endpoint=ftp://host", "endpoint must be"),
    ("s3://bucket/x?endpoint=http://host/path", "endpoint must be"),
    ("s3://bucket/x?color=blue", "unknown option"),
    ("s3://bucket/x?region=a&region=b", "given twice"),
    ("s3://bucket/x?addressing=sideways", "addressing"),
    ("s3://bucket/x?grace=soon", "grace must be"),
    ("s3://bucket/x?grace=-5", "positive"),
    ("s3://bucket/a//b", "bad prefix"),
    ("s3://bucket/a/../b", "bad prefix"),
])
def test_refused(url, words):
    with pytest.raises(S3UrlError, match=words):
        parse_s3_url(url)


def test_is_s3_url():
    assert is_s3_url("s3://b/p") and not is_s3_url("./s3gw-data")


@pytest.mark.parametrize("url, unsigned", [
    ("s3://bucket", True),                                             # AWS S3: HTTPS
    ("s3://bucket?endpoint=https://minio.example:9000", True),
    ("s3://bucket?endpoint=http://127.0.0.1:8333", True),              # loopback: no wire
    ("s3://bucket?endpoint=http://localhost:8333", True),
    ("s3://bucket?endpoint=http://[::1]:8333", True),
    ("s3://bucket?endpoint=http://objstore:8333", False),              # plain HTTP over a network
    ("s3://bucket?endpoint=http://10.0.0.7:8333", False),
    ("s3://bucket?endpoint=http://127.0.0.1:8333&payload=signed", False),
    ("s3://bucket?endpoint=http://objstore:8333&payload=unsigned", True),
])
def test_payload_signing_follows_the_wire(url, unsigned):
    loc = parse_s3_url(url)
    assert loc.unsigned_payload is unsigned
    assert parse_s3_url(loc.url()) == loc


def test_payload_refused():
    with pytest.raises(S3UrlError, match="payload must be signed or unsigned"):
        parse_s3_url("s3://bucket?payload=maybe")
