import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3gw.s3.wire.dates import http_date, iso8601_ms, parse_http_date, parse_iso8601

T = 1_795_423_840 * 10**9  # Mon, 23 Nov 2026 08:50:40 GMT


def test_formats():
    assert http_date(T + 999_999_999) == "Mon, 23 Nov 2026 08:50:40 GMT"
    assert len(http_date(0)) == 29
    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert iso8601_ms(T + 123_999_999) == "2026-11-23T08:50:40.123Z"
    assert iso8601_ms(T + 123_000_001, ceil=True) == "2026-11-23T08:50:40.124Z"
    assert iso8601_ms(T + 999_000_001, ceil=True) == "2026-11-23T08:50:41.000Z"
    assert iso8601_ms(T, ceil=True) == "2026-11-23T08:50:40.000Z"


@pytest.mark.parametrize(
    "value,ns",
    [
        ("Mon, 23 Nov 2026 08:50:40 GMT", T),
        (" Mon, 23 Nov 2026 08:50:40 GMT ", T),
        ("Monday, 23-Nov-26 08:50:40 GMT", T),
        ("Mon Nov 23 08:50:40 2026", T),
        ("Sun Nov  6 08:49:37 1994", 784111777 * 10**9),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 784111777 * 10**9),
        ("Mon, 23 Nov 2026 08:50:40 UTC", None),
        ("Mon, 31 Feb 2026 08:50:40 GMT", None),
        ("Mon, 23 Foo 2026 08:50:40 GMT", None),
        ("2026-11-23", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_http_date(value, ns):
    assert parse_http_date(value) == ns


@given(st.integers(min_value=0, max_value=253402300799 * 10**9))
def test_http_date_round_trip(ns):
    assert parse_http_date(http_date(ns)) == ns - ns % 10**9
    assert parse_iso8601(iso8601_ms(ns)) == ns - ns % 10**6


def test_parse_iso8601():
    assert parse_iso8601("2026-11-23T08:50:40Z") == T
    assert parse_iso8601("2026-11-23T08:50:40.5Z") == T + 500_000_000
    assert parse_iso8601("2026-13-23T08:50:40Z") is None
    assert parse_iso8601("20261123T085040Z") is None


def test_signed_dates_accept_rfc2822_numeric_zones():
    from s3gw.s3.wire.dates import parse_http_date, parse_signed_date
    gmt = parse_http_date("Thu, 26 Nov 2026 12:25:00 GMT")
    assert parse_signed_date("Thu, 26 Nov 2026 12:25:00 +0000") == gmt   # s3cmd's x-amz-date
    assert parse_signed_date("Thu, 26 Nov 2026 13:25:00 +0100") == gmt
    assert parse_signed_date("26 Nov 2026 07:25:00 -0500") == gmt
    assert parse_signed_date("Thu, 26 Nov 2026 12:25:00 GMT") == gmt
    assert parse_http_date("Thu, 26 Nov 2026 12:25:00 +0000") is None      # conditionals stay strict
    assert parse_signed_date("yesterday") is None and parse_signed_date(None) is None
