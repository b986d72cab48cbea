"""Pure pieces of the listing operations: the ListBuckets page plan, count parameters and
continuation tokens."""

import pytest

from s3gw.s3.wire.errors import S3Error
from s3gw.s3.ops.buckets import bucket_page
from s3gw.s3.wire.listing import count_param, decode_token, encode_token
from s3gw.s3.wire.xml_out import BucketEntry

NAMES = ["dev.a", "dev.b", "master.a", "master.b", "x.c"]
ENTRIES = [BucketEntry(n, 0) for n in NAMES]


def names(page):
    return [e.name for e in page]


def test_bucket_page():
    assert bucket_page(ENTRIES, "", None, None) == (ENTRIES, None)
    page, after = bucket_page(ENTRIES, "", None, 2)
    assert (names(page), after) == (["dev.a", "dev.b"], "master.a")
    page, after = bucket_page(ENTRIES, "", after, 2)              # resumes at the next name
    assert (names(page), after) == (["master.a", "master.b"], "x.c")
    assert names(bucket_page(ENTRIES, "", after, 2)[0]) == ["x.c"]
    assert bucket_page(ENTRIES, "", "x.c", 2)[1] is None
    # prefix, and exactly a page of buckets: nothing after it
    page, after = bucket_page(ENTRIES, "master.", None, 2)
    assert (names(page), after) == (["master.a", "master.b"], None)
    # a start name that is gone (bucket deleted between pages) still resumes in order
    assert names(bucket_page(ENTRIES, "", "master.aa", 10)[0]) == ["master.b", "x.c"]
    assert bucket_page(ENTRIES, "nope", None, 1) == ([], None)


def test_count_param():
    assert [count_param(v) for v in ("0", "7", "0010", "1000")] == [0, 7, 10, 1000]
    assert count_param("9" * 5000) == 10**9                      # no int() digit-limit error
    for bad in ("", "-1", "+1", " 1", "1.0", "abc", "\u00b2", "\u0661"):
        assert count_param(bad) is None, bad


@pytest.mark.parametrize("position", ["", "a", "photos/2026/010.jpg", "\u00fc/x+y z", "master.images"])
def test_tokens_round_trip(position):
    assert decode_token(encode_token(position)) == position


@pytest.mark.parametrize("token", ["%%%", "YQ", "a b", "YQ==YQ==x", "\u00fc"])
def test_bad_tokens(token):
    with pytest.raises(S3Error) as e:
        decode_token(token)
    assert e.value.code == "InvalidArgument"
