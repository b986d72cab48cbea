import pytest

from s3gw.s3.wire.errors import S3Error
from s3gw.s3.wire.ranges import content_range, parse_range, unsatisfied_range

TABLE = [
    ("bytes=0-9", 100, (0, 9)),
    ("bytes=0-0", 100, (0, 0)),
    ("bytes=10-", 100, (10, 99)),
    ("bytes=0-", 100, (0, 99)),
    ("bytes=90-200", 100, (90, 99)),  # clipped past EOF
    ("bytes=99-99", 100, (99, 99)),
    ("bytes=-10", 100, (90, 99)),
    ("bytes=-1000", 100, (0, 99)),
    ("Bytes = 1 - 2 ", 100, (1, 2)),
    ("bytes=-5", 0, None),  # a suffix of an empty object: S3 answers 200, the empty body
    ("bytes=0-1,5-6", 100, None),  # multiple ranges: S3 ignores them
    ("bytes=5-3", 100, None),  # invalid: ignored
    ("bytes=-", 100, None),
    ("bytes=a-b", 100, None),
    ("bytes=+1-2", 100, None),
    ("items=0-1", 100, None),
    ("0-1", 100, None),
    ("bytes=\u0661-2", 100, None),  # non-ASCII digit
    (None, 100, None),
    ("bytes=" + "1" * 2000 + "-", 100, None),
]


@pytest.mark.parametrize("value,size,expected", TABLE)
def test_range_table(value, size, expected):
    assert parse_range(value, size) == expected


@pytest.mark.parametrize("value,size", [("bytes=100-", 100), ("bytes=100-200", 100), ("bytes=-0", 100),
                                        ("bytes=0-", 0), ("bytes=0-0", 0)])
def test_unsatisfiable(value, size):
    with pytest.raises(S3Error) as ei:
        parse_range(value, size)
    err = ei.value
    assert (err.code, err.status) == ("InvalidRange", 416)
    assert err.fields == {"RangeRequested": value, "ActualObjectSize": str(size)}
    assert err.headers == {"Content-Range": f"bytes */{size}"}


def test_content_range():
    assert content_range(0, 9, 100) == "bytes 0-9/100"
    assert unsatisfied_range(7) == "bytes */7"
