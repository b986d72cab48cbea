"""Listing edges against a real server with boto3: max-keys=0, Owner in ListObjectsV2,
ListBuckets pagination (prefix, max-buckets, continuation-token, bucket-region), and the
url-encoded Prefix of a ListObjects (v1) answer."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _get(server, path_and_query: str) -> tuple[int, bytes]:
    """An anonymous GET (the test server runs without auth), for what boto3 won't send."""
    try:
        with urllib.request.urlopen(server.endpoint + path_and_query, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _code(exc: ClientError) -> tuple[str, int]:
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_max_keys_zero_is_an_empty_complete_page(s3, server, bucket):
    for k in ["a", "d/x", "d/y", "z"]:
        s3.put_object(Bucket=bucket, Key=k, Body=b"1")
    for kw in ({}, {"Delimiter": "/"}, {"StartAfter": "a"}):
        v2 = s3.list_objects_v2(Bucket=bucket, MaxKeys=0, **kw)
        assert (v2["IsTruncated"], v2["KeyCount"], v2["MaxKeys"]) == (False, 0, 0)
        assert not {"Contents", "CommonPrefixes", "NextContinuationToken"} & v2.keys()
        v1 = s3.list_objects(Bucket=bucket, MaxKeys=0, **({} if "StartAfter" in kw else kw))
        assert (v1["IsTruncated"], v1["MaxKeys"]) == (False, 0)
        assert not {"Contents", "CommonPrefixes", "NextMarker"} & v1.keys()
    vs = s3.list_object_versions(Bucket=bucket, MaxKeys=0, Delimiter="/")
    assert (vs["IsTruncated"], vs["MaxKeys"]) == (False, 0)
    assert not {"Versions", "DeleteMarkers", "CommonPrefixes", "NextKeyMarker",
                "NextVersionIdMarker"} & vs.keys()
    # the paginators stop after one page instead of looping
    pages = list(s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 0}))
    assert len(pages) == 1
    # and a page of one is still truncated, with a token
    assert s3.list_objects_v2(Bucket=bucket, MaxKeys=1)["NextContinuationToken"]
    # the wire answer, as curl sees it
    status, body = _get(server, f"/{bucket}?list-type=2&max-keys=0")
    root = ET.fromstring(body)
    assert status == 200 and root.findtext(NS + "IsTruncated") == "false"
    assert root.find(NS + "NextContinuationToken") is None


def test_v2_owner_only_with_fetch_owner(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    assert "Owner" not in s3.list_objects_v2(Bucket=bucket)["Contents"][0]
    assert "Owner" not in s3.list_objects_v2(Bucket=bucket, FetchOwner=False)["Contents"][0]
    assert s3.list_objects_v2(Bucket=bucket, FetchOwner=True)["Contents"][0]["Owner"]["ID"]
    assert s3.list_objects(Bucket=bucket)["Contents"][0]["Owner"]["ID"]   # v1: always


def test_list_buckets_prefix_and_pagination(s3, server):
    uid = uuid.uuid4().hex[:10]
    names = sorted(f"lb{uid}-{i}.r{uid}" for i in range(5))
    for name in names + [f"master.r{uid}"]:
        s3.create_bucket(Bucket=name)
    prefix = f"lb{uid}-"

    first = s3.list_buckets(Prefix=prefix, MaxBuckets=2)
    assert [b["Name"] for b in first["Buckets"]] == names[:2]
    assert first["Prefix"] == prefix and first["ContinuationToken"]
    assert {b["BucketRegion"] for b in first["Buckets"]} == {"us-east-1"}
    seen, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = s3.list_buckets(Prefix=prefix, MaxBuckets=2, **kw)
        seen += [b["Name"] for b in page["Buckets"]]
        token = page.get("ContinuationToken")
        if token is None:
            break
    assert seen == names

    pages = list(s3.get_paginator("list_buckets").paginate(
        Prefix=prefix, PaginationConfig={"PageSize": 2}))
    assert [len(p["Buckets"]) for p in pages] == [2, 2, 1]
    assert [b["Name"] for p in pages for b in p["Buckets"]] == names

    # prefix alone: one page of up to 10000, nothing more to fetch
    only = s3.list_buckets(Prefix=prefix)
    assert [b["Name"] for b in only["Buckets"]] == names and "ContinuationToken" not in only
    # no parameters: every bucket, no pagination elements
    plain = s3.list_buckets()
    assert set(names) <= {b["Name"] for b in plain["Buckets"]}
    assert not {"Prefix", "ContinuationToken"} & plain.keys()
    assert "BucketRegion" not in plain["Buckets"][0]
    # one region: another one matches nothing
    assert s3.list_buckets(Prefix=prefix, BucketRegion="eu-west-1")["Buckets"] == []
    assert len(s3.list_buckets(Prefix=prefix, BucketRegion="us-east-1")["Buckets"]) == 5

    with pytest.raises(ClientError) as e:
        s3.list_buckets(Prefix=prefix, ContinuationToken="%%%")
    assert _code(e) == ("InvalidArgument", 400)
    for bad in ("0", "10001", "abc", "", "-1", "\u00b2"):
        status, body = _get(server, "/?max-buckets=" + urllib.request.quote(bad))
        root = ET.fromstring(body)
        assert (status, root.findtext("Code"), root.findtext("ArgumentName")) == \
            (400, "InvalidArgument", "max-buckets"), bad
    status, _ = _get(server, f"/?max-buckets=10000&prefix={prefix}")
    assert status == 200


def test_v1_url_encoding_keeps_prefix_encoded(s3, server, bucket):
    """AWS documents Prefix among the url-encoded elements of a ListObjects (v1) answer
    (with Delimiter, Marker, NextMarker, Key); botocore decodes all but Prefix, so a
    boto3 caller sees it encoded -- as against AWS."""
    for k in ["p+q/x", "p+q/s t/y"]:
        s3.put_object(Bucket=bucket, Key=k, Body=b"1")
    v1 = s3.list_objects(Bucket=bucket, Prefix="p+q/", Delimiter="/")   # encoding-type=url auto
    assert v1["Prefix"] == "p%2Bq/"
    assert [o["Key"] for o in v1["Contents"]] == ["p+q/x"]
    assert [p["Prefix"] for p in v1["CommonPrefixes"]] == ["p+q/s t/"]
    v2 = s3.list_objects_v2(Bucket=bucket, Prefix="p+q/", Delimiter="/")
    assert v2["Prefix"] == "p+q/"                                     # v2: botocore decodes it
    status, body = _get(server, f"/{bucket}?prefix=p%2Bq%2F&delimiter=%2F")
    assert status == 200 and ET.fromstring(body).findtext(NS + "Prefix") == "p+q/"  # no encoding
